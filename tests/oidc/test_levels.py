"""Levels of assurance over HTTP: vectors of trust ("Cl", "Cl.Cm") asked with vtr or acr_values,
the second factor only when the level needs it, step-up of a password-only session, and what the
ID token says (vot, acr, amr, sid)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.browser import SECOND_FACTOR_HEADING, SIGN_IN_FORM, CitizenBrowser, callback
from tests.support.oauth_errors import ERROR_DESCRIPTION_CHARSET
from tests.support.oidc_client import AuthorizationAttempt, DepartmentClient

CONSENT_HEADING = "wants to know who you are"


def id_token_claims(client: DepartmentClient, attempt: AuthorizationAttempt, code: str) -> dict:
    """Redeem the code as the department does and return the validated ID token's claims."""
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    return client.validate_id_token(response.json()["id_token"], attempt.nonce)


def wrong_password(browser: CitizenBrowser, url: str, citizen: dict) -> httpx.Response:
    """Start an authorization and type a wrong password; the answer."""
    page = browser.follow(browser.get(url))
    assert page.url.path == "/sign-in", page.text[:500]
    return browser.follow(browser.submit_sign_in(page, citizen["email"], "not the password"))


def sign_in_with_password(browser: CitizenBrowser, url: str, citizen: dict) -> httpx.Response:
    """Start an authorization, type the right password (and nothing else); what follows."""
    page = browser.follow(browser.get(url))
    assert page.url.path == "/sign-in", page.text[:500]
    return browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))


def finish(browser: CitizenBrowser, response: httpx.Response) -> dict[str, str]:
    """Consent if asked; the callback's parameters."""
    if response.status_code == 200 and CONSENT_HEADING in response.text:
        response = browser.consent(response)
    return callback(response).params


def assert_second_factor_page_only(page: httpx.Response) -> None:
    """The page asks for the code from the app, and not for the password."""
    assert page.status_code == 200, (page.status_code, page.text[:500])
    assert SECOND_FACTOR_HEADING in page.text
    assert 'name="code"' in page.text
    assert 'type="password"' not in page.text
    assert SIGN_IN_FORM not in page.text


# -- Which level a request asks for ------------------------------------------------------------


def test_without_vtr_the_second_factor_is_required_before_a_code(
    idp, browser, citizen, make_client
):
    client = make_client()
    attempt = client.authorization()
    assert "vtr" not in attempt.params and "acr_values" not in attempt.params

    after_password = sign_in_with_password(browser, attempt.url, citizen)
    # The password alone is not enough: no code yet, the app's code is asked for.
    assert "location" not in after_password.headers
    assert_second_factor_page_only(after_password)
    assert "/sign-in/second-factor" in str(after_password.url)

    params = finish(browser, browser.second_factor(after_password, citizen["email"]))
    assert params["state"] == attempt.state
    claims = id_token_claims(client, attempt, params["code"])
    assert claims["vot"] == "Cl.Cm"
    assert claims["acr"] == "Cl.Cm"
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["sub"] == citizen["subject"]


@pytest.mark.parametrize(
    "request_params",
    [{"vtr": '["Cl"]'}, {"acr_values": "Cl"}, {"acr_values": "unknown Cl"}],
    ids=["vtr", "acr_values", "acr_values-with-an-unknown-value"],
)
def test_a_password_only_level_issues_a_code_after_the_password_alone(
    idp, browser, citizen, make_client, request_params
):
    client = make_client()
    attempt = client.authorization(**request_params)
    after_password = sign_in_with_password(browser, attempt.url, citizen)
    assert SECOND_FACTOR_HEADING not in after_password.text
    params = finish(browser, after_password)
    claims = id_token_claims(client, attempt, params["code"])
    assert claims["vot"] == "Cl"
    assert claims["acr"] == "Cl"
    assert claims["amr"] == ["pwd"]


@pytest.mark.parametrize(
    "request_params",
    [
        {"acr_values": "unknown"},
        {"acr_values": "Cl.Cm"},
        {"acr_values": "urn:mace:incommon:iap:silver"},
        {"vtr": '["Cl.Cm"]'},
        # vtr wins over acr_values when a request has both.
        {"vtr": '["Cl.Cm"]', "acr_values": "Cl"},
    ],
    ids=["unknown-acr", "acr-Cl.Cm", "foreign-acr", "vtr-Cl.Cm", "vtr-over-acr_values"],
)
def test_medium_level_requests_need_the_second_factor(
    idp, browser, citizen, make_client, request_params
):
    client = make_client()
    attempt = client.authorization(**request_params)
    after_password = sign_in_with_password(browser, attempt.url, citizen)
    assert_second_factor_page_only(after_password)
    params = finish(browser, browser.second_factor(after_password, citizen["email"]))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["pwd", "otp"])


def test_a_wrong_password_is_still_refused_at_the_low_level(idp, browser, citizen, make_client):
    client = make_client()
    response = wrong_password(browser, client.authorization(vtr='["Cl"]').url, citizen)
    assert response.status_code == 400
    assert 'action="/sign-in/password"' in response.text  # the password asked again
    assert "location" not in response.headers


# -- Step-up and single sign-on across levels --------------------------------------------------


def test_a_password_session_is_stepped_up_with_the_second_factor_only(
    idp, browser, citizen, make_client
):
    low = make_client("dept-low", redirect_uri="https://low.example.gov.uk/callback")
    medium = make_client("dept-medium", redirect_uri="https://medium.example.gov.uk/callback")

    # Signed in for a department that needs the password only.
    low_attempt = low.authorization(vtr='["Cl"]')
    low_params = finish(browser, sign_in_with_password(browser, low_attempt.url, citizen))
    low_claims = id_token_claims(low, low_attempt, low_params["code"])
    assert (low_claims["vot"], low_claims["amr"]) == ("Cl", ["pwd"])
    cookie_before = dict(browser.http.cookies)

    # Another department needs Cl.Cm: the app's code is asked for, never the password again.
    medium_attempt = medium.authorization()
    page = browser.follow(browser.get(medium_attempt.url))
    assert_second_factor_page_only(page)
    assert "Department dept-medium" in page.text  # says which service asks for the step
    params = finish(browser, browser.second_factor(page, citizen["email"]))
    claims = id_token_claims(medium, medium_attempt, params["code"])
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["pwd", "otp"])
    assert claims["sub"] == low_claims["sub"] == citizen["subject"]
    # A new session (new identifier, new cookie) at step-up (session fixation).
    assert claims["sid"] != low_claims["sid"]
    assert dict(browser.http.cookies) != cookie_before

    # The stepped-up session now serves both departments without asking anything.
    again = low.authorization(vtr='["Cl"]', prompt="none")
    again_params = callback(browser.get(again.url)).params
    again_claims = id_token_claims(low, again, again_params["code"])
    assert again_claims["sid"] == claims["sid"]
    assert again_claims["vot"] == "Cl"  # the level asked for, with the methods actually used
    assert again_claims["amr"] == ["pwd", "otp"]


def test_prompt_none_with_a_password_session_asking_for_cl_cm_is_login_required(
    idp, browser, citizen, make_client
):
    low = make_client("dept-low", redirect_uri="https://low.example.gov.uk/callback")
    medium = make_client("dept-medium", redirect_uri="https://medium.example.gov.uk/callback")
    finish(browser, sign_in_with_password(browser, low.authorization(vtr='["Cl"]').url, citizen))

    attempt = medium.authorization(prompt="none")
    response = browser.get(attempt.url)
    assert response.status_code == 302
    assert response.headers["location"].startswith(medium.redirect_uri)
    params = callback(response).params
    assert params["error"] == "login_required"
    assert params["state"] == attempt.state
    assert params["iss"] == idp.issuer
    assert "code" not in params


def test_prompt_none_with_a_stepped_up_session_issues_a_code_at_cl_cm(
    idp, browser, citizen, make_client
):
    first = make_client("dept-first", redirect_uri="https://first.example.gov.uk/callback")
    second = make_client("dept-second", redirect_uri="https://second.example.gov.uk/callback")
    browser.authorize(first.authorization().url, citizen["email"], citizen["password"])
    # Consent for the second department first, then a silent request.
    browser.authorize(second.authorization().url, citizen["email"], citizen["password"])
    attempt = second.authorization(prompt="none")
    params = callback(browser.get(attempt.url)).params
    claims = id_token_claims(second, attempt, params["code"])
    assert (claims["vot"], claims["amr"]) == ("Cl.Cm", ["pwd", "otp"])


def test_alternatives_give_the_strongest_vector_the_session_meets(
    idp, browser, citizen, make_client
):
    client = make_client()
    alternatives = json.dumps(["Cl.Cm", "Cl"])

    # A password alone meets one of the alternatives: no second factor asked for.
    fresh = CitizenBrowser(idp.issuer)
    attempt = client.authorization(vtr=alternatives)
    after_password = sign_in_with_password(fresh, attempt.url, citizen)
    assert SECOND_FACTOR_HEADING not in after_password.text
    params = finish(fresh, after_password)
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["amr"]) == ("Cl", ["pwd"])

    # A session with the second factor meets the stronger one.
    browser.authorize(client.authorization().url, citizen["email"], citizen["password"])
    attempt = client.authorization(vtr=alternatives)
    params = browser.authorize(attempt.url).params
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["pwd", "otp"])


def test_prompt_login_asks_for_both_factors_again(idp, browser, citizen, make_client):
    client = make_client()
    first = client.authorization()
    first_params = browser.authorize(first.url, citizen["email"], citizen["password"]).params
    first_claims = id_token_claims(client, first, first_params["code"])

    attempt = client.authorization(prompt="login")
    after_password = sign_in_with_password(browser, attempt.url, citizen)
    # The new password sign-in is a new, password-only session: the code is asked for again.
    assert_second_factor_page_only(after_password)
    params = finish(browser, browser.second_factor(after_password, citizen["email"]))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["amr"]) == ("Cl.Cm", ["pwd", "otp"])
    assert claims["sid"] != first_claims["sid"]


# -- GOV.UK One Login vectors with an identity confidence component -----------------------------


@pytest.mark.parametrize(
    "vtr", ['["Cl.Cm.P0"]', '["P0.Cl.Cm"]', '["Cm.Cl"]', '["Cm.P0.Cl"]'], ids=str
)
def test_one_login_vectors_in_any_order_with_p0_need_both_factors_and_give_vot_cl_cm(
    idp, browser, citizen, make_client, vtr
):
    """govuk-onelogin-django always sends ["Cl.Cm.P0"]. One Login reads the components in any
    order, P0 asks for no identity confidence, and the ID token's vot is the credential part."""
    client = make_client()
    attempt = client.authorization(vtr=vtr)
    after_password = sign_in_with_password(browser, attempt.url, citizen)
    assert_second_factor_page_only(after_password)
    params = finish(browser, browser.second_factor(after_password, citizen["email"]))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["acr"]) == ("Cl.Cm", "Cl.Cm")


def test_a_low_vector_with_p0_is_met_by_the_password_alone(idp, browser, citizen, make_client):
    client = make_client()
    attempt = client.authorization(vtr='["P0.Cl"]')
    after_password = sign_in_with_password(browser, attempt.url, citizen)
    assert SECOND_FACTOR_HEADING not in after_password.text
    claims = id_token_claims(client, attempt, finish(browser, after_password)["code"])
    assert claims["vot"] == "Cl"


@pytest.mark.parametrize(
    ("vtr", "named"),
    [
        ('["Cl.Cm.P3"]', "not offered"),
        ('["P3.Cl.Cm"]', "not offered"),
        ('["Cl.P2"]', "needs Cl.Cm"),
        ('["Cl", "Cl.P1"]', "needs Cl.Cm"),
    ],
)
def test_identity_confidence_not_offered_or_without_a_second_factor_is_refused(
    idp, browser, citizen, make_client, vtr, named
):
    client = make_client()
    browser.authorize(client.authorization().url, citizen["email"], citizen["password"])
    attempt = client.authorization(vtr=vtr)
    response = browser.get(attempt.url)
    assert response.headers["location"].startswith(client.redirect_uri)
    params = callback(response).params
    assert params["error"] == "invalid_request"
    assert named in params["error_description"]
    assert ERROR_DESCRIPTION_CHARSET.match(params["error_description"]), params
    assert params["state"] == attempt.state
    assert "code" not in params


# -- Invalid vtr -------------------------------------------------------------------------------

INVALID_VTR = {
    "not-json": "Cl.Cm",
    "empty-string": "",
    "broken-json": '["Cl.Cm"',
    "json-string": '"Cl.Cm"',
    "json-object": '{"Cl.Cm": true}',
    "json-null": "null",
    "empty-list": "[]",
    "identity-p3": '["P3.Cl.Cm"]',
    "number": "[1]",
    "null-in-list": '["Cl", null]',
    "nested-list": '[["Cl"]]',
    "one-unknown": '["Cl", "x"]',
    "lower-case": '["cl.cm"]',
    "credential-medium-alone": '["Cm"]',
    "credential-repeated": '["Cl.Cl"]',
    "two-confidences": '["Cl.Cm.P0.P0"]',
    "unknown-confidence": '["Cl.Cm.P9"]',
    "too-many": json.dumps(["Cl"] * 6),
    "long-vector": json.dumps(["Cl.Cm" + "m" * 3000]),
    "long-list": json.dumps(["Cl.Cm"] * 400),
    "deeply-nested": "[" * 3000 + "]" * 3000,
    "non-ascii": '["Cl.Cm\u00e9"]',
    "backslash": '["Cl\\\\Cm"]',
    "quote": '["Cl\'Cm"]',
    "control-character": '["Cl\\u0007"]',
}


@pytest.mark.parametrize("vtr", list(INVALID_VTR.values()), ids=list(INVALID_VTR))
def test_an_invalid_vtr_is_redirected_as_invalid_request(idp, browser, make_client, vtr):
    client = make_client()
    attempt = client.authorization(vtr=vtr)
    response = browser.get(attempt.url)
    assert response.status_code == 302, (response.status_code, response.text[:500])
    assert response.headers["location"].startswith(client.redirect_uri)
    params = callback(response).params
    assert params["error"] == "invalid_request"
    assert "vtr" in params["error_description"]
    # RFC 6749 4.1.2.1: only printable ASCII without '"' and '\' in error_description.
    assert ERROR_DESCRIPTION_CHARSET.match(params["error_description"]), params
    assert len(params["error_description"]) < 200
    assert params["state"] == attempt.state
    assert params["iss"] == idp.issuer
    assert "code" not in params


def test_an_invalid_vtr_is_refused_even_for_a_signed_in_citizen(idp, browser, citizen, make_client):
    client = make_client()
    browser.authorize(client.authorization().url, citizen["email"], citizen["password"])
    attempt = client.authorization(vtr='["P3.Cl.Cm"]', prompt="none")
    params = callback(browser.get(attempt.url)).params
    assert params["error"] == "invalid_request"
    assert "P3.Cl.Cm" in params["error_description"]
    assert "code" not in params


# -- Discovery ---------------------------------------------------------------------------------


def test_discovery_lists_the_vectors_and_the_claims(idp):
    meta = httpx.get(idp.url("/.well-known/openid-configuration")).json()
    # The identity levels come with the medium credential level, as One Login writes them.
    assert meta["vtr_values_supported"] == ["Cl", "Cl.Cm", "Cl.Cm.P1", "Cl.Cm.P2"]
    assert meta["acr_values_supported"] == ["Cl", "Cl.Cm"]
    assert {"vot", "acr", "amr", "sid"} <= set(meta["claims_supported"])


# -- A password alone is a single factor only when long enough (NIST SP 800-63B rev 4) --------


@pytest.mark.parametrize(
    ("password", "alone"),
    [("Fourteen chars", False), ("Fifteen chars!!", True), ("cafe\u0301 cre\u0300me 123", False)],
    # 16 code points as typed (decomposed accents), 14 characters after NFKC.
    ids=["14-characters", "15-characters", "14-after-nfkc"],
)
def test_a_password_under_15_characters_needs_the_second_factor_even_for_cl(
    idp, browser, make_client, make_citizen, password, alone
):
    import uuid

    citizen = make_citizen(f"short.{uuid.uuid4().hex[:8]}@example.com", password=password)
    client = make_client()
    attempt = client.authorization(vtr='["Cl"]')
    after_password = sign_in_with_password(browser, attempt.url, citizen)
    if alone:
        assert SECOND_FACTOR_HEADING not in after_password.text
        params = finish(browser, after_password)
        claims = id_token_claims(client, attempt, params["code"])
        assert (claims["vot"], claims["amr"]) == ("Cl", ["pwd"])
        return
    # Too short to stand alone: the app's code is asked for, then the department gets Cl.
    assert_second_factor_page_only(after_password)
    params = finish(browser, browser.second_factor(after_password, citizen["email"]))
    claims = id_token_claims(client, attempt, params["code"])
    assert claims["vot"] == "Cl"
    assert claims["amr"] == ["pwd", "otp"]


def test_a_new_shorter_password_no_longer_stands_alone_in_the_session_it_was_typed_in(
    idp, make_citizen
):
    import uuid

    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import BrowserSession
    from tests.accounts.test_passkeys import reset_page

    citizen = make_citizen(f"shorter.{uuid.uuid4().hex[:8]}@example.com")
    # A reset to a long password: the new session's password stands alone (Cl).
    browser, page = reset_page(idp, citizen)
    long_password = "a long passphrase of many words"
    done = browser.follow(
        browser.submit(page, {"password": long_password, "confirm": long_password})
    )
    assert done.status_code == 200, done.text[:500]

    def stands_alone() -> bool:
        with idp.app.app_context():
            return db.session.scalar(
                select(BrowserSession.password_enough_alone).filter_by(
                    citizen_id=citizen["id"], ended_at=None
                )
            )

    assert stands_alone()
    # Changed to one under 15 characters in the same session: no longer a single factor.
    page = browser.get(idp.url("/account/password"))
    short = "Short but fine"
    fields = {"current_password": long_password, "password": short, "confirm": short}
    changed = browser.follow(browser.submit(page, fields))
    assert "Your password has been changed" in changed.text, changed.text[:500]
    assert not stands_alone()

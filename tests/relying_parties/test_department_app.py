"""The department services: pages, sign-in against a stand-in IdP, and failures shown kindly."""

import os
import re
import stat
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc.jwk import ECKey, RSAKey

from relying_parties.account import SESSION_KEY
from relying_parties.common import DepartmentSettings
from tests.relying_parties.conftest import DEPARTMENTS, SIGN_IN_BUTTON

PRIVATE_RSA_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth"}
# What the session holds after a sign-in, for pages that only read it.
STORED_SIGN_IN = {
    "id_token": "header.payload.signature",
    "claims": {"iss": "http://127.0.0.1:9", "sub": "citizen-1", "auth_time": 1741183389},
    "userinfo": {"sub": "citizen-1", "email": "ada@example.com", "email_verified": True},
}


def stored_sign_in(age_seconds: float = 0) -> dict:
    """STORED_SIGN_IN as remembered age_seconds ago."""
    return {**STORED_SIGN_IN, "signed_in_at": time.time() - age_seconds}


def complete_sign_in(client, fake_idp, sign_in_query: str = "", **callback_changes):
    """Start a sign-in, let the stand-in IdP authorize it, and follow the callback."""
    started = client.get(f"/sign-in{sign_in_query}")
    assert started.status_code == 302, started.text
    params = fake_idp.authorize(started.headers["Location"])
    params.update(callback_changes)
    params = {name: value for name, value in params.items() if value is not None}
    return client.get("/auth/callback", query_string=params)


# Pages that need no IdP


@pytest.mark.parametrize(
    ("kind", "name", "department", "colour"),
    [
        ("tax", "Your tax account", "HM Revenue &amp; Customs", "#008670"),
        ("driving", "View your driving licence", "Driver and Vehicle Licensing Agency", "#d53880"),
        ("health", "Your health record", "NHS", "#005eb8"),
        ("benefits", "Check your benefits", "Department for Work and Pensions", "#00703c"),
        ("council", "Pay your council tax", "Northfield Borough Council", "#4c2c92"),
    ],
)
def test_start_page_shows_the_service_and_a_sign_in_button(
    department_app, kind, name, department, colour
):
    response = department_app(kind).test_client().get("/")

    assert response.status_code == 200
    assert f'<h1 class="govuk-heading-xl">{name}</h1>' in response.text
    assert department in response.text
    assert f"--brand: {colour}" in response.text
    assert SIGN_IN_BUTTON.search(response.text)
    assert "You are signed in" not in response.text


@pytest.mark.parametrize("kind", DEPARTMENTS)
def test_start_page_says_when_you_are_signed_in(department_app, kind):
    client = department_app(kind).test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = stored_sign_in()

    response = client.get("/")

    assert "You are signed in" in response.text
    assert 'href="/account"' in response.text


@pytest.mark.parametrize(
    "sign_in",
    [stored_sign_in(age_seconds=24 * 3600 + 60), STORED_SIGN_IN],
    ids=["older-than-a-day", "from-before-sign-in-times-were-kept"],
)
def test_a_sign_in_remembered_for_more_than_a_day_counts_as_signed_out(department_app, sign_in):
    client = department_app("tax").test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = sign_in

    assert "You are signed in" not in client.get("/").text
    assert client.get("/account").status_code == 302


@pytest.mark.parametrize("kind", DEPARTMENTS)
def test_account_sends_a_signed_out_visitor_to_the_start_page(department_app, kind):
    response = department_app(kind).test_client().get("/account")

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_health_says_ok_without_the_idp(department_app):
    response = department_app("tax").test_client().get("/health")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("kind", DEPARTMENTS)
def test_an_error_from_the_idp_is_shown_as_a_friendly_page(department_app, kind):
    response = (
        department_app(kind)
        .test_client()
        .get(
            "/auth/callback",
            query_string={
                "error": "access_denied",
                "error_description": "The citizen <b>cancelled</b>",
                "state": "abc",
            },
        )
    )

    assert response.status_code == 400
    assert "You have not been signed in" in response.text
    assert "access_denied" in response.text
    assert "You chose not to sign in" in response.text
    assert "The citizen &lt;b&gt;cancelled&lt;/b&gt;" in response.text
    assert "Traceback" not in response.text


def test_an_error_naming_another_issuer_is_not_trusted(department_app):
    response = (
        department_app("tax")
        .test_client()
        .get(
            "/auth/callback",
            query_string={"error": "access_denied", "iss": "https://attacker.example"},
        )
    )

    assert response.status_code == 400
    assert "invalid_iss" in response.text
    assert "https://attacker.example" in response.text


def test_a_callback_without_a_code_is_a_bad_request(department_app):
    response = department_app("tax").test_client().get("/auth/callback?state=abc")

    assert response.status_code == 400
    assert "missing_code" in response.text


@pytest.mark.parametrize("kind", DEPARTMENTS)
def test_sign_in_when_the_idp_is_unreachable_says_so(department_app, kind):
    response = department_app(kind).test_client().get("/sign-in")

    assert response.status_code == 503
    assert "The sign-in service is unavailable" in response.text
    assert "Traceback" not in response.text


def test_a_callback_when_the_idp_is_unreachable_says_so(department_app):
    response = department_app("driving").test_client().get("/auth/callback?code=abc&state=def")

    assert response.status_code == 503
    assert "The sign-in service is unavailable" in response.text


def test_an_unknown_prompt_is_refused(department_app):
    response = department_app("tax").test_client().get("/sign-in?prompt=sudo")

    assert response.status_code == 400
    assert "invalid_prompt" in response.text


def test_an_unknown_page_is_a_friendly_404(department_app):
    response = department_app("tax").test_client().get("/no-such-page")

    assert response.status_code == 404
    assert "Page not found" in response.text


@pytest.mark.parametrize("kind", ["tax", "health"])
def test_jwks_publishes_only_the_public_key_with_a_thumbprint_kid(department_app, kind):
    app = department_app(kind)

    response = app.test_client().get("/jwks.json")

    assert response.status_code == 200
    [jwk] = response.get_json()["keys"]
    assert not PRIVATE_RSA_MEMBERS & set(jwk)
    assert {"kty": "RSA", "use": "sig", "alg": "RS256"}.items() <= jwk.items()
    assert jwk["kid"] == RSAKey.import_key(jwk).thumbprint()
    key_path = Path(app.extensions["relying_party"].settings.private_key_path)
    private_key = RSAKey.import_key(key_path.read_bytes())
    assert jwk["n"] == private_key.as_dict()["n"]


@pytest.mark.parametrize("kind", ["driving", "benefits", "council"])
def test_a_service_without_a_key_publishes_no_keys(department_app, kind):
    response = department_app(kind).test_client().get("/jwks.json")

    assert response.status_code == 404


def test_the_private_key_is_created_owner_only_and_reused(department_app, tmp_path):
    key_path = tmp_path / "keys" / "tax.pem"
    assert not key_path.parent.exists()

    first_kid = department_app("tax").test_client().get("/jwks.json").get_json()["keys"][0]
    second_kid = department_app("tax").test_client().get("/jwks.json").get_json()["keys"][0]

    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert b"PRIVATE KEY" in key_path.read_bytes()
    assert first_kid == second_kid
    assert [path.name for path in key_path.parent.iterdir()] == ["tax.pem"]


def test_settings_give_the_urls_to_register(department_settings):
    settings: DepartmentSettings = department_settings("driving", "http://localhost:8000/")

    assert settings.redirect_uri == "http://localhost:8002/auth/callback"
    assert settings.post_logout_redirect_uri == "http://localhost:8002/"
    assert settings.backchannel_logout_uri == "http://localhost:8002/backchannel-logout"
    assert settings.jwks_uri == "http://localhost:8002/jwks.json"
    assert settings.server_metadata_url == (
        "http://localhost:8000/.well-known/openid-configuration"
    )


# Sign-in against the stand-in IdP


def test_discovery_is_fetched_on_first_sign_in_not_at_start_up(signed_up, fake_idp):
    _, client = signed_up("tax")
    assert fake_idp.discovery_fetches == 0

    client.get("/sign-in")
    client.get("/sign-in")

    assert fake_idp.discovery_fetches == 1


@pytest.mark.parametrize("kind", DEPARTMENTS)
def test_sign_in_asks_for_code_with_pkce_state_nonce_and_scope(signed_up, fake_idp, kind):
    app, client = signed_up(kind)
    settings = app.extensions["relying_party"].settings

    response = client.get("/sign-in")

    location = urlsplit(response.headers["Location"])
    params = {name: values[0] for name, values in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{fake_idp.issuer}/authorize"
    assert params["response_type"] == "code"
    assert params["client_id"] == settings.client_id
    assert params["redirect_uri"] == settings.redirect_uri
    assert params["scope"] == settings.scope
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 20
    assert len(params["nonce"]) >= 20
    assert "prompt" not in params


def test_sign_in_passes_prompt_through(signed_up):
    _, client = signed_up("tax")

    response = client.get("/sign-in?prompt=login")

    assert parse_qs(urlsplit(response.headers["Location"]).query)["prompt"] == ["login"]


def test_the_session_cookie_is_named_for_the_service_and_kept_from_scripts(signed_up):
    _, client = signed_up("tax")

    response = client.get("/sign-in")

    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("rp_tax_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


@pytest.mark.parametrize(
    ("kind", "headline"),
    [
        ("tax", "Welcome to your tax account"),
        ("driving", "Welcome to your driving licence record"),
        ("health", "Welcome to your health record"),
        ("benefits", "Welcome to your benefits"),
        ("council", "Welcome to your council tax account"),
    ],
)
def test_a_signed_in_citizen_sees_what_the_department_learned(signed_up, fake_idp, kind, headline):
    _, client = signed_up(kind)

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/account"
    page = client.get("/account").text
    assert headline in page
    assert "You are signed in as ada@example.com" in page
    assert fake_idp.CITIZEN_SUB in page
    assert "Ada Lovelace" in page
    assert "+447700900123" in page
    assert re.search(r'"govuk-tag govuk-tag--green">\s*Verified\s*<', page)
    assert re.search(r'"govuk-tag govuk-tag--orange">\s*Not verified\s*<', page)
    assert "5 March 2025 at 14:03:09 UTC" in page
    assert "<code>pwd</code>, <code>otp</code>" in page
    assert "sid-1234" in page
    assert fake_idp.issuer in page


def test_signing_out_forgets_the_citizen_and_signs_out_at_the_idp(signed_up, fake_idp):
    _, client = signed_up("tax")
    complete_sign_in(client, fake_idp)

    response = client.post("/sign-out")

    # RP-initiated logout: to the IdP's end_session_endpoint with the ID token as the hint.
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{fake_idp.issuer}/logout"
    params = parse_qs(location.query)
    assert params["client_id"] == ["tax"]
    assert params["post_logout_redirect_uri"] == ["http://localhost:8001/"]
    assert params["id_token_hint"][0].count(".") == 2
    assert client.get("/account").status_code == 302
    assert "You are signed in" not in client.get("/").text


def test_a_callback_used_twice_is_refused_kindly(signed_up, fake_idp):
    _, client = signed_up("tax")
    started = client.get("/sign-in")
    params = fake_idp.authorize(started.headers["Location"])
    assert client.get("/auth/callback", query_string=params).status_code == 302

    replayed = client.get("/auth/callback", query_string=params)

    assert replayed.status_code == 400
    assert "This sign-in has expired" in replayed.text


@pytest.mark.parametrize(
    ("iss", "error"),
    [(None, "missing_iss"), ("https://attacker.example", "invalid_iss")],
)
def test_a_code_without_the_right_iss_is_refused_before_it_is_exchanged(
    signed_up, fake_idp, iss, error
):
    _, client = signed_up("tax")

    response = complete_sign_in(client, fake_idp, iss=iss)

    assert response.status_code == 400
    assert error in response.text
    assert fake_idp.token_requests == []


@pytest.mark.parametrize(
    "id_token_changes",
    [
        {"nonce": "a-nonce-from-another-sign-in"},
        {"iss": "https://attacker.example"},
        {"aud": "another-department", "azp": "tax"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000},
    ],
    ids=["nonce", "iss", "aud", "expired"],
)
def test_an_id_token_that_fails_validation_is_refused(signed_up, fake_idp, id_token_changes):
    _, client = signed_up("tax")
    fake_idp.id_token_changes = id_token_changes

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 502
    assert "invalid_id_token" in response.text
    assert client.get("/account").status_code == 302


def test_an_id_token_signed_with_an_unknown_key_is_refused(signed_up, fake_idp):
    _, client = signed_up("tax")
    fake_idp.id_token_key = ECKey.generate_key("P-256", auto_kid=True)

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 502
    assert "invalid_id_token" in response.text


def test_userinfo_about_someone_else_is_refused(signed_up, fake_idp):
    _, client = signed_up("driving")
    fake_idp.userinfo_changes = {"sub": "someone-else"}

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 502
    assert "userinfo_sub_mismatch" in response.text
    assert client.get("/account").status_code == 302


def test_a_token_endpoint_error_is_named_on_the_page(signed_up, fake_idp):
    _, client = signed_up("driving")
    fake_idp.token_error = {"error": "invalid_grant", "error_description": "Code expired"}

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 502
    assert "invalid_grant" in response.text
    assert "Code expired" in response.text


def test_discovery_naming_another_issuer_makes_sign_in_unavailable(signed_up, fake_idp):
    _, client = signed_up("tax")
    fake_idp.discovery_changes = {"issuer": "https://attacker.example"}

    response = client.get("/sign-in")

    assert response.status_code == 503
    assert "The sign-in service is unavailable" in response.text
    fake_idp.discovery_changes = {}
    assert client.get("/sign-in").status_code == 302


def test_a_session_the_service_cannot_read_counts_as_signed_out(department_app):
    client = department_app("tax").test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = {"claims": {"sub": "citizen-1"}}

    assert client.get("/account").status_code == 302
    assert "You are signed in" not in client.get("/").text

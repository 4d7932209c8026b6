"""Registering a new service one question a page, then checking the answers (GOV.UK Design
System: question pages and check answers), driven over HTTP as a department administrator's
browser would."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from idp.accounts.identity.vocabulary import ADDRESS, CORE_IDENTITY_JWT
from tests.departments import (
    PASSPORTS,
    REDIRECT_URI,
    StaffBrowser,
    count_clients,
    error_summary,
    make_service,
    make_staff,
    stored_client,
    visible_text,
)
from tests.departments.test_department_pages import (
    CHECK_ANSWERS,
    QUESTIONS,
    answer_questions,
    pem_private_key,
    pem_public_key,
    shown_code,
)
from tests.support.audit import captured_log, logged_events

NAME, RETURN, INFORMATION, IDENTITY, PROOF, SIGN_OUT, LOGO = (path for path, _ in QUESTIONS)
ANSWERS = {
    "client_name": "Renew your passport",
    "client_name_cy": "Adnewyddu eich pasbort",
    "redirect_uris": f"{REDIRECT_URI}\nhttps://passport.example.gov.uk/other",
    "scopes": ["email", "profile"],
    "identity_claims": [ADDRESS, CORE_IDENTITY_JWT],
    "method": "secret",
    "post_logout_redirect_uris": "https://passport.example.gov.uk/signed-out",
    "logo_uri": "https://passport.example.gov.uk/logo.png",
}


@pytest.fixture
def signed_in(idp) -> StaffBrowser:
    """HM Passport Office's administrator, signed in."""
    admin = make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    return StaffBrowser(idp.issuer).signed_in(admin)


def heading(page: httpx.Response) -> str:
    """The page's main heading (a legend or label can be the heading on a question page)."""
    match = re.search(r"<h1[^>]*>(.*?)</h1>", page.text, re.S)
    assert match, page.text[:1000]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def back_link(page: httpx.Response) -> str:
    """Where the page's Back link goes."""
    match = re.search(r'<a href="([^"]+)" class="govuk-back-link"', page.text)
    assert match, "no Back link"
    return match.group(1).replace("&amp;", "&")


def change_link(page: httpx.Response, answer: str) -> str:
    """The check-answers page's Change link for an answer (its hidden text names it)."""
    links = re.findall(
        r'<a class="govuk-link" href="([^"]+)">\s*Change<span class="govuk-visually-hidden"> '
        r"([^<]+)</span>",
        page.text,
    )
    return next(href.replace("&amp;", "&") for href, hidden in links if hidden == answer)


def register(browser: StaffBrowser, check: httpx.Response) -> httpx.Response:
    """Press "Register this service" on the check-answers page."""
    return browser.submit(check, action=CHECK_ANSWERS, button="Register this service")


def test_each_question_has_its_own_page_and_the_answers_are_checked_before_registering(
    idp, signed_in
):
    page = signed_in.get(NAME)
    expected = [
        (NAME, "What is your service called?", "/departments/"),
        (RETURN, "Where should citizens return to after signing in?", NAME),
        (INFORMATION, "What does your service need to know about citizens?", RETURN),
        (IDENTITY, "Does the service need the citizen's verified identity?", INFORMATION),
        (PROOF, "How will your service prove who it is?", IDENTITY),
        (SIGN_OUT, "Where can citizens go after signing out? (optional)", PROOF),
        (LOGO, "What is the address of your service's logo? (optional)", SIGN_OUT),
    ]
    for (path, names), (_, title, back) in zip(QUESTIONS, expected, strict=True):
        assert urlsplit(str(page.url)).path == path
        assert heading(page) == title
        assert back_link(page) == back
        response = signed_in.submit(
            page, {n: ANSWERS[n] for n in names if n in ANSWERS}, action=path
        )
        assert response.is_redirect, error_summary(response)
        page = signed_in.follow(response)

    assert urlsplit(str(page.url)).path == CHECK_ANSWERS
    assert back_link(page) == LOGO
    shown = visible_text(page)
    for text in (
        "Service name Renew your passport",
        "Service name in Welsh Adnewyddu eich pasbort",
        f"Return addresses {REDIRECT_URI} https://passport.example.gov.uk/other",
        "What it needs to know A reference number for each citizen Their email address Their name",
        "Verified identity details Their name and date of birth, as checked (coreIdentityJWT) "
        "Their address, as checked (address)",
        "How it proves who it is A secret we give you",
        "Sign-out addresses https://passport.example.gov.uk/signed-out",
        "Logo address https://passport.example.gov.uk/logo.png",
    ):
        assert text in shown
    assert '<span lang="cy">Adnewyddu eich pasbort</span>' in page.text
    assert count_clients(idp.app) == 0, "nothing is registered before the button"

    with captured_log() as log:
        registered = register(signed_in, page)

    assert registered.status_code == 200, error_summary(registered)
    assert "shown only this once" in visible_text(registered)
    assert "Waiting for approval" in visible_text(registered)
    client = stored_client(idp.app, shown_code(registered, "client-id"))
    assert client.check_client_secret(shown_code(registered, "client-secret"))
    assert client.status == "pending" and client.department.name == PASSPORTS
    assert client.client_metadata == {
        "client_name": "Renew your passport",
        "client_name#cy": "Adnewyddu eich pasbort",
        "redirect_uris": [REDIRECT_URI, "https://passport.example.gov.uk/other"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "openid email profile",
        "id_token_signed_response_alg": "ES256",
        "subject_type": "pairwise",
        "post_logout_redirect_uris": ["https://passport.example.gov.uk/signed-out"],
        "logo_uri": "https://passport.example.gov.uk/logo.png",
        "identity_claims": [CORE_IDENTITY_JWT, ADDRESS],
    }
    (event,) = [e for e in logged_events(log.getvalue()) if e["event"] == "client.registered"]
    assert (event["via"], event["status"]) == ("department page", "pending")
    # The answers are gone: a second registration starts again at the first question.
    again = signed_in.get(CHECK_ANSWERS)
    assert again.is_redirect and urlsplit(again.headers["location"]).path == NAME
    assert 'value="Renew your passport"' not in signed_in.get(NAME).text


def test_optional_questions_can_be_left_empty(idp, signed_in):
    check = answer_questions(
        signed_in, client_name="Renew your passport", redirect_uris=REDIRECT_URI, method="secret"
    )
    shown = visible_text(check)
    assert "Sign-out addresses None" in shown and "Logo address None" in shown
    assert "What it needs to know A reference number for each citizen Change" in shown
    assert "Verified identity details None Change" in shown

    client = stored_client(idp.app, shown_code(register(signed_in, check), "client-id"))
    assert client.client_metadata["scope"] == "openid"
    assert "identity_claims" not in client.client_metadata
    assert "post_logout_redirect_uris" not in client.client_metadata
    assert "logo_uri" not in client.client_metadata


def test_the_key_fields_are_revealed_only_for_a_public_key(idp, signed_in):
    page = signed_in.get(PROOF)
    radios = re.search(r'<div class="govuk-radios"[^>]*>', page.text).group(0)
    assert 'data-module="govuk-radios"' in radios
    assert 'data-aria-controls="conditional-method-2"' in page.text
    reveal = re.search(r'<div class="([^"]*)" id="conditional-method-2">', page.text).group(1)
    assert "govuk-radios__conditional--hidden" in reveal
    assert page.text.index('id="conditional-method-2"') < page.text.index('id="public_key"')
    assert 'id="conditional-method-1"' not in page.text, "a secret needs no field"


@pytest.mark.parametrize("given", ["pasted", "address"])
def test_a_service_with_a_public_key_gets_no_secret(idp, signed_in, jwks_server, given):
    private = ec.generate_private_key(ec.SECP256R1())
    key = (
        {"public_key": pem_public_key(private)}
        if given == "pasted"
        else {"jwks_uri": jwks_server.url}
    )
    check = answer_questions(
        signed_in,
        client_name="Renew your passport",
        redirect_uris=REDIRECT_URI,
        method="key",
        **key,
    )
    shown = visible_text(check)
    summary = (
        "1 public key(s) pasted" if given == "pasted" else f"Keys published at {jwks_server.url}"
    )
    assert f"How it proves who it is Your public key (more secure) {summary}" in shown

    registered = register(signed_in, check)

    assert registered.status_code == 200, error_summary(registered)
    assert 'id="client-secret"' not in registered.text
    client = stored_client(idp.app, shown_code(registered, "client-id"))
    assert client.token_endpoint_auth_method == "private_key_jwt"
    assert client.client_secret_hash is None
    if given == "pasted":
        assert client.jwks["keys"][0]["crv"] == "P-256"
    else:
        assert client.jwks_uri == jwks_server.url


def test_changing_from_a_key_to_a_secret_forgets_the_key(idp, signed_in):
    check = answer_questions(
        signed_in,
        client_name="Renew your passport",
        redirect_uris=REDIRECT_URI,
        method="key",
        jwks_uri="https://passport.example.gov.uk/jwks.json",
    )
    page = signed_in.get(change_link(check, "how it proves who it is"))
    assert back_link(page) == CHECK_ANSWERS

    response = signed_in.submit(page, {"method": "secret"}, action=PROOF)

    assert urlsplit(response.headers["location"]).path == CHECK_ANSWERS
    check = signed_in.follow(response)
    assert "How it proves who it is A secret we give you Change" in visible_text(check)
    client = stored_client(idp.app, shown_code(register(signed_in, check), "client-id"))
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert "jwks_uri" not in client.client_metadata


def test_a_change_link_returns_to_check_answers_with_the_new_answer(idp, signed_in):
    check = answer_questions(signed_in, **ANSWERS)
    href = change_link(check, "return addresses")
    assert href == f"{RETURN}?change=1"
    page = signed_in.get(href)
    assert REDIRECT_URI in page.text, "the answer given is shown to change"
    assert back_link(page) == CHECK_ANSWERS

    response = signed_in.submit(
        page, {"redirect_uris": "https://passport.example.gov.uk/new"}, action=RETURN
    )

    assert urlsplit(response.headers["location"]).path == CHECK_ANSWERS
    shown = visible_text(signed_in.follow(response))
    assert "Return addresses https://passport.example.gov.uk/new Change" in shown
    assert "Service name Renew your passport" in shown, "the other answers are kept"


def test_the_identity_answer_can_be_changed_from_none_to_details(idp, signed_in):
    check = answer_questions(signed_in, **{**ANSWERS, "identity_claims": ["none"]})
    assert "Verified identity details None Change" in visible_text(check)
    page = signed_in.get(change_link(check, "verified identity details"))
    assert back_link(page) == CHECK_ANSWERS
    assert re.search(r'value="none"\s+checked', page.text), "the answer given is shown"

    response = signed_in.submit(page, {"identity_claims": [CORE_IDENTITY_JWT]}, action=IDENTITY)

    assert urlsplit(response.headers["location"]).path == CHECK_ANSWERS
    check = signed_in.follow(response)
    assert (
        "Verified identity details Their name and date of birth, as checked (coreIdentityJWT) "
        "Change"
    ) in visible_text(check)
    client = stored_client(idp.app, shown_code(register(signed_in, check), "client-id"))
    assert client.client_metadata["identity_claims"] == [CORE_IDENTITY_JWT]


@pytest.mark.parametrize(
    ("path", "fields", "field", "message"),
    [
        (NAME, {"client_name": ""}, "client_name", "Enter the service name"),
        (
            NAME,
            {"client_name": "Renew your p\u0430ssport"},
            "client_name",
            "mixes Latin and Cyrillic letters",
        ),
        (
            NAME,
            {"client_name": "Renew", "client_name_cy": "Adnewyddu\u202e"},
            "client_name_cy",
            "must not contain control characters",
        ),
        (RETURN, {"redirect_uris": ""}, "redirect_uris", "Enter at least one address"),
        (
            RETURN,
            {"redirect_uris": "http://passport.example.gov.uk/callback"},
            "redirect_uris",
            "must use https",
        ),
        (
            RETURN,
            {"redirect_uris": f"{REDIRECT_URI}\nhttps://other.example.gov.uk/callback"},
            "redirect_uris",
            "sector_identifier_uri is required for pairwise subjects",
        ),
        (IDENTITY, {}, "identity_claims", "Select the verified details your service needs"),
        (
            IDENTITY,
            {"identity_claims": [CORE_IDENTITY_JWT, "none"]},
            "identity_claims",
            "not both",
        ),
        (
            IDENTITY,
            {"identity_claims": ["https://vocab.account.gov.uk/v1/socialSecurityRecord"]},
            "identity_claims",
            "'https://vocab.account.gov.uk/v1/socialSecurityRecord' is not a verified identity "
            "detail this IdP offers",
        ),
        (PROOF, {}, "method", "Choose how your service will prove who it is"),
        (PROOF, {"method": "key"}, "public_key", "Paste your public key, or give the address"),
        (
            PROOF,
            {"method": "key", "public_key": "not a key", "jwks_uri": "https://a.example/jwks"},
            "public_key",
            "not both",
        ),
        (PROOF, {"method": "key", "public_key": "private"}, "public_key", "That is a private key"),
        (
            PROOF,
            {"method": "key", "jwks_uri": "http://keys.example.gov.uk/jwks.json"},
            "jwks_uri",
            "must use https",
        ),
        (
            SIGN_OUT,
            {"post_logout_redirect_uris": "https://x.example/a#b"},
            "post_logout_redirect_uris",
            "must not have a fragment",
        ),
        (LOGO, {"logo_uri": "passport.example.gov.uk/logo.png"}, "logo_uri", "is not an absolute"),
    ],
    ids=[
        "no name",
        "mixed scripts",
        "welsh control character",
        "no return address",
        "http return address",
        "two hosts",
        "no identity answer",
        "identity details and none",
        "unknown identity claim",
        "no choice",
        "no key",
        "key and address",
        "private key",
        "http key address",
        "sign-out fragment",
        "logo not absolute",
    ],
)
def test_each_question_refuses_a_bad_answer_on_its_own_page(
    idp, signed_in, path, fields, field, message
):
    if fields.get("public_key") == "private":
        fields = {**fields, "public_key": pem_private_key(ec.generate_private_key(ec.SECP256R1()))}
    page = signed_in.get(path)

    response = signed_in.submit(page, fields, action=path)

    assert response.status_code == 400
    (summary,) = error_summary(response)
    assert message in summary
    assert f'href="#{field}"' in response.text
    assert f'id="{field}-error"' in response.text, "the message is beside the field too"
    assert response.headers.get("content-type", "").startswith("text/html")
    assert "<title>Error: " in response.text
    assert back_link(response) == back_link(page)
    assert count_clients(idp.app) == 0


def test_check_answers_sends_back_to_the_first_question_not_answered(idp, signed_in):
    page = signed_in.get(NAME)
    signed_in.submit(page, {"client_name": "Renew your passport"}, action=NAME)

    response = signed_in.get(CHECK_ANSWERS)

    assert response.is_redirect and urlsplit(response.headers["location"]).path == RETURN


def test_a_refusal_at_registration_is_shown_on_the_question_it_concerns(idp, signed_in):
    check = answer_questions(signed_in, **ANSWERS)
    # Meanwhile another service of that name is approved: citizens could not tell them apart.
    make_service(idp.app, "Another department", "Renew your passport", approved=True)

    refused = register(signed_in, check)

    assert refused.status_code == 400
    assert heading(refused) == "What is your service called?"
    (summary,) = error_summary(refused)
    assert "is already the name of another active service" in summary
    assert 'href="#client_name"' in refused.text
    assert back_link(refused) == CHECK_ANSWERS
    assert count_clients(idp.app) == 1

    renamed = signed_in.submit(refused, {"client_name": "Renew your passport (Wales)"}, action=NAME)
    assert urlsplit(renamed.headers["location"]).path == CHECK_ANSWERS
    registered = register(signed_in, signed_in.follow(renamed))
    client = stored_client(idp.app, shown_code(registered, "client-id"))
    assert client.client_name == "Renew your passport (Wales)"


@pytest.mark.parametrize("page_path", [NAME, CHECK_ANSWERS])
def test_posts_without_the_csrf_token_or_from_another_site_change_nothing(
    idp, signed_in, page_path
):
    check = answer_questions(signed_in, **ANSWERS)
    page = check if page_path == CHECK_ANSWERS else signed_in.get(NAME)
    fields = {} if page_path == CHECK_ANSWERS else {"client_name": "Sneaky"}

    no_token = signed_in.submit(page, fields, action=page_path, drop=("csrf_token",))
    token = dict(signed_in.form(page, page_path).fields)["csrf_token"]
    foreign = signed_in.http.post(
        page_path,
        data={**fields, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )

    for response in (no_token, foreign):
        assert response.status_code in (400, 403)
        assert "Register this service" not in response.text
    assert count_clients(idp.app) == 0
    assert "Service name Renew your passport" in visible_text(signed_in.get(CHECK_ANSWERS))


def test_another_members_answers_are_not_shown(idp, signed_in):
    answer_questions(signed_in, **ANSWERS)
    other = make_staff(idp.app, "other@passports.example.gov.uk", department=PASSPORTS)
    signed_in.sign_in(other)

    assert 'value="Renew your passport"' not in signed_in.get(NAME).text
    assert signed_in.get(CHECK_ANSWERS).is_redirect


@pytest.mark.parametrize("path", [NAME, PROOF, CHECK_ANSWERS])
def test_a_platform_administrator_cannot_register_for_a_department(idp, path):
    browser = StaffBrowser(idp.issuer).signed_in(
        make_staff(idp.app, "platform@sign-in.example.gov.uk")
    )

    assert browser.get(path).status_code == 403


def test_answers_are_shown_as_text_on_check_answers(idp, signed_in):
    check = answer_questions(
        signed_in, client_name="Renew <b>passport</b>", redirect_uris=REDIRECT_URI, method="secret"
    )

    assert "Renew &lt;b&gt;passport&lt;/b&gt;" in check.text
    assert "<b>passport</b>" not in check.text

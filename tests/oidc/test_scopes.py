"""Scopes a department may ask for: unknown ones ignored (OIDC Core 3.1.2.1), unregistered ones
left out of the grant (RFC 6749 3.3, the token response says what was granted), and
offline_access (OIDC Core 11) honoured for departments registered for refresh tokens only."""

from __future__ import annotations

import httpx
import pytest

from tests.support.browser import CitizenBrowser, callback
from tests.support.registration import VALID_METADATA, issue_token, register

GRANTS = ["authorization_code", "refresh_token"]
OFFLINE_LINE = "can keep you signed in until you sign out, for up to 12 hours"


def consent_page(browser: CitizenBrowser, url: str, citizen: dict) -> httpx.Response:
    """Start the authorization and sign in with both factors; the consent page that follows."""
    page = browser.follow(browser.get(url))
    page = browser.sign_in(page, citizen["email"], citizen["password"])
    assert page.status_code == 200 and "wants to know who you are" in page.text, page.text[:500]
    return page


def tokens_after_consent(browser, client, attempt, page) -> dict:
    """Allow on the consent page, then redeem the code as the department does."""
    response = browser.consent(page)
    code = callback(response).params["code"]
    tokens = client.token_request(code, attempt.code_verifier)
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def userinfo(client, access_token: str) -> dict:
    response = client.http.get(
        client.discovery()["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {access_token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "scope", ["openid email address", "openid email https://example.gov.uk/custom x"]
)
def test_scopes_the_idp_does_not_know_are_ignored(idp, browser, citizen, make_client, scope):
    client = make_client("dept-a", scope="openid email")
    attempt = client.authorization(scope=scope)
    page = consent_page(browser, attempt.url, citizen)
    tokens = tokens_after_consent(browser, client, attempt, page)
    # RFC 6749 5.1: the token response says what was granted when it differs from the request.
    assert tokens["scope"] == "openid email"
    assert set(userinfo(client, tokens["access_token"])) == {"sub", "email", "email_verified"}


def test_scopes_the_department_did_not_register_are_left_out_and_the_response_says_so(
    idp, browser, citizen, make_client
):
    client = make_client("dept-a", scope="openid email")
    attempt = client.authorization(scope="openid email phone profile")
    page = consent_page(browser, attempt.url, citizen)
    # The citizen is asked only about what the department will receive.
    assert "your email address" in page.text
    assert "your phone number" not in page.text and "your full name" not in page.text
    tokens = tokens_after_consent(browser, client, attempt, page)
    assert tokens["scope"] == "openid email"


def test_offline_access_gives_a_refresh_token_to_a_department_registered_for_them(
    idp, browser, citizen, make_client
):
    client = make_client("dept-a", scope="openid email", grant_types=GRANTS)
    attempt = client.authorization(scope="openid email offline_access")
    page = consent_page(browser, attempt.url, citizen)
    # OIDC Core 11: the citizen is told the service may keep them signed in.
    assert OFFLINE_LINE in page.text
    tokens = tokens_after_consent(browser, client, attempt, page)
    assert tokens["refresh_token"]
    assert tokens["scope"] == "openid email offline_access"
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    auth = client._authenticate(form)
    refreshed = client.http.post(client.discovery()["token_endpoint"], data=form, auth=auth)
    assert refreshed.status_code == 200, refreshed.text
    assert userinfo(client, refreshed.json()["access_token"])["email"] == citizen["email"]


def test_offline_access_is_ignored_for_a_department_without_refresh_tokens(
    idp, browser, citizen, make_client
):
    client = make_client("dept-a", scope="openid email")
    attempt = client.authorization(scope="openid email offline_access")
    page = consent_page(browser, attempt.url, citizen)
    assert OFFLINE_LINE not in page.text
    tokens = tokens_after_consent(browser, client, attempt, page)
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "openid email"


def test_registration_accepts_offline_access(idp):
    metadata = {**VALID_METADATA, "scope": "openid email offline_access", "grant_types": GRANTS}
    response = register(idp, metadata, issue_token(idp))
    assert response.status_code == 201, response.text
    assert response.json()["scope"] == "openid email offline_access"
    assert (
        "offline_access"
        in httpx.get(idp.url("/.well-known/openid-configuration")).json()["scopes_supported"]
    )

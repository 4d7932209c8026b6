"""Signing up: a new account continues the department's journey; bad input is explained."""

from __future__ import annotations

import re

import pyotp
import pytest

from tests.support.browser import CitizenBrowser, callback

GOOD = {
    "email": "new.citizen@example.com",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "password": "a passphrase with spaces ✓",
    "confirm": "a passphrase with spaces ✓",
}


def sign_up_page(idp, client):
    """The sign-up page reached from a department's sign-in link."""
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization(scope="openid email profile")
    sign_in = browser.follow(browser.get(attempt.url))
    assert "Create your account" in sign_in.text
    start = sign_in.text.index("/sign-up")
    href = sign_in.text[start : sign_in.text.index('"', start)].replace("&amp;", "&")
    return browser, attempt, browser.get(idp.url(href))


def test_sign_up_creates_the_account_and_continues_to_the_department(idp, make_client):
    client = make_client()
    browser, attempt, page = sign_up_page(idp, client)
    setup = browser.follow(browser.submit(page, GOOD))
    # Every new account sets up an authenticator app before going on.
    assert "Set up an authenticator app" in setup.text
    secret = re.search(r'id="totp-secret">([^<]+)<', setup.text).group(1).replace(" ", "")
    codes = browser.submit(setup, {"code": pyotp.TOTP(secret).now()})
    assert codes.status_code == 200, codes.text[:400]
    assert len(re.findall(r"<li><code>[a-z0-9]{5}-[a-z0-9]{5}</code></li>", codes.text)) == 10
    resume = re.search(r'href="(/authorize/resume\?journey=[^"]+)"', codes.text).group(1)
    response = browser.follow(browser.get(idp.url(resume.replace("&amp;", "&"))))
    cb = callback(browser.consent(response))
    token = client.token_request(cb.params["code"], attempt.code_verifier)
    assert token.status_code == 200
    info = client.http.get(
        idp.url("/userinfo"), headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    ).json()
    assert info["email"] == GOOD["email"]
    assert info["given_name"] == "Ada"
    assert info["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": ""}, "Enter your email address"),
        ({"email": "not-an-email"}, "Enter an email address in the correct format"),
        ({"password": "short", "confirm": "short"}, "at least 8 characters"),
        ({"password": "x" * 257, "confirm": "x" * 257}, "256 characters or fewer"),
        (
            {"password": "iloveyou", "confirm": "iloveyou"},
            "This password is on a list of common or breached passwords. Choose another one.",
        ),
        (
            {"password": GOOD["email"], "confirm": GOOD["email"]},
            "Your password must not contain your email address",
        ),
        (
            {"password": "Government Sign In 1", "confirm": "Government Sign In 1"},
            "Your password must not contain the name of this service",
        ),
        ({"confirm": "something else"}, "The passwords you entered do not match"),
        ({"password": "", "confirm": ""}, "Enter a password"),
    ],
)
def test_sign_up_explains_bad_input(idp, make_client, changes, message):
    client = make_client()
    browser, _, page = sign_up_page(idp, client)
    response = browser.submit(page, {**GOOD, **changes})
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert message in response.text
    assert not any(h.startswith("idp_session=") for h in response.headers.get_list("set-cookie"))


def test_sign_up_with_an_existing_email_is_refused(idp, make_citizen, make_client):
    make_citizen(GOOD["email"])
    client = make_client()
    browser, _, page = sign_up_page(idp, client)
    response = browser.submit(page, GOOD)
    assert response.status_code == 400
    assert "An account already exists with this email address" in response.text


def test_a_form_without_its_csrf_token_is_refused(idp):
    browser = CitizenBrowser(idp.issuer)
    response = browser.http.post(idp.url("/sign-in"), data={"email": "a@b.c", "password": "x"})
    assert response.status_code == 400
    assert "This form has expired or was not sent from this site" in response.text


def test_emails_are_matched_case_insensitively(idp, make_citizen, make_client):
    citizen = make_citizen("Mixed.Case@Example.COM")
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, "mixed.case@example.com", citizen["password"])
    assert "code" in cb.params

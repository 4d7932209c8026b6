"""Signing up with a verified email: a code by email, then the password, then the second factor.

Sign-up never tells whether an address already has an account: the owner hears by email.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pyotp
import pytest

from idp import clock
from idp.extensions import db
from idp.models import Citizen, EmailCode
from idp.models.timestamps import utcnow
from tests.support.browser import CitizenBrowser, callback
from tests.support.mail import code_in, mails_to, wait_for_mail

DETAILS = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "password": "a passphrase with spaces ✓",
    "confirm": "a passphrase with spaces ✓",
}
CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+')


def unique_email() -> str:
    return f"new.citizen.{uuid.uuid4().hex[:10]}@example.com"


def sign_up_page(idp, client):
    """The sign-up page reached from a department's sign-in link."""
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization(scope="openid email profile")
    sign_in = browser.follow(browser.get(attempt.url))
    assert "Create your account" in sign_in.text
    start = sign_in.text.index("/sign-up")
    href = sign_in.text[start : sign_in.text.index('"', start)].replace("&amp;", "&")
    return browser, attempt, browser.get(idp.url(href))


def ask_for_code(idp, email: str, browser: CitizenBrowser | None = None):
    """A browser that typed an address on the sign-up page; its 'check your email' page."""
    browser = browser or CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-up"))
    check = browser.follow(browser.submit(page, {"email": email}))
    return browser, check


def details_page(idp, email: str):
    """A browser whose address is proven: the page asking for a password."""
    browser, check = ask_for_code(idp, email)
    code = code_in(wait_for_mail(idp, email))
    details = browser.follow(browser.submit(check, {"code": code}))
    assert details.status_code == 200
    return browser, details


def stored_citizen(idp, email: str) -> Citizen | None:
    with idp.app.app_context():
        return db.session.scalar(db.select(Citizen).filter_by(email=email))


def test_sign_up_proves_the_email_then_continues_to_the_department(idp, make_client):
    client = make_client()
    email = unique_email()
    browser, attempt, page = sign_up_page(idp, client)
    check = browser.follow(browser.submit(page, {"email": email}))
    assert "Check your email" in check.text
    assert email in check.text
    mail = wait_for_mail(idp, email)
    assert "Your code to create an account" in mail.subject
    assert "expires in 15 minutes" in mail.body
    details = browser.follow(browser.submit(check, {"code": code_in(mail)}))
    assert f"Your email address {email} is confirmed" in details.text
    setup = browser.follow(browser.submit_details(details, DETAILS))
    # Every new account sets up a second factor before going on.
    assert "Set up an authenticator app" in setup.text
    secret = re.search(r'id="totp-secret">([^<]+)<', setup.text).group(1).replace(" ", "")
    codes = browser.submit(setup, {"code": pyotp.TOTP(secret).now()})
    assert codes.status_code == 200, codes.text[:400]
    resume = re.search(r'href="(/authorize/resume\?journey=[^"]+)"', codes.text).group(1)
    response = browser.follow(browser.get(idp.url(resume.replace("&amp;", "&"))))
    cb = callback(browser.consent(response))
    token = client.token_request(cb.params["code"], attempt.code_verifier)
    assert token.status_code == 200
    info = client.http.get(
        idp.url("/userinfo"), headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    ).json()
    assert info["email"] == email
    assert info["email_verified"] is True
    assert info["name"] == "Ada Lovelace"


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("", "Enter your email address"),
        ("not-an-email", "Enter an email address in the correct format"),
        ("a" * 320 + "@example.com", "Email address must be 320 characters or fewer"),
    ],
)
def test_a_bad_email_address_is_explained_and_nothing_is_sent(idp, email, message):
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-up"))
    response = browser.submit(page, {"email": email})
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert message in response.text
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(EmailCode)) == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"password": "short", "confirm": "short"}, "at least 8 characters"),
        ({"password": "x" * 257, "confirm": "x" * 257}, "256 characters or fewer"),
        (
            {"password": "iloveyou", "confirm": "iloveyou"},
            "This password is on a list of common or breached passwords. Choose another one.",
        ),
        ("EMAIL", "Your password must not contain your email address"),
        (
            {"password": "Government Sign In 1", "confirm": "Government Sign In 1"},
            "Your password must not contain the name of this service",
        ),
        ({"confirm": "something else"}, "The passwords you entered do not match"),
        ({"password": "", "confirm": ""}, "Enter a password"),
    ],
)
def test_a_refused_password_is_explained_and_no_account_is_made(idp, changes, message):
    email = unique_email()
    if changes == "EMAIL":
        changes = {"password": email, "confirm": email}
    browser, details = details_page(idp, email)
    response = browser.submit_details(details, {**DETAILS, **changes})
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert message in response.text
    assert stored_citizen(idp, email) is None
    # The proven address is kept: the citizen fixes the password and goes on.
    fixed = browser.follow(browser.submit(response, DETAILS))
    assert "Set up an authenticator app" in fixed.text


@pytest.mark.both_databases
def test_a_taken_address_looks_the_same_and_its_owner_is_told(idp, make_citizen):
    owner = make_citizen(unique_email())
    fresh = unique_email()
    _, taken_page = ask_for_code(idp, owner["email"])
    _, fresh_page = ask_for_code(idp, fresh)

    def shown(page, email):
        return page.status_code, CSRF_VALUE.sub(r"\1CSRF", page.text).replace(email, "EMAIL")

    assert shown(taken_page, owner["email"]) == shown(fresh_page, fresh)
    mail = wait_for_mail(idp, owner["email"])
    assert mail.subject == "You already have a government sign in account"
    assert "/reset-password" in mail.body
    assert not re.search(r"\b\d{6}\b", mail.body)


@pytest.mark.both_databases
def test_no_code_creates_an_account_for_a_taken_address(idp, make_citizen):
    owner = make_citizen(unique_email())
    browser, check = ask_for_code(idp, owner["email"])
    wait_for_mail(idp, owner["email"])
    for guess in ("000000", "123456"):
        response = browser.submit(check, {"code": guess})
        assert response.status_code == 400
        assert "The code is not right" in response.text
    assert browser.follow(browser.get(idp.url("/sign-up/your-details"))).url.path == "/sign-up"


def submit_code(browser, page, code: str):
    """Type a code as a patient person would: waiting when asked to (growing delays)."""
    response = browser.submit(page, {"code": code})
    while response.status_code == 429:
        assert "Too many wrong codes. Wait" in response.text
        clock.advance(int(response.headers["Retry-After"]))
        response = browser.submit(page, {"code": code})
    return response


def test_wrong_codes_are_explained_and_five_spend_the_code(idp):
    email = unique_email()
    browser, check = ask_for_code(idp, email)
    right = code_in(wait_for_mail(idp, email))
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(4):
        response = submit_code(browser, check, wrong)
        assert response.status_code == 400
        assert "The code is not right" in response.text
    response = submit_code(browser, check, wrong)
    assert "You entered the wrong code too many times. Send another code." in response.text
    # Even the right code no longer works: the citizen must ask for another.
    response = submit_code(browser, check, right)
    assert "Send another code" in response.text
    assert "is confirmed" not in browser.follow(response).text


def test_send_another_code_replaces_the_first(idp):
    email = unique_email()
    browser, check = ask_for_code(idp, email)
    first = code_in(wait_for_mail(idp, email))
    resend_action = re.search(r'action="(/sign-up/send-again[^"]*)"', check.text).group(1)
    again = browser.follow(browser.submit(check, {}, action=resend_action.replace("&amp;", "&")))
    assert "We have sent you a new code" in again.text
    second = code_in(wait_for_mail(idp, email, count=2))
    if first != second:
        refused = browser.submit(again, {"code": first})
        assert "The code is not right" in refused.text
    details = browser.follow(browser.submit(again, {"code": second}))
    assert "is confirmed" in details.text


def test_a_code_works_only_in_the_browser_that_asked_for_it(idp):
    email = unique_email()
    _, check = ask_for_code(idp, email)
    code = code_in(wait_for_mail(idp, email))
    other, other_check = ask_for_code(idp, unique_email())
    response = other.submit(other_check, {"code": code})
    assert response.status_code == 400
    assert "The code is not right" in response.text


def test_an_expired_code_is_refused(idp):
    email = unique_email()
    browser, check = ask_for_code(idp, email)
    code = code_in(wait_for_mail(idp, email))
    with idp.app.app_context():
        row = db.session.scalar(db.select(EmailCode).filter_by(email=email))
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    response = browser.submit(check, {"code": code})
    assert response.status_code == 400
    assert "The code has expired. Send another code." in response.text


def test_the_password_page_needs_a_proven_address(idp):
    browser = CitizenBrowser(idp.issuer)
    response = browser.get(idp.url("/sign-up/your-details"))
    assert response.status_code == 302
    assert response.headers["location"].endswith("/sign-up")
    # Asking for a code is not proving it.
    browser, _ = ask_for_code(idp, unique_email(), browser)
    response = browser.get(idp.url("/sign-up/your-details"))
    assert response.status_code == 302


def test_one_proven_code_makes_one_account(idp):
    email = unique_email()
    browser, details = details_page(idp, email)
    created = browser.submit_details(details, DETAILS)
    assert created.status_code == 303
    again = browser.submit_details(details, DETAILS)
    assert again.status_code in (303, 400)
    assert "/two-factor/setup" not in again.headers.get("location", "")
    with idp.app.app_context():
        count = db.session.scalar(
            db.select(db.func.count()).select_from(Citizen).filter_by(email=email)
        )
    assert count == 1


def test_asking_for_many_codes_is_slowed_down(idp):
    email = unique_email()
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-up"))
    statuses = []
    for _ in range(6):
        response = browser.submit(page, {"email": email})
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert int(response.headers["Retry-After"]) >= 1
    assert "You have asked for too many codes" in response.text
    assert len(mails_to(idp, email)) == len(statuses) - 1


def test_a_form_without_its_csrf_token_is_refused(idp):
    browser = CitizenBrowser(idp.issuer)
    response = browser.http.post(idp.url("/sign-up"), data={"email": "a@example.com"})
    assert response.status_code == 400
    assert "This form has expired or was not sent from this site" in response.text


def test_emails_are_matched_case_insensitively(idp, make_citizen, make_client):
    citizen = make_citizen("Mixed.Case@Example.COM")
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, "mixed.case@example.com", citizen["password"])
    assert "code" in cb.params
    # Signing up again with other capitals is signing up with the same, taken, address.
    _, check = ask_for_code(idp, "MIXED.case@example.com")
    assert "Check your email" in check.text
    mail = wait_for_mail(idp, "mixed.case@example.com")
    assert mail.subject == "You already have a government sign in account"

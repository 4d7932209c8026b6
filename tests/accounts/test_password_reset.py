"""Resetting a forgotten password: a code by email, then the second factor, then the new password.
Everything else is signed out, the departments' tokens end, and the owner is told by email."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.support.browser import SECOND_FACTORS, CitizenBrowser
from tests.support.mail import code_in, mails_to, wait_for_mail

NEW_PASSWORD = "a brand new passphrase for my account"
CSRF_VALUE = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+')


def unique_email() -> str:
    return f"forgetful.{uuid.uuid4().hex[:10]}@example.com"


def ask_for_reset(idp, email: str, browser: CitizenBrowser | None = None):
    """The password page's 'forgotten password' link, then the address: the code page."""
    browser = browser or CitizenBrowser(idp.issuer)
    sign_in = browser.follow(browser.submit(browser.get(idp.url("/sign-in")), {"email": email}))
    href = re.search(r'href="(/reset-password[^"]*)"', sign_in.text).group(1)
    page = browser.get(idp.url(href))
    assert "Reset your password" in page.text
    check = browser.follow(browser.submit(page, {"email": email}))
    assert "Check your email" in check.text
    return browser, check


def prove_email(idp, citizen):
    """A browser through the email step of a reset: the second-factor page."""
    browser, check = ask_for_reset(idp, citizen["email"])
    mail = wait_for_mail(idp, citizen["email"])
    assert "Your code to reset your password" in mail.subject
    second = browser.follow(browser.submit(check, {"code": code_in(mail)}))
    return browser, second


def pass_second_factor(idp, browser, page, email: str):
    """Type the app's next code (a recovery code, on its page, when the app has none left)."""
    code = SECOND_FACTORS[email].next_code()
    if "-" in code:
        page = browser.get(idp.url("/reset-password/second-factor?method=recovery"))
    return browser.follow(browser.submit(page, {"code": code}))


def signed_in_elsewhere(idp, make_client, citizen):
    """Another browser signed in, and a department holding an access token."""
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    token = client.token_request(cb.params["code"], attempt.code_verifier).json()["access_token"]
    return browser, client, token


def userinfo_status(idp, client, token: str) -> int:
    return client.http.get(
        idp.url("/userinfo"), headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_a_reset_needs_the_email_and_the_app_and_signs_out_everywhere(
    idp, make_citizen, make_client
):
    citizen = make_citizen(unique_email())
    other_browser, client, token = signed_in_elsewhere(idp, make_client, citizen)
    assert userinfo_status(idp, client, token) == 200

    browser, second = prove_email(idp, citizen)
    assert "Enter the code from your authenticator app" in second.text
    assert "someone who gets into your email cannot take over your account" in second.text
    new = pass_second_factor(idp, browser, second, citizen["email"])
    assert "Choose a new password" in new.text
    done = browser.follow(browser.submit(new, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}))
    assert "Your password has been reset" in done.text
    assert "Your account" in done.text

    # Everything signed in before is signed out; the department's token no longer works.
    assert other_browser.get(idp.url("/")).headers["location"].endswith("/sign-in")
    assert userinfo_status(idp, client, token) == 401
    # The owner is told.
    notice = wait_for_mail(idp, citizen["email"], count=2)
    assert notice.subject == "Your password was changed"
    assert "was reset at" in notice.body
    # The old password no longer works; the new one does.
    fresh = CitizenBrowser(idp.issuer)
    page = fresh.get(idp.url("/sign-in"))
    refused = fresh.submit_sign_in(page, citizen["email"], citizen["password"])
    assert "Enter the correct password for this email address" in refused.text
    page = fresh.get(idp.url("/sign-in"))
    accepted = fresh.sign_in(page, citizen["email"], NEW_PASSWORD)
    assert "Your account" in accepted.text


def test_an_unknown_address_looks_the_same_and_gets_no_email(idp, make_citizen):
    citizen = make_citizen(unique_email())
    unknown = unique_email()
    _, known_page = ask_for_reset(idp, citizen["email"])
    browser, unknown_page = ask_for_reset(idp, unknown)

    def shown(page, email):
        return page.status_code, CSRF_VALUE.sub(r"\1CSRF", page.text).replace(email, "EMAIL")

    assert shown(known_page, citizen["email"]) == shown(unknown_page, unknown)
    wait_for_mail(idp, citizen["email"])
    assert mails_to(idp, unknown) == []
    response = browser.submit(unknown_page, {"code": "123456"})
    assert response.status_code == 400
    assert "The code is not right" in response.text


def test_the_email_alone_never_reaches_the_new_password(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, second = prove_email(idp, citizen)
    skipped = browser.get(idp.url("/reset-password/new-password"))
    assert skipped.status_code == 302
    assert skipped.headers["location"].startswith("/reset-password")
    assert "new-password" not in skipped.headers["location"]
    wrong = browser.submit(second, {"code": "000000"})
    assert wrong.status_code == 400
    assert "Enter the 6-digit code your authenticator app shows now" in wrong.text
    assert browser.get(idp.url("/reset-password/new-password")).status_code == 302


def test_a_recovery_code_can_stand_in_for_a_lost_app(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, second = prove_email(idp, citizen)
    href = re.search(
        r'href="(/reset-password/second-factor[^"]*method=recovery[^"]*)"', second.text
    )
    page = browser.get(idp.url(href.group(1).replace("&amp;", "&")))
    assert "Use a recovery code" in page.text
    wrong = browser.submit(page, {"code": "aaaaa-bbbbb"})
    assert "Enter one of your recovery codes" in wrong.text
    code = SECOND_FACTORS[citizen["email"]].recovery_codes.pop()
    new = browser.follow(browser.submit(page, {"code": code}))
    assert "Choose a new password" in new.text
    # Each recovery code works once.
    browser2, second2 = prove_email(idp, citizen)
    page2 = browser2.get(idp.url("/reset-password/second-factor?method=recovery"))
    again = browser2.submit(page2, {"code": code})
    assert again.status_code == 400


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("iloveyou", "This password is on a list of common or breached passwords"),
        ("short", "Your password must be at least 8 characters long"),
        ("EMAIL", "Your password must not contain your email address"),
    ],
)
def test_a_refused_new_password_is_explained_and_nothing_changes(
    idp, make_citizen, password, message
):
    citizen = make_citizen(unique_email())
    password = citizen["email"] if password == "EMAIL" else password
    browser, second = prove_email(idp, citizen)
    new = pass_second_factor(idp, browser, second, citizen["email"])
    refused = browser.submit(new, {"password": password, "confirm": password})
    assert refused.status_code == 400
    assert message in refused.text
    fresh = CitizenBrowser(idp.issuer)
    page = fresh.get(idp.url("/sign-in"))
    assert "Your account" in fresh.sign_in(page, citizen["email"], citizen["password"]).text


def test_one_reset_per_code(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, second = prove_email(idp, citizen)
    new = pass_second_factor(idp, browser, second, citizen["email"])
    browser.submit(new, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    again = browser.submit(new, {"password": "yet another passphrase", "confirm": "x"})
    assert again.status_code == 303
    assert again.headers["location"].startswith("/reset-password")
    fresh = CitizenBrowser(idp.issuer)
    page = fresh.get(idp.url("/sign-in"))
    assert "Your account" in fresh.sign_in(page, citizen["email"], NEW_PASSWORD).text


def test_an_account_without_a_second_factor_sets_one_up_after_the_reset(idp, make_citizen):
    citizen = make_citizen(unique_email(), second_factor=False)
    browser, _ = ask_for_reset(idp, citizen["email"])
    check = browser.get(idp.url("/reset-password/check-email"))
    new = browser.follow(
        browser.submit(check, {"code": code_in(wait_for_mail(idp, citizen["email"]))})
    )
    assert "Choose a new password" in new.text
    after = browser.follow(browser.submit(new, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}))
    assert "Set up an authenticator app" in after.text


def test_a_passkey_only_account_is_not_reset_by_email_alone(idp, make_citizen):
    from idp.extensions import db
    from idp.models import Passkey

    citizen = make_citizen(unique_email(), second_factor=False)
    with idp.app.app_context():
        db.session.add(
            Passkey(
                citizen_id=citizen["id"],
                credential_id="credential-" + uuid.uuid4().hex,
                public_key=b"not used here",
                device_type="single_device",
                name="Phone",
            )
        )
        db.session.commit()
    browser, check = ask_for_reset(idp, citizen["email"])
    refused = browser.submit(check, {"code": code_in(wait_for_mail(idp, citizen["email"]))})
    refused = browser.follow(refused)
    assert refused.status_code == 403
    assert "Sign in with your passkey" in refused.text
    assert browser.get(idp.url("/reset-password/new-password")).status_code == 302

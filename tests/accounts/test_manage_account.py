"""Changing the account: password, email, authenticator app (a lost phone), recovery codes, and
deleting it. Each needs the current password; the owner hears of each by email."""

from __future__ import annotations

import html
import re
import time
import uuid

import httpx
import pyotp
import pytest

from idp.extensions import db
from idp.models import Citizen, Consent, Token
from tests.support.browser import SECOND_FACTORS, CitizenBrowser, SecondFactor
from tests.support.mail import code_in, mails_to, wait_for_mail

NEW_PASSWORD = "another long passphrase for this account"
RECOVERY_CODE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


def unique_email(name: str = "citizen") -> str:
    return f"{name}.{uuid.uuid4().hex[:10]}@example.com"


def signed_in(idp, citizen, client=None):
    """A browser signed in with the second factor; with a client, the department's token."""
    browser = CitizenBrowser(idp.issuer)
    if client is None:
        page = browser.sign_in(
            browser.get(idp.url("/sign-in")), citizen["email"], citizen["password"]
        )
        assert "Your account" in page.text, page.text[:400]
        return browser, None
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    token = client.token_request(cb.params["code"], attempt.code_verifier).json()["access_token"]
    return browser, token


def sign_in_works(idp, email: str, password: str) -> bool:
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    response = browser.follow(browser.submit_sign_in(page, email, password))
    return "Enter the correct password for this email address" not in response.text


def userinfo_status(idp, token: str) -> int:
    return httpx.get(idp.url("/userinfo"), headers={"Authorization": f"Bearer {token}"}).status_code


def test_the_account_page_links_to_every_change(idp, make_citizen):
    browser, _ = signed_in(idp, make_citizen(unique_email()))
    page = browser.get(idp.url("/"))
    for path in (
        "/account/password",
        "/account/email",
        "/account/authenticator-app",
        "/account/recovery-codes",
        "/account/passkeys",
        "/account/delete",
    ):
        assert f'href="{path}"' in page.text, path


@pytest.mark.parametrize(
    "path",
    ["/account/password", "/account/email", "/account/authenticator-app", "/account/delete"],
)
def test_changes_need_a_session_with_the_second_factor(idp, make_citizen, path):
    citizen = make_citizen(unique_email())
    anonymous = CitizenBrowser(idp.issuer).get(idp.url(path))
    assert anonymous.status_code == 302
    assert anonymous.headers["location"].endswith("/sign-in")
    # The password alone is not enough either.
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    browser.submit_sign_in(page, citizen["email"], citizen["password"])
    response = browser.get(idp.url(path))
    assert response.status_code == 302
    assert "/sign-in/second-factor" in response.headers["location"]


def test_changing_the_password_signs_out_everything_else(idp, make_citizen, make_client):
    citizen = make_citizen(unique_email())
    other, token = signed_in(idp, citizen, make_client())
    browser, _ = signed_in(idp, citizen)
    page = browser.get(idp.url("/account/password"))
    wrong = browser.submit(
        page,
        {"current_password": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert wrong.status_code == 400
    assert "Your current password is not right" in wrong.text
    common = browser.submit(
        page,
        {"current_password": citizen["password"], "password": "iloveyou", "confirm": "iloveyou"},
    )
    assert common.status_code == 400
    assert "list of common or breached passwords" in common.text
    done = browser.follow(
        browser.submit(
            page,
            {
                "current_password": citizen["password"],
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
    )
    assert "Your password has been changed" in done.text
    # This browser stays signed in; the other browser and the department's token do not.
    assert browser.get(idp.url("/")).status_code == 200
    assert other.get(idp.url("/")).status_code == 302
    assert userinfo_status(idp, token) == 401
    assert not sign_in_works(idp, citizen["email"], citizen["password"])
    assert sign_in_works(idp, citizen["email"], NEW_PASSWORD)
    notice = wait_for_mail(idp, citizen["email"])
    assert notice.subject == "Your password was changed"


def test_wrong_current_passwords_are_throttled(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, _ = signed_in(idp, citizen)
    page = browser.get(idp.url("/account/password"))
    statuses = []
    for _ in range(8):
        response = browser.submit(
            page,
            {
                "current_password": "wrong wrong wrong",
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert "Retry-After" in response.headers


def test_changing_the_email_proves_the_new_address_and_tells_the_old(idp, make_citizen):
    citizen = make_citizen(unique_email("old"))
    new_address = unique_email("new")
    browser, _ = signed_in(idp, citizen)
    page = browser.get(idp.url("/account/email"))
    check = browser.follow(
        browser.submit(page, {"current_password": citizen["password"], "email": new_address})
    )
    assert "Check your email" in check.text
    assert new_address in check.text
    code = code_in(wait_for_mail(idp, new_address))
    wrong = browser.submit(check, {"code": f"{(int(code) + 1) % 1_000_000:06d}"})
    assert "The code is not right" in wrong.text
    done = browser.follow(browser.submit(check, {"code": code}))
    assert "Your email address has been changed" in done.text
    assert new_address in done.text
    notice = wait_for_mail(idp, citizen["email"])
    assert notice.subject == "The email address of your account was changed"
    assert new_address in notice.body
    assert sign_in_works(idp, new_address, citizen["password"])
    assert not sign_in_works(idp, citizen["email"], citizen["password"])


@pytest.mark.both_databases
def test_an_email_that_has_an_account_cannot_be_taken(idp, make_citizen):
    citizen = make_citizen(unique_email("mover"))
    other = make_citizen(unique_email("owner"))
    browser, _ = signed_in(idp, citizen)
    page = browser.get(idp.url("/account/email"))
    check = browser.follow(
        browser.submit(page, {"current_password": citizen["password"], "email": other["email"]})
    )
    # Same page as for a free address; the owner hears, and no code works.
    assert "Check your email" in check.text
    mail = wait_for_mail(idp, other["email"])
    assert "already has a government sign in account" in mail.subject
    assert "nothing was changed" in mail.body
    assert browser.submit(check, {"code": "123456"}).status_code == 400
    with idp.app.app_context():
        assert db.session.get(Citizen, citizen["id"]).email == citizen["email"]


def test_bad_email_change_input_is_explained(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, _ = signed_in(idp, citizen)
    page = browser.get(idp.url("/account/email"))
    for fields, message in [
        ({"current_password": citizen["password"], "email": "not an email"}, "correct format"),
        (
            {"current_password": citizen["password"], "email": citizen["email"]},
            "already your email",
        ),
        ({"current_password": "", "email": unique_email()}, "Enter your current password"),
        ({"current_password": "wrong password!", "email": unique_email()}, "not right"),
    ]:
        response = browser.submit(page, fields)
        assert response.status_code == 400
        assert message in response.text


def test_a_lost_app_is_replaced_after_a_recovery_code_and_an_email_code(idp, make_citizen):
    citizen = make_citizen(unique_email())
    factor = SECOND_FACTORS[citizen["email"]]
    # The phone is lost: sign in with a recovery code.
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    browser.submit_sign_in(page, citizen["email"], citizen["password"])
    recovery = browser.get(idp.url("/sign-in/recovery-code"))
    signed = browser.follow(browser.submit(recovery, {"code": factor.recovery_codes.pop()}))
    assert "Your account" in signed.text

    manage = browser.get(idp.url("/account/authenticator-app"))
    assert "Set up a new authenticator app" in manage.text
    check = browser.follow(browser.submit(manage, {"current_password": citizen["password"]}))
    assert "Check your email" in check.text
    mail = wait_for_mail(idp, citizen["email"], count=2)  # after the recovery-code notice
    assert "new authenticator app" in mail.subject
    setup = browser.follow(browser.submit(check, {"code": code_in(mail)}))
    assert "Set up an authenticator app" in setup.text
    secret = html.unescape(re.search(r'id="totp-secret">([^<]+)<', setup.text).group(1)).replace(
        " ", ""
    )
    assert secret != factor.secret
    # Reloading keeps the same key (an app that scanned it is not lost).
    again = browser.get(idp.url("/account/authenticator-app/new"))
    assert secret.replace(" ", "") in again.text.replace(" ", "")
    wrong = browser.submit(setup, {"code": "000000"})
    assert wrong.status_code == 400
    codes = browser.submit(setup, {"code": pyotp.TOTP(secret).now()})
    assert codes.status_code == 200
    new_codes = RECOVERY_CODE.findall(codes.text)
    assert len(new_codes) == 10
    notice = wait_for_mail(idp, citizen["email"], count=3)
    assert notice.subject == "You set up a new authenticator app"

    # The old app and the old recovery codes no longer work; the new ones do.
    SECOND_FACTORS[citizen["email"]] = SecondFactor(
        secret, new_codes, last_step=int(time.time() // 30)
    )
    old_app = CitizenBrowser(idp.issuer)
    page = old_app.get(idp.url("/sign-in"))
    step = old_app.follow(old_app.submit_sign_in(page, citizen["email"], citizen["password"]))
    refused = old_app.submit(step, {"code": pyotp.TOTP(factor.secret).now()})
    assert refused.status_code == 400
    recovery = old_app.get(idp.url("/sign-in/recovery-code"))
    assert old_app.submit(recovery, {"code": factor.recovery_codes.pop()}).status_code == 400
    fresh = CitizenBrowser(idp.issuer)
    page = fresh.sign_in(fresh.get(idp.url("/sign-in")), citizen["email"], citizen["password"])
    assert "Your account" in page.text


def test_the_new_app_page_needs_the_email_code(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, _ = signed_in(idp, citizen)
    response = browser.get(idp.url("/account/authenticator-app/new"))
    assert response.status_code == 302
    assert response.headers["location"].endswith("/account/authenticator-app")
    manage = browser.get(idp.url("/account/authenticator-app"))
    wrong = browser.submit(manage, {"current_password": "not the password"})
    assert wrong.status_code == 400
    assert mails_to(idp, citizen["email"]) == []


def test_new_recovery_codes_replace_the_old_ones(idp, make_citizen):
    citizen = make_citizen(unique_email())
    old_codes = list(SECOND_FACTORS[citizen["email"]].recovery_codes)
    browser, _ = signed_in(idp, citizen)
    page = browser.get(idp.url("/account/recovery-codes"))
    assert "unused recovery codes" in page.text
    response = browser.submit(page, {"current_password": citizen["password"]})
    assert "Your new recovery codes" in response.text
    new_codes = RECOVERY_CODE.findall(response.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert wait_for_mail(idp, citizen["email"]).subject == "You have new recovery codes"
    other = CitizenBrowser(idp.issuer)
    other.submit_sign_in(other.get(idp.url("/sign-in")), citizen["email"], citizen["password"])
    recovery = other.get(idp.url("/sign-in/recovery-code"))
    assert other.submit(recovery, {"code": old_codes[0]}).status_code == 400
    assert other.submit(recovery, {"code": new_codes[0]}).status_code == 303


def test_deleting_the_account_ends_everything(idp, make_citizen, make_client):
    citizen = make_citizen(unique_email())
    client = make_client()
    browser, token = signed_in(idp, citizen, client)
    page = browser.get(idp.url("/account/delete"))
    unconfirmed = browser.submit(page, {"current_password": citizen["password"]})
    assert unconfirmed.status_code == 400
    assert "Confirm that you want to delete your account" in unconfirmed.text
    wrong = browser.submit(page, {"current_password": "wrong password!", "confirm": "y"})
    assert wrong.status_code == 400
    with idp.app.app_context():
        assert db.session.get(Citizen, citizen["id"]) is not None
    done = browser.submit(page, {"current_password": citizen["password"], "confirm": "y"})
    assert done.status_code == 200
    assert "Your account has been deleted" in done.text
    assert userinfo_status(idp, token) == 401
    assert browser.get(idp.url("/")).status_code == 302
    assert not sign_in_works(idp, citizen["email"], citizen["password"])
    with idp.app.app_context():
        assert db.session.get(Citizen, citizen["id"]) is None
        assert (
            db.session.scalar(
                db.select(db.func.count()).select_from(Token).filter_by(citizen_id=citizen["id"])
            )
            == 0
        )
        assert (
            db.session.scalar(
                db.select(db.func.count()).select_from(Consent).filter_by(citizen_id=citizen["id"])
            )
            == 0
        )
    assert (
        wait_for_mail(idp, citizen["email"]).subject
        == "Your government sign in account was deleted"
    )
    # The address is free again: a new account can be made with it.
    check = CitizenBrowser(idp.issuer)
    page = check.get(idp.url("/sign-up"))
    check.submit(page, {"email": citizen["email"]})
    assert "Your code to create an account" in wait_for_mail(idp, citizen["email"], count=2).subject


def test_changes_need_the_csrf_token(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, _ = signed_in(idp, citizen)
    response = browser.http.post(
        idp.url("/account/delete"), data={"current_password": citizen["password"], "confirm": "y"}
    )
    assert response.status_code == 400
    with idp.app.app_context():
        assert db.session.get(Citizen, citizen["id"]) is not None


def test_a_new_email_address_signs_out_every_other_browser(idp, make_citizen):
    citizen = make_citizen(unique_email("moving"))
    other, _ = signed_in(idp, citizen)
    browser, _ = signed_in(idp, citizen)
    new_address = unique_email("moved")
    page = browser.get(idp.url("/account/email"))
    check = browser.follow(
        browser.submit(page, {"current_password": citizen["password"], "email": new_address})
    )
    browser.follow(browser.submit(check, {"code": code_in(wait_for_mail(idp, new_address))}))
    assert browser.get(idp.url("/")).status_code == 200
    assert other.get(idp.url("/")).status_code == 302


def test_a_new_authenticator_app_signs_out_every_other_browser(idp, make_citizen):
    citizen = make_citizen(unique_email())
    other, _ = signed_in(idp, citizen)
    browser, _ = signed_in(idp, citizen)
    manage = browser.get(idp.url("/account/authenticator-app"))
    check = browser.follow(browser.submit(manage, {"current_password": citizen["password"]}))
    setup = browser.follow(
        browser.submit(check, {"code": code_in(wait_for_mail(idp, citizen["email"]))})
    )
    secret = html.unescape(re.search(r'id="totp-secret">([^<]+)<', setup.text).group(1))
    done = browser.submit(setup, {"code": pyotp.TOTP(secret.replace(" ", "")).now()})
    assert done.status_code == 200
    assert browser.get(idp.url("/")).status_code == 200
    assert other.get(idp.url("/")).status_code == 302


def test_signing_out_forgets_a_half_finished_journey(idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser, _ = signed_in(idp, citizen)
    stranger_address = unique_email("stranger")
    page = browser.get(idp.url("/sign-up"))
    check = browser.follow(browser.submit(page, {"email": stranger_address}))
    browser.submit(check, {"code": code_in(wait_for_mail(idp, stranger_address))})
    assert browser.get(idp.url("/sign-up/your-details")).status_code == 200
    account = browser.get(idp.url("/"))
    browser.submit(account, {}, action="/sign-out")
    # The next person at this browser cannot finish it.
    assert browser.get(idp.url("/sign-up/your-details")).status_code == 302

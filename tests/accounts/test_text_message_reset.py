"""Codes by text message in a password reset, and the daily cap on codes sent to one number,
over HTTP: a citizen whose second factor is a phone resets with a code sent to it (single use,
expiry, wrong codes throttled with the app's, audited); every mix of app, passkey, phone and
recovery codes gets the right second step, or the right reason why not; and however many
networks ask, one number gets only so many codes a day, with a message that says so."""

from __future__ import annotations

import re
import uuid

import pytest

from idp.accounts.second_factor.logic import issue_recovery_codes
from idp.extensions import db
from idp.models import Citizen, Passkey, RecoveryCode
from idp.security import throttle
from idp.security.throttle import delay
from tests.accounts.test_password_reset import NEW_PASSWORD, ask_for_reset, unique_email
from tests.accounts.test_text_messages import (
    CHECK_PHONE,
    EXPIRED,
    TOO_MANY_SENT,
    TOO_MANY_WRONG,
    WRONG_CODE,
    give_phone,
    other_code,
    resend,
)
from tests.support.audit import captured_log, logged_events
from tests.support.browser import CitizenBrowser, error_beside
from tests.support.mail import code_in, texts_to, wait_for_mail, wait_for_text

APP_HEADING = "Enter the code from your authenticator app"
RECOVERY_HEADING = "Use a recovery code"
NEW_PASSWORD_HEADING = "Choose a new password"
PASSKEY_ONLY = "Your account is protected by a passkey"
BY_TEXT = "Get a code by text message instead"
RECOVERY_LINK = "I cannot use my phone: use a recovery code"
NUMBER_CAP = "We have sent as many codes to this phone number as we can in one day."


def phone_citizen(idp, make_citizen) -> dict:
    """A citizen whose only second factor is a phone (no recovery codes left)."""
    citizen = make_citizen(unique_email(), second_factor=False)
    citizen["number"] = give_phone(idp, citizen)
    return citizen


def email_proven(idp, citizen: dict):
    """A browser past the email step of a reset, and the page it lands on."""
    browser, check = ask_for_reset(idp, citizen["email"])
    code = code_in(wait_for_mail(idp, citizen["email"]))
    return browser, browser.follow(browser.submit(check, {"code": code}))


def give_recovery_codes(idp, citizen: dict) -> list[str]:
    with idp.app.app_context():
        return issue_recovery_codes(db.session.get(Citizen, citizen["id"]))


def give_passkey(idp, citizen: dict) -> None:
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


def password_status(idp, email: str, password: str) -> int:
    """What the password page answers: a redirect to the second step, or 400 when wrong."""
    fresh = CitizenBrowser(idp.issuer)
    return fresh.submit_sign_in(fresh.get(idp.url("/sign-in")), email, password).status_code


# -- Resetting with a code by text message ------------------------------------------------------


def test_a_phone_only_citizen_resets_with_a_code_by_text(idp, make_citizen):
    citizen = phone_citizen(idp, make_citizen)
    number = citizen["number"]
    with captured_log("idp.audit") as audit_lines:
        browser, page = email_proven(idp, citizen)
        # Straight to the code sent to the confirmed number, shown by its last four digits.
        assert page.status_code == 200 and CHECK_PHONE in page.text
        assert page.url.path == "/reset-password/text-message"
        assert f"ending <strong>{number[-4:]}</strong>" in page.text
        assert PASSKEY_ONLY not in page.text
        text = wait_for_text(idp, number)
        assert "reset the password" in text.body
        code = code_in(text)
        wrong = browser.submit(page, {"code": other_code(code)})
        assert wrong.status_code == 400
        assert error_beside(wrong.text, "code") == WRONG_CODE
        # The email alone (and a wrong code) never reaches the new password.
        assert browser.get(idp.url("/reset-password/new-password")).status_code == 302
        new = browser.follow(browser.submit(wrong, {"code": code}))
        assert NEW_PASSWORD_HEADING in new.text
        done = browser.follow(
            browser.submit(new, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        )
    assert done.status_code == 200 and "Your account" in done.text
    events = logged_events(audit_lines.getvalue())
    sent = [e for e in events if e["event"] == "sms_code.sent"]
    assert [e["purpose"] for e in sent] == ["reset"]
    failed = [e for e in events if e["event"] == "second_factor.failed"]
    assert [(e["factor"], e["during"]) for e in failed] == [("sms", "password_reset")]
    succeeded = [e for e in events if e["event"] == "second_factor.succeeded"]
    assert ("sms", "password_reset") in [(e["factor"], e["during"]) for e in succeeded]
    assert "password.reset" in [e["event"] for e in events]
    assert number not in audit_lines.getvalue() and code not in audit_lines.getvalue()
    # The new password works, the old one does not.
    assert password_status(idp, citizen["email"], NEW_PASSWORD) in (302, 303)
    assert password_status(idp, citizen["email"], citizen["password"]) == 400


def test_a_texted_reset_code_works_once(idp, make_citizen):
    citizen = phone_citizen(idp, make_citizen)
    browser, page = email_proven(idp, citizen)
    code = code_in(wait_for_text(idp, citizen["number"]))
    assert NEW_PASSWORD_HEADING in browser.follow(browser.submit(page, {"code": code})).text
    # A second reset: a new code is sent, and the old one is refused.
    again, page = email_proven(idp, citizen)
    fresh = code_in(wait_for_text(idp, citizen["number"], count=2))
    if fresh != code:
        refused = again.submit(page, {"code": code})
        assert refused.status_code == 400 and WRONG_CODE in refused.text
    assert NEW_PASSWORD_HEADING in again.follow(again.submit(page, {"code": fresh})).text


def test_an_expired_reset_code_is_refused_and_another_can_be_sent(idp, make_citizen, clock):
    citizen = phone_citizen(idp, make_citizen)
    browser, page = email_proven(idp, citizen)
    code = code_in(wait_for_text(idp, citizen["number"]))
    clock.advance(10 * 60 + 1)
    refused = browser.submit(page, {"code": code})
    assert refused.status_code == 400 and EXPIRED in refused.text
    sent = browser.follow(resend(browser, refused))
    assert "We have sent you a new code." in sent.text
    fresh = code_in(wait_for_text(idp, citizen["number"], count=2))
    assert NEW_PASSWORD_HEADING in browser.follow(browser.submit(sent, {"code": fresh})).text


def test_wrong_reset_codes_are_throttled_like_the_apps(idp, make_citizen, clock):
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("second_factor")
    refused_at = next(k for k in range(1, 1000) if k >= limits.max_failures or delay(limits, k) > 0)
    citizen = phone_citizen(idp, make_citizen)
    browser, page = email_proven(idp, citizen)
    code = code_in(wait_for_text(idp, citizen["number"]))
    for _attempt in range(refused_at - 1):
        page = browser.submit(page, {"code": other_code(code)})
        assert page.status_code == 400
    page = browser.submit(page, {"code": other_code(code)})
    assert page.status_code == 429 and TOO_MANY_WRONG in page.text
    assert browser.submit(page, {"code": code}).status_code == 429
    clock.advance(delay(limits, refused_at) + 0.3)
    assert NEW_PASSWORD_HEADING in browser.follow(browser.submit(page, {"code": code})).text


def test_a_phone_and_recovery_codes_offer_each_other(idp, make_citizen):
    citizen = phone_citizen(idp, make_citizen)
    codes = give_recovery_codes(idp, citizen)
    browser, page = email_proven(idp, citizen)
    assert CHECK_PHONE in page.text and RECOVERY_LINK in page.text
    assert "Use my authenticator app instead" not in page.text
    href = re.search(r'href="([^"]*method=recovery[^"]*)"', page.text).group(1)
    recovery = browser.get(idp.url(href.replace("&amp;", "&")))
    assert RECOVERY_HEADING in recovery.text and BY_TEXT in recovery.text
    assert NEW_PASSWORD_HEADING in browser.follow(browser.submit(recovery, {"code": codes[0]})).text


def test_an_app_and_a_phone_offer_each_other(idp, make_citizen):
    citizen = make_citizen(unique_email())
    citizen["number"] = give_phone(idp, citizen)
    browser, page = email_proven(idp, citizen)
    assert APP_HEADING in page.text and BY_TEXT in page.text
    texted = browser.get(idp.url("/reset-password/text-message"))
    assert CHECK_PHONE in texted.text and "Use my authenticator app instead" in texted.text
    code = code_in(wait_for_text(idp, citizen["number"]))
    assert NEW_PASSWORD_HEADING in browser.follow(browser.submit(texted, {"code": code})).text


@pytest.mark.parametrize(
    ("app", "passkey", "phone", "codes", "shows"),
    [
        (True, False, False, True, APP_HEADING),
        (True, True, True, False, APP_HEADING),
        (False, False, True, False, CHECK_PHONE),
        (False, True, True, False, CHECK_PHONE),
        (False, False, True, True, CHECK_PHONE),
        (False, True, False, True, RECOVERY_HEADING),
        (False, True, False, False, PASSKEY_ONLY),
        (False, False, False, False, NEW_PASSWORD_HEADING),
    ],
)
def test_every_mix_of_second_factors_gets_the_right_step(
    idp, make_citizen, app, passkey, phone, codes, shows
):
    citizen = make_citizen(unique_email(), second_factor=app)
    if not codes and app:  # the app's recovery codes all used
        with idp.app.app_context():
            db.session.execute(db.delete(RecoveryCode).filter_by(citizen_id=citizen["id"]))
            db.session.commit()
    if codes and not app:
        give_recovery_codes(idp, citizen)
    if passkey:
        give_passkey(idp, citizen)
    if phone:
        give_phone(idp, citizen)
    _, page = email_proven(idp, citizen)
    assert shows in page.text
    # The passkey message only where a passkey is the one way left.
    assert (PASSKEY_ONLY in page.text) == (shows == PASSKEY_ONLY)
    assert page.status_code == (403 if shows == PASSKEY_ONLY else 200)


# -- The daily cap per number -------------------------------------------------------------------


def test_one_number_gets_only_so_many_codes_a_day_from_any_network(
    idp, make_citizen, monkeypatch, clock
):
    settings = idp.app.config["IDP_SETTINGS"]
    monkeypatch.setitem(idp.app.config, "IDP_SETTINGS", settings.replace(sms_number_max_sends=3))
    citizen = phone_citizen(idp, make_citizen)
    number = citizen["number"]
    # Two codes went to the number today from other networks.
    with idp.app.app_context():
        for _sent in range(2):
            throttle.use_quota("sms_send", f"phone:quota:{number}", 86400)
    with captured_log("idp.audit") as audit_lines:
        browser, page = email_proven(idp, citizen)  # the third: sent
        assert CHECK_PHONE in page.text
        wait_for_text(idp, number)
        refused = resend(browser, page)  # the fourth: refused, whoever asks
    assert refused.status_code == 429
    assert NUMBER_CAP in refused.text and TOO_MANY_SENT not in refused.text
    assert 'class="govuk-error-summary"' in refused.text
    assert int(refused.headers["retry-after"]) > 23 * 3600
    assert len(texts_to(idp, number)) == 1
    refusals = [
        e for e in logged_events(audit_lines.getvalue()) if e["event"] == "sms_code.refused"
    ]
    assert [e["reason"] for e in refusals] == ["quota"]
    assert number not in audit_lines.getvalue()
    # A day later (a new reset: the emailed code has long expired) the number gets codes again.
    clock.advance(86400 + 1)
    _, page = email_proven(idp, citizen)
    assert page.status_code == 200 and CHECK_PHONE in page.text
    wait_for_text(idp, number, count=2)


def test_the_cap_is_a_setting_with_a_sensible_default(idp):
    settings = idp.app.config["IDP_SETTINGS"]
    assert settings.sms_number_max_sends == 10
    assert settings.sms_number_window_seconds == 86400

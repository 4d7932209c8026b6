"""Codes by text message over HTTP: choosing them when setting up the second factor (with the
warning that an app or a passkey is safer), every kind of bad number explained, the code that
confirms the number, signing in with a texted code (single use, expiry, throttled like the
app's), sends throttled per number and network, changing and removing the number with the
password, the outbox showing texts, and no code in any log."""

from __future__ import annotations

import html
import io
import logging
import random
import re
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import phonenumbers
import pytest

from idp.extensions import db
from idp.models import PhoneNumber, SmsCode
from idp.security.throttle import delay
from tests.support.audit import captured_log, logged_events
from tests.support.browser import CitizenBrowser, callback, error_beside
from tests.support.mail import code_in, texts_to, wait_for_mail, wait_for_text

CHECK_PHONE = "Check your phone"
SETUP_HEADING = "Set up an authenticator app"
TEXT_SETUP_HEADING = "Get codes by text message"
SAFER = "An authenticator app or a passkey is safer than text messages."
CONSENT_HEADING = "wants to know who you are"
WRONG_CODE = "The code is not right. Check the text message we sent you and try again."
EXPIRED = "The code has expired. Send another code."
TOO_MANY_WRONG = "Too many wrong codes"
TOO_MANY_SENT = "You have asked for too many codes"
RECOVERY_CODE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")
NOT_A_NUMBER = "Enter a UK mobile number, like 07700 900 982, or an international one"
LANDLINE = "That is a landline number. Enter a mobile phone number"
NOT_MOBILE = "That is not a mobile phone number (it may be a freephone, premium rate"


# -- Helpers -----------------------------------------------------------------------------------


def unique_mobile() -> tuple[str, str]:
    """A UK mobile number no other test uses: as typed, and in E.164."""
    while True:
        typed = f"07911 {random.randrange(10**6):06d}"  # noqa: S311 (test data)
        parsed = phonenumbers.parse(typed, "GB")
        if phonenumbers.is_valid_number(parsed):
            return typed, phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def give_phone(idp, citizen: dict) -> str:
    """A confirmed mobile number for the citizen (as the setup pages leave it); its E.164."""
    _, number = unique_mobile()
    with idp.app.app_context():
        db.session.add(PhoneNumber(citizen_id=citizen["id"], number=number))
        db.session.commit()
    return number


def stored_number(idp, citizen_id: int) -> PhoneNumber | None:
    with idp.app.app_context():
        row = db.session.scalar(db.select(PhoneNumber).filter_by(citizen_id=citizen_id))
        if row is not None:
            db.session.expunge(row)
        return row


def link(page: httpx.Response, pattern: str) -> str:
    match = re.search(pattern, page.text)
    assert match, page.text[:1200]
    return urljoin(str(page.url), html.unescape(match.group(1)))


def finish(browser: CitizenBrowser, response: httpx.Response) -> dict[str, str]:
    if response.status_code == 200 and CONSENT_HEADING in response.text:
        response = browser.consent(response)
    return callback(response).params


def id_token_claims(client, attempt, code: str) -> dict:
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    return client.validate_id_token(response.json()["id_token"], attempt.nonce)


def at_text_code(idp, browser: CitizenBrowser, client, citizen: dict):
    """A department's journey, the password typed: the page of the code sent by text."""
    attempt = client.authorization()
    page = browser.follow(browser.get(attempt.url))
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    assert page.status_code == 200, page.text[:500]
    assert CHECK_PHONE in page.text, page.text[:800]
    assert page.url.path == "/sign-in/text-message"
    return attempt, page


def resend(browser: CitizenBrowser, page: httpx.Response) -> httpx.Response:
    """Press 'Send another code'."""
    action = link(page, r'<form method="post" action="([^"]*send-again[^"]*)"')
    return browser.submit(page, {}, action=action)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


@pytest.fixture
def browser(idp) -> CitizenBrowser:
    return CitizenBrowser(idp.issuer)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def texting_citizen(idp, make_citizen) -> dict:
    """A citizen whose only second factor is a phone, with its number."""
    citizen = make_citizen(f"texts.{random.randrange(10**9)}@example.com", second_factor=False)  # noqa: S311
    citizen["number"] = give_phone(idp, citizen)
    return citizen


@pytest.fixture
def every_log() -> Iterator[io.StringIO]:
    """Everything logged while the test runs, at every level, by the IdP and every library."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    loggers = [logging.getLogger(), logging.getLogger("idp")]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


# -- Setting up: choosing text messages, the number, the code ----------------------------------


def test_setting_up_by_text_message_from_a_departments_journey(
    idp, browser, client, make_citizen, every_log
):
    citizen = make_citizen(f"setup.{random.randrange(10**9)}@example.com", second_factor=False)  # noqa: S311
    attempt = client.authorization()
    page = browser.follow(browser.get(attempt.url))
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    assert SETUP_HEADING in page.text
    # Text messages are offered beside the app and the passkey, and said to be less safe.
    choose = browser.follow(browser.get(link(page, r'href="([^"]+)" id="choose-text-message"')))
    assert TEXT_SETUP_HEADING in choose.text
    assert SAFER in choose.text
    assert 'type="tel"' in choose.text

    typed, number = unique_mobile()
    check = browser.follow(browser.submit(choose, {"phone_number": typed}))
    assert CHECK_PHONE in check.text
    assert f"ending <strong>{number[-4:]}</strong>" in check.text
    assert number not in check.text and typed not in check.text  # only the last digits
    text = wait_for_text(idp, number)
    code = code_in(text)
    assert "government sign in" in text.body
    # Until the code is typed the number does not count.
    assert stored_number(idp, citizen["id"]) is None

    wrong = browser.submit(check, {"code": other_code(code)})
    assert wrong.status_code == 400 and WRONG_CODE in wrong.text
    assert error_beside(wrong.text, "code") == WRONG_CODE  # beside the field it is about
    codes_page = browser.submit(wrong, {"code": code})
    assert codes_page.status_code == 200, codes_page.text[:800]
    assert "Codes by text message are set up" in codes_page.text
    assert len(RECOVERY_CODE.findall(codes_page.text)) == 10  # recovery codes still offered
    saved = stored_number(idp, citizen["id"])
    assert saved.number == number and saved.confirmed_at is not None

    cont = link(codes_page, r'<a class="govuk-button"[^>]* href="([^"]+)"')
    params = finish(browser, browser.follow(browser.get(cont)))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["amr"]) == ("Cl.Cm", ["pwd", "sms"])
    assert code not in every_log.getvalue()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter a mobile phone number"),
        ("   ", "Enter a mobile phone number"),
        ("call me maybe", NOT_A_NUMBER),
        ("12345", NOT_A_NUMBER),
        ("07911 1234", NOT_A_NUMBER),
        ("+999 123 456", NOT_A_NUMBER),
        ("0" * 40, NOT_A_NUMBER),
        ("020 7946 0000", LANDLINE),
        ("+33 1 42 68 53 00", LANDLINE),
        ("0800 123 4567", NOT_MOBILE),
        ("09065 123456", NOT_MOBILE),
    ],
)
def test_each_bad_number_is_explained_and_nothing_is_sent(
    idp, browser, make_citizen, typed, message
):
    citizen = make_citizen(f"bad.{random.randrange(10**9)}@example.com", second_factor=False)  # noqa: S311
    page = browser.get(idp.url("/sign-in"))
    browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    choose = browser.get(idp.url("/two-factor/setup/text-message"))
    assert TEXT_SETUP_HEADING in choose.text
    refused = browser.submit(choose, {"phone_number": typed})
    assert refused.status_code == 400
    assert "There is a problem" in refused.text
    assert html.escape(message, quote=False) in refused.text.replace("&#39;", "'")
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(SmsCode)) == 0


def test_international_mobiles_are_stored_in_e164(idp, browser, make_citizen):
    citizen = make_citizen(f"intl.{random.randrange(10**9)}@example.com", second_factor=False)  # noqa: S311
    page = browser.get(idp.url("/sign-in"))
    browser.submit_sign_in(page, citizen["email"], citizen["password"])
    choose = browser.get(idp.url("/two-factor/setup/text-message"))
    check = browser.follow(browser.submit(choose, {"phone_number": "+33 6 12 34 56 78"}))
    assert "ending <strong>5678</strong>" in check.text
    code = code_in(wait_for_text(idp, "+33612345678"))
    browser.submit(check, {"code": code})
    assert stored_number(idp, citizen["id"]).number == "+33612345678"


# -- Signing in with a texted code -------------------------------------------------------------


def test_signing_in_with_a_code_sent_by_text(idp, browser, client, texting_citizen):
    attempt, page = at_text_code(idp, browser, client, texting_citizen)
    number = texting_citizen["number"]
    assert f"ending <strong>{number[-4:]}</strong>" in page.text
    recovery = browser.get(link(page, r'href="([^"]+)">I cannot use my phone: use a recovery code'))
    assert "Get a code by text message instead" in recovery.text
    code = code_in(wait_for_text(idp, number))
    assert len(texts_to(idp, number)) == 1  # one code when the page is shown, not two
    params = finish(browser, browser.follow(browser.submit(page, {"code": code})))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["pwd", "sms"])
    # The account page says how the citizen signed in.
    assert "password and text message" in browser.get(idp.url("/")).text


def test_a_citizen_with_an_app_and_a_phone_may_choose_either(idp, browser, client, make_citizen):
    citizen = make_citizen(f"both.{random.randrange(10**9)}@example.com")  # noqa: S311
    number = give_phone(idp, citizen)
    attempt = client.authorization()
    page = browser.follow(browser.get(attempt.url))
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    assert "Enter the code from your authenticator app" in page.text
    assert texts_to(idp, number) == []  # nothing is sent until the citizen asks
    texting = browser.follow(browser.get(link(page, r'href="([^"]+)" id="use-text-message"')))
    assert CHECK_PHONE in texting.text
    assert "Use my authenticator app instead" in texting.text
    code = code_in(wait_for_text(idp, number))
    assert "code" in finish(browser, browser.follow(browser.submit(texting, {"code": code})))


def test_a_wrong_code_is_refused_and_the_right_one_still_works(
    idp, browser, client, texting_citizen
):
    _, page = at_text_code(idp, browser, client, texting_citizen)
    code = code_in(wait_for_text(idp, texting_citizen["number"]))
    for bad in (other_code(code), "abc"):
        refused = browser.submit(page, {"code": bad})
        assert refused.status_code == 400, bad
        assert "location" not in refused.headers
        assert WRONG_CODE in refused.text
        assert code not in refused.text
    # Still a password-only session: the account page wants the second step.
    assert browser.get(idp.url("/")).status_code == 302
    assert "code" in finish(browser, browser.follow(browser.submit(page, {"code": code})))


def test_an_expired_code_is_refused_and_another_can_be_sent(
    idp, browser, client, texting_citizen, clock
):
    _, page = at_text_code(idp, browser, client, texting_citizen)
    number = texting_citizen["number"]
    code = code_in(wait_for_text(idp, number))
    clock.advance(10 * 60 + 1)
    refused = browser.submit(page, {"code": code})
    assert refused.status_code == 400 and EXPIRED in refused.text
    sent = browser.follow(resend(browser, refused))
    assert "We have sent you a new code." in sent.text
    fresh = code_in(wait_for_text(idp, number, count=2))
    assert "code" in finish(browser, browser.follow(browser.submit(sent, {"code": fresh})))


def test_a_code_works_once(idp, client, texting_citizen):
    first = CitizenBrowser(idp.issuer)
    _, page = at_text_code(idp, first, client, texting_citizen)
    number = texting_citizen["number"]
    code = code_in(wait_for_text(idp, number))
    assert "code" in finish(first, first.follow(first.submit(page, {"code": code})))

    # The same code in a new sign-in (after the first step again) is refused.
    second = CitizenBrowser(idp.issuer)
    _, page = at_text_code(idp, second, client, texting_citizen)
    new_code = code_in(wait_for_text(idp, number, count=2))
    if new_code != code:
        refused = second.submit(page, {"code": code})
        assert refused.status_code == 400 and WRONG_CODE in refused.text
    # And in the browser it was sent to, once used, it opens nothing again.
    with idp.app.app_context():
        used = db.session.scalars(db.select(SmsCode).filter(SmsCode.used_at.is_not(None))).all()
    assert len(used) == 1
    assert "code" in finish(second, second.follow(second.submit(page, {"code": new_code})))


def test_wrong_codes_are_throttled_like_the_apps(idp, browser, client, texting_citizen, clock):
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("second_factor")
    refused_at = next(k for k in range(1, 1000) if k >= limits.max_failures or delay(limits, k) > 0)
    _, page = at_text_code(idp, browser, client, texting_citizen)
    code = code_in(wait_for_text(idp, texting_citizen["number"]))
    for _attempt in range(refused_at - 1):
        page = browser.submit(page, {"code": other_code(code)})
        assert page.status_code == 400
    page = browser.submit(page, {"code": other_code(code)})
    assert page.status_code == 429 and TOO_MANY_WRONG in page.text
    assert int(page.headers["retry-after"]) >= 1
    # While throttled the right code is not even checked, then it works.
    assert browser.submit(page, {"code": code}).status_code == 429
    clock.advance(delay(limits, refused_at) + 0.3)
    assert "code" in finish(browser, browser.follow(browser.submit(page, {"code": code})))


def test_sending_is_throttled_per_number_and_network(idp, browser, client, texting_citizen):
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("sms_send")
    refused_at = next(k for k in range(1, 1000) if k >= limits.max_failures or delay(limits, k) > 0)
    number = texting_citizen["number"]
    with captured_log("idp.audit") as audit_lines:
        _, page = at_text_code(idp, browser, client, texting_citizen)  # the first send
        # Each send counts: the one after refused_at sends must wait.
        for count in range(2, refused_at + 1):
            page = browser.follow(resend(browser, page))
            assert page.status_code == 200
            wait_for_text(idp, number, count=count)
        refused = resend(browser, page)
    assert refused.status_code == 429
    assert TOO_MANY_SENT in refused.text
    assert len(texts_to(idp, number)) == refused_at
    events = [e["event"] for e in logged_events(audit_lines.getvalue())]
    assert events.count("sms_code.sent") == refused_at
    assert "sms_code.refused" in events
    assert number not in audit_lines.getvalue()


# -- The account pages -------------------------------------------------------------------------


def signed_in_with_app(idp, make_citizen) -> tuple[CitizenBrowser, dict]:
    citizen = make_citizen(f"manage.{random.randrange(10**9)}@example.com")  # noqa: S311
    browser = CitizenBrowser(idp.issuer)
    page = browser.sign_in(browser.get(idp.url("/sign-in")), citizen["email"], citizen["password"])
    assert "Your account" in page.text
    assert 'href="/account/text-message"' in page.text
    return browser, citizen


def test_adding_changing_and_removing_the_number_needs_the_password(idp, make_citizen):
    browser, citizen = signed_in_with_app(idp, make_citizen)
    manage = browser.get(idp.url("/account/text-message"))
    assert "Add a phone number" in manage.text
    typed, number = unique_mobile()

    wrong = browser.submit(manage, {"current_password": "not my password", "phone_number": typed})
    assert wrong.status_code == 400 and "Your current password is not right" in wrong.text
    assert texts_to(idp, number) == []
    landline = browser.submit(
        manage, {"current_password": citizen["password"], "phone_number": "020 7946 0000"}
    )
    assert landline.status_code == 400 and LANDLINE in landline.text

    check = browser.follow(
        browser.submit(manage, {"current_password": citizen["password"], "phone_number": typed})
    )
    assert CHECK_PHONE in check.text
    done = browser.follow(browser.submit(check, {"code": code_in(wait_for_text(idp, number))}))
    assert "Your phone number has been saved" in done.text
    assert f"ending <strong>{number[-4:]}</strong>" in done.text
    assert stored_number(idp, citizen["id"]).number == number
    added = wait_for_mail(idp, citizen["email"], count=1)
    assert added.subject == "You added a phone number for security codes"

    # A new number: the old one counts until the new one's code is typed.
    new_typed, new_number = unique_mobile()
    check = browser.follow(
        browser.submit(done, {"current_password": citizen["password"], "phone_number": new_typed})
    )
    assert stored_number(idp, citizen["id"]).number == number
    code = code_in(wait_for_text(idp, new_number))
    with captured_log("idp.audit") as audit_lines:
        done = browser.follow(browser.submit(check, {"code": code}))
    assert stored_number(idp, citizen["id"]).number == new_number
    events = [e["event"] for e in logged_events(audit_lines.getvalue())]
    assert "phone.changed" in events
    assert new_number not in audit_lines.getvalue()

    # Removing it: the password again (the app stays the second factor).
    remove = browser.get(link(done, r'href="([^"]+)">Remove your phone number'))
    refused = browser.submit(remove, {"current_password": "not my password"})
    assert refused.status_code == 400
    assert stored_number(idp, citizen["id"]) is not None
    removed = browser.follow(browser.submit(remove, {"current_password": citizen["password"]}))
    assert "Your phone number has been removed" in removed.text
    assert stored_number(idp, citizen["id"]) is None


def test_the_only_second_factor_cannot_be_removed(idp, client, texting_citizen):
    browser = CitizenBrowser(idp.issuer)
    _, page = at_text_code(idp, browser, client, texting_citizen)
    finish(
        browser,
        browser.follow(
            browser.submit(page, {"code": code_in(wait_for_text(idp, texting_citizen["number"]))})
        ),
    )
    remove = browser.get(idp.url("/account/text-message/remove"))
    assert "only second factor" in remove.text
    refused = browser.submit(remove, {"current_password": texting_citizen["password"]})
    assert refused.status_code == 400
    assert "You cannot remove your phone number" in refused.text
    assert stored_number(idp, texting_citizen["id"]) is not None


# -- The outbox, and the logs ------------------------------------------------------------------


def test_the_outbox_page_shows_text_messages(idp, dev_idp, browser, client, texting_citizen):
    _, page = at_text_code(idp, browser, client, texting_citizen)
    code = code_in(wait_for_text(idp, texting_citizen["number"]))
    outbox = httpx.get(dev_idp.url("/dev/outbox"))
    assert outbox.status_code == 200
    assert f"Text message to:</strong> {texting_citizen['number']}" in outbox.text
    assert code in outbox.text


def test_no_code_or_number_is_logged(idp, browser, client, texting_citizen, every_log):
    _, page = at_text_code(idp, browser, client, texting_citizen)
    code = code_in(wait_for_text(idp, texting_citizen["number"]))
    browser.submit(page, {"code": other_code(code)})
    finish(browser, browser.follow(browser.submit(page, {"code": code})))
    logged = every_log.getvalue()
    assert code not in logged
    assert texting_citizen["number"] not in logged

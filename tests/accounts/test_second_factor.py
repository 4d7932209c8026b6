"""The second step of signing in over HTTP: the code from the authenticator app (each code works
once, within one step of drift), recovery codes (single use, the owner hears of each one), and
throttling of wrong codes of both kinds."""

from __future__ import annotations

import html
import io
import json
import re
import uuid
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import pyotp
import pytest
from sqlalchemy import func, select, update

from idp import clock
from idp.extensions import db
from idp.mail import read_outbox
from idp.models import RecoveryCode, ThrottleCounter, TotpCredential
from idp.security.throttle import delay
from tests.conftest import LiveIdP, serve_idp
from tests.support.audit import captured_log
from tests.support.browser import (
    SECOND_FACTOR_HEADING,
    SECOND_FACTORS,
    SIGN_IN_FORM,
    CitizenBrowser,
    callback,
)

WRONG_TOTP = "Enter the 6-digit code your authenticator app shows now"
WRONG_RECOVERY = "Enter one of your recovery codes, like abcde-23456"
TOO_MANY = "Too many wrong codes"
RECOVERY_SUBJECT = "A recovery code was used to sign in"
CONSENT_HEADING = "wants to know who you are"


# -- Helpers -----------------------------------------------------------------------------------


def unique_email() -> str:
    """An address no other test uses (the outbox outlives each test)."""
    return f"citizen.{uuid.uuid4().hex[:10]}@example.com"


def at_second_factor(idp, browser: CitizenBrowser, client, citizen: dict):
    """Start a department's (Cl.Cm) journey and type the password; the second factor page."""
    attempt = client.authorization()
    page = browser.follow(browser.get(attempt.url))
    assert SIGN_IN_FORM in page.text
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    assert page.status_code == 200, page.text[:500]
    assert SECOND_FACTOR_HEADING in page.text
    return attempt, page


def recovery_page(browser: CitizenBrowser, page: httpx.Response) -> httpx.Response:
    """Follow the second factor page's link to the recovery code page."""
    match = re.search(r'href="(/sign-in/recovery-code[^"]*)"', page.text)
    assert match, page.text[:800]
    response = browser.follow(browser.get(urljoin(str(page.url), html.unescape(match.group(1)))))
    assert response.status_code == 200
    assert "Use a recovery code" in response.text
    return response


def finish(browser: CitizenBrowser, response: httpx.Response) -> dict[str, str]:
    """Consent if asked; the callback's parameters."""
    if response.status_code == 200 and CONSENT_HEADING in response.text:
        response = browser.consent(response)
    return callback(response).params


def id_token_claims(client, attempt, code: str) -> dict:
    """Redeem the code and validate the ID token."""
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    return client.validate_id_token(response.json()["id_token"], attempt.nonce)


def assert_refused(response: httpx.Response, status: int, message: str | None) -> None:
    """The same page again with the error: no redirect, so no code for the department."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert "location" not in response.headers
    if message is not None:
        assert message in response.text


def forget_last_used_step(idp, citizen: dict) -> None:
    """As if the citizen's app had not been used for a while (every code in the window fresh)."""
    with idp.app.app_context():
        db.session.execute(
            update(TotpCredential)
            .where(TotpCredential.citizen_id == citizen["id"])
            .values(last_used_step=0)
        )
        db.session.commit()


def forget_throttling(idp) -> None:
    """Clear every throttling counter."""
    with idp.app.app_context():
        db.session.execute(ThrottleCounter.__table__.delete())
        db.session.commit()


def recovery_codes_left(idp, citizen: dict) -> int:
    """Unused recovery codes in the database."""
    with idp.app.app_context():
        return db.session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.citizen_id == citizen["id"], RecoveryCode.used_at.is_(None))
        )


def away_from_a_step_boundary(margin: float = 4.0) -> int:
    """The current time step, after waiting out the end of a step if it is near."""
    left = 30 - clock.time() % 30
    if left < margin:
        clock.advance(left + 0.2)
    return int(clock.time() // 30)


def code_at(citizen: dict, step: int) -> str:
    """The code the citizen's app shows at a time step."""
    return pyotp.TOTP(citizen["totp_secret"]).at(step * 30)


def wrong_code(citizen: dict) -> str:
    """A well-formed code that is not the app's for any step near now."""
    now = int(clock.time() // 30)
    near = {code_at(citizen, step) for step in range(now - 3, now + 4)}
    return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 7919)) if c not in near)


def mails_to(idp, address: str) -> list:
    """Emails the IdP sent to this address, newest first."""
    return [m for m in read_outbox(idp.app.config["IDP_SETTINGS"], limit=500) if m.to == address]


def first_refused_attempt(limits) -> int:
    """The consecutive wrong attempt that the throttle answers with 429."""
    return next(k for k in range(1, 1000) if k >= limits.max_failures or delay(limits, k) > 0)


@pytest.fixture
def citizen(make_citizen) -> dict:
    """A citizen with an authenticator app and ten recovery codes."""
    return make_citizen(unique_email())


@pytest.fixture
def audit_lines() -> Iterator[io.StringIO]:
    """The audit lines the IdP writes while the test runs."""
    with captured_log("idp.audit") as stream:
        yield stream


@pytest.fixture
def browser(idp) -> CitizenBrowser:
    return CitizenBrowser(idp.issuer)


@pytest.fixture
def client(make_client):
    return make_client()


# -- The code from the app ---------------------------------------------------------------------


def test_the_right_code_continues_the_journey(idp, browser, client, citizen):
    attempt, page = at_second_factor(idp, browser, client, citizen)
    assert 'autocomplete="one-time-code"' in page.text
    params = finish(browser, browser.second_factor(page, citizen["email"]))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["amr"]) == ("Cl.Cm", ["pwd", "otp"])


def test_a_wrong_code_is_refused_and_no_code_is_issued(idp, browser, client, citizen):
    _, page = at_second_factor(idp, browser, client, citizen)
    response = browser.submit(page, {"code": wrong_code(citizen)})
    assert_refused(response, 400, WRONG_TOTP)
    assert SECOND_FACTOR_HEADING in response.text
    # The session is still a password-only one: the account page wants the code too.
    account = browser.get(idp.url("/"))
    assert account.status_code == 302
    assert account.headers["location"].endswith("/sign-in/second-factor")
    # The citizen can try again with the right code.
    params = finish(browser, browser.second_factor(response, citizen["email"]))
    assert "code" in params


def test_a_code_with_spaces_is_accepted(idp, browser, client, citizen):
    forget_last_used_step(idp, citizen)
    _, page = at_second_factor(idp, browser, client, citizen)
    code = code_at(citizen, away_from_a_step_boundary())
    response = browser.follow(browser.submit(page, {"code": f" {code[:3]} {code[3:]} "}))
    assert "code" in finish(browser, response)


def test_a_code_works_once_even_from_a_new_sign_in(idp, client, citizen, audit_lines):
    forget_last_used_step(idp, citizen)
    first = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(idp, first, client, citizen)
    code = code_at(citizen, away_from_a_step_boundary())
    assert "code" in finish(first, first.follow(first.submit(page, {"code": code})))

    # Someone who saw the code (and knows the password) tries it in another browser.
    second = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(idp, second, client, citizen)
    replay = second.submit(page, {"code": code})
    assert_refused(replay, 400, WRONG_TOTP)
    # Typed again on the same page, it is still refused.
    assert_refused(second.submit(replay, {"code": code}), 400, WRONG_TOTP)
    events = [json.loads(line) for line in audit_lines.getvalue().splitlines()]
    replayed = [e for e in events if e["event"] == "second_factor.replayed"]
    assert replayed and {e["citizen_id"] for e in replayed} == {citizen["id"]}
    assert code not in audit_lines.getvalue()


def test_an_older_code_after_a_newer_one_is_refused(idp, browser, client, citizen):
    forget_last_used_step(idp, citizen)
    step = away_from_a_step_boundary()
    _, page = at_second_factor(idp, browser, client, citizen)
    assert "code" in finish(
        browser, browser.follow(browser.submit(page, {"code": code_at(citizen, step)}))
    )

    other = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(idp, other, client, citizen)
    # The previous step's code was never used, but the app has moved past it.
    assert_refused(other.submit(page, {"code": code_at(citizen, step - 1)}), 400, WRONG_TOTP)


def test_codes_more_than_one_step_away_are_refused_and_one_step_is_allowed(
    idp, browser, client, citizen
):
    forget_last_used_step(idp, citizen)
    _, page = at_second_factor(idp, browser, client, citizen)
    now = away_from_a_step_boundary()
    for step in (now - 2, now + 2):
        if code_at(citizen, step) in {code_at(citizen, s) for s in (now - 1, now, now + 1)}:
            continue  # the same six digits by chance (one in a million)
        page = browser.submit(page, {"code": code_at(citizen, step)})
        assert_refused(page, 400, WRONG_TOTP)
    # A code from the previous step is allowed, for clocks that drift.
    response = browser.follow(browser.submit(page, {"code": code_at(citizen, now - 1)}))
    assert "code" in finish(browser, response)


MALFORMED_CODES = {
    "empty": "",
    "blank": "   ",
    "five-digits": "12345",
    "seven-digits": "1234567",
    "letters": "abcdef",
    "digit-and-letter": "12345a",
    "negative": "-12345",
    "exponent": "1e5000",
    "arabic-indic-digits": "\u0661\u0662\u0663\u0664\u0665\u0666",
    "fullwidth-digits": "\uff11\uff12\uff13\uff14\uff15\uff16",
    "superscripts": "\u00b9\u00b2\u00b3\u2074\u2075\u2076",
    "nul": "123\x00456",
    "markup": "<script>alert(1)</script>",
    "too-long-for-the-form": "1" * 33,
    "very-long": "9" * 5000,
}


@pytest.mark.both_databases
def test_malformed_codes_are_refused_without_an_error_page(idp, browser, client, citizen):
    _, page = at_second_factor(idp, browser, client, citizen)
    for name, code in MALFORMED_CODES.items():
        forget_throttling(idp)  # each case on its own, not a run of failures
        response = browser.submit(page, {"code": code})
        assert response.status_code == 400, (name, response.status_code, response.text[:300])
        assert "location" not in response.headers, name
        if "\x00" not in code:  # NUL: the IdP's page for characters that are not allowed
            assert SECOND_FACTOR_HEADING in response.text, name
        assert "<script>alert(1)</script>" not in response.text, name
    # Nothing was spent: the right code still works.
    forget_throttling(idp)
    assert "code" in finish(browser, browser.second_factor(page, citizen["email"]))


def test_the_pages_need_a_password_sign_in_first(idp, browser):
    for path in ("/sign-in/second-factor", "/sign-in/recovery-code"):
        response = browser.get(idp.url(path))
        assert response.status_code == 302
        assert "/sign-in" in response.headers["location"]
        assert "second-factor" not in response.headers["location"]
        posted = browser.http.post(idp.url(path), data={"code": "123456"})
        assert posted.status_code in (303, 400)
        assert posted.status_code != 200


def test_too_many_wrong_codes_are_throttled(idp, browser, client, citizen):
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("second_factor")
    refused_at = first_refused_attempt(limits)
    _, page = at_second_factor(idp, browser, client, citizen)
    for _attempt in range(refused_at - 1):
        page = browser.submit(page, {"code": wrong_code(citizen)})
        assert_refused(page, 400, WRONG_TOTP)
    page = browser.submit(page, {"code": wrong_code(citizen)})
    assert_refused(page, 429, TOO_MANY)

    # While throttled even the right code is not checked (nor spent)...
    factor = SECOND_FACTORS[citizen["email"]]
    right = factor.next_code()
    assert "-" not in right
    assert_refused(browser.submit(page, {"code": right}), 429, TOO_MANY)
    # ...and once the wait is over it works.
    clock.advance(delay(limits, refused_at) + 0.3)
    assert "code" in finish(browser, browser.follow(browser.submit(page, {"code": right})))


# -- Recovery codes ----------------------------------------------------------------------------


def test_a_recovery_code_works_once_and_the_owner_is_told(idp, browser, client, citizen):
    factor = SECOND_FACTORS[citizen["email"]]
    assert len(factor.recovery_codes) == 10
    code = factor.recovery_codes.pop(0)
    attempt, page = at_second_factor(idp, browser, client, citizen)
    page = recovery_page(browser, page)
    params = finish(browser, browser.follow(browser.submit(page, {"code": code})))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["amr"]) == ("Cl.Cm", ["pwd", "otp"])
    assert recovery_codes_left(idp, citizen) == 9

    mails = mails_to(idp, citizen["email"])
    assert len(mails) == 1
    assert mails[0].subject == RECOVERY_SUBJECT
    assert "You have 9 left" in mails[0].body
    assert code not in mails[0].body

    # The same code a second time, from a new sign-in: refused, nothing spent, nobody emailed.
    other = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(idp, other, client, citizen)
    page = recovery_page(other, page)
    assert_refused(other.submit(page, {"code": code}), 400, WRONG_RECOVERY)
    assert recovery_codes_left(idp, citizen) == 9
    assert len(mails_to(idp, citizen["email"])) == 1


def test_recovery_codes_are_accepted_in_upper_case_and_without_the_dash(idp, client, citizen):
    factor = SECOND_FACTORS[citizen["email"]]
    typings = [
        lambda c: c.upper(),
        lambda c: c.replace("-", ""),
        lambda c: c.upper().replace("-", ""),
        lambda c: f"  {c[:5]} {c[6:]} ",
    ]
    for used, typed in enumerate(typings, start=1):
        code = factor.recovery_codes.pop(0)
        browser = CitizenBrowser(idp.issuer)
        _, page = at_second_factor(idp, browser, client, citizen)
        page = recovery_page(browser, page)
        response = browser.follow(browser.submit(page, {"code": typed(code)}))
        assert "code" in finish(browser, response), typed(code)
        assert recovery_codes_left(idp, citizen) == 10 - used
        assert f"You have {10 - used} left" in mails_to(idp, citizen["email"])[0].body


def test_another_citizens_recovery_code_is_refused(idp, browser, client, citizen, make_citizen):
    other = make_citizen(unique_email())
    _, page = at_second_factor(idp, browser, client, citizen)
    page = recovery_page(browser, page)
    stolen = SECOND_FACTORS[other["email"]].recovery_codes[0]
    assert_refused(browser.submit(page, {"code": stolen}), 400, WRONG_RECOVERY)
    assert recovery_codes_left(idp, other) == 10
    assert recovery_codes_left(idp, citizen) == 10


@pytest.mark.both_databases
def test_malformed_recovery_codes_are_refused_without_an_error_page(idp, browser, client, citizen):
    _, page = at_second_factor(idp, browser, client, citizen)
    page = recovery_page(browser, page)
    for code in ("", "abcde", "abcde-2345", "abcde-234567", "é" * 10, "1" * 33, "\x00" * 10):
        forget_throttling(idp)
        response = browser.submit(page, {"code": code})
        assert_refused(response, 400, None)
        if "\x00" not in code:
            assert "Use a recovery code" in response.text
    assert recovery_codes_left(idp, citizen) == 10


def test_wrong_recovery_codes_are_throttled(idp, browser, client, citizen):
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("recovery")
    refused_at = first_refused_attempt(limits)
    _, page = at_second_factor(idp, browser, client, citizen)
    page = recovery_page(browser, page)
    for n in range(refused_at - 1):
        page = browser.submit(page, {"code": f"wrong-cod{n % 10}"})
        assert_refused(page, 400, WRONG_RECOVERY)
    page = browser.submit(page, {"code": "wrong-codes"})
    assert_refused(page, 429, TOO_MANY)

    # A real code while throttled: refused and not spent.
    code = SECOND_FACTORS[citizen["email"]].recovery_codes.pop(0)
    assert_refused(browser.submit(page, {"code": code}), 429, TOO_MANY)
    assert recovery_codes_left(idp, citizen) == 10
    assert mails_to(idp, citizen["email"]) == []

    clock.advance(delay(limits, refused_at) + 0.3)
    assert "code" in finish(browser, browser.follow(browser.submit(page, {"code": code})))
    assert recovery_codes_left(idp, citizen) == 9


# -- Lockout, on an IdP without delays (same database and instance folder) ---------------------


@pytest.fixture(scope="module")
def undelayed_idp(live_idp, database_url) -> Iterator[LiveIdP]:
    """Another IdP on the shared database whose second factor throttles lock without delays."""
    served = serve_idp(
        database_url,
        live_idp.app.config["IDP_SETTINGS"].instance_path,
        redis_url="",
        throttle_overrides={
            "second_factor": {"delay_seconds": 0},
            "recovery": {"delay_seconds": 0},
        },
    )
    yield served
    served.close()


@pytest.mark.parametrize(
    ("kind", "wrong", "message"),
    [
        ("second_factor", "000000", WRONG_TOTP),
        ("recovery", "wrong-codes", WRONG_RECOVERY),
    ],
    ids=["app", "recovery"],
)
def test_wrong_codes_lock_the_second_step_after_the_maximum(
    idp, undelayed_idp, citizen, kind, wrong, message
):
    limits = undelayed_idp.app.config["IDP_SETTINGS"].throttle_limits(kind)
    assert limits.delay_seconds == 0
    browser = CitizenBrowser(undelayed_idp.issuer)
    sign_in = browser.get(undelayed_idp.url("/sign-in"))
    page = browser.follow(browser.submit_sign_in(sign_in, citizen["email"], citizen["password"]))
    assert SECOND_FACTOR_HEADING in page.text
    if kind == "recovery":
        page = recovery_page(browser, page)
        right = SECOND_FACTORS[citizen["email"]].recovery_codes.pop(0)
    else:
        wrong = wrong_code(citizen)
        right = SECOND_FACTORS[citizen["email"]].next_code()
        assert "-" not in right
    for _attempt in range(limits.max_failures - 1):
        page = browser.submit(page, {"code": wrong})
        assert_refused(page, 400, message)
    page = browser.submit(page, {"code": wrong})
    assert_refused(page, 429, TOO_MANY)
    waited = int(page.headers["retry-after"])
    assert "Wait 15 minutes" in page.text or re.search(r"Wait \d+ (seconds?|minutes?)", page.text)
    assert limits.lockout_seconds - 5 <= waited <= limits.lockout_seconds
    # Locked: the right code is refused too, and the account page still wants the second step.
    assert_refused(browser.submit(page, {"code": right}), 429, TOO_MANY)
    assert browser.get(undelayed_idp.url("/")).status_code == 302
    assert recovery_codes_left(idp, citizen) == 10

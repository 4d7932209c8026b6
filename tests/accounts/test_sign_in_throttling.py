"""Sign-in throttling over HTTP (NIST SP 800-63B 5.2.2): delays, lockout, the lockout email, the
IP address limit, counters shared by several IdPs, and Redis.

Besides the shared live IdP (default limits), this module serves a few more IdPs on the same
database with limits a test can reach quickly (no delays, a short lockout, a low IP limit).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from idp.extensions import db
from idp.mail import read_outbox
from idp.models import ThrottleCounter
from tests.accounts.test_password_reset import NEW_PASSWORD
from tests.conftest import CITIZEN_PASSWORD, LiveIdP, free_port, new_citizen, serve_idp
from tests.departments import STAFF_PASSWORD, StaffBrowser, make_staff, visible_text
from tests.security.test_throttle import REDIS_URL, forget_redis_keys, redis_or_skip
from tests.support import mail as mailbox
from tests.support.audit import captured_log, logged_events
from tests.support.browser import CitizenBrowser

pytestmark = pytest.mark.both_databases

WRONG = "not the password at all"
# CSRF tokens differ per response: in forms, and in the passkey button's data attribute.
CSRF_VALUE = re.compile(r'((?:name="csrf_token"[^>]*value=|data-csrf-token=)")[^"]+')


def serve(database_url: str, instance_path: str, **overrides) -> LiveIdP:
    """Another IdP on the same database, without Redis and without growing delays."""
    return serve_idp(
        database_url,
        instance_path,
        **{"redis_url": "", "throttle_delay_seconds": 0, **overrides},
    )


@pytest.fixture(scope="module")
def idps(live_idp, database_url, tmp_path_factory) -> Iterator[dict[str, LiveIdP]]:
    """IdPs beside the shared one, on its database; they share one instance folder (secrets and
    outbox), as processes behind one load balancer would."""
    instance = str(tmp_path_factory.mktemp("throttling"))
    served = {
        "strict": serve(database_url, instance),
        "twin": serve(database_url, instance),
        "brief": serve(database_url, instance, throttle_lockout_seconds=2),
        "ip": serve(database_url, instance, throttle_ip_max_failures=4),
        # Two lockouts reach the cap across lockouts (100 by default).
        "capped": serve(
            database_url, instance, throttle_lockout_seconds=2, throttle_cap_failures=12
        ),
    }
    yield served
    for s in served.values():
        s.close()


class SignIn:
    """One browser posting the sign-in form again and again (one CSRF token)."""

    def __init__(self, idp: LiveIdP):
        self.browser = CitizenBrowser(idp.issuer)
        self.page = self.browser.get(idp.url("/sign-in"))
        assert self.page.status_code == 200

    def attempt(self, email: str, password: str = WRONG) -> httpx.Response:
        return self.browser.submit_sign_in(self.page, email, password)


def unique_email(name: str = "citizen") -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@example.com"


def fingerprint(response: httpx.Response, email: str) -> tuple:
    """What a response tells the person who sent it, with their own typing taken out."""
    body = CSRF_VALUE.sub(r"\1CSRF", response.text).replace(email, "EMAIL")
    return response.status_code, response.headers.get("retry-after"), body


def wait_for_mail(settings, to: str, seconds: float = 5.0) -> list:
    """Messages to this address (the lockout email is sent from a thread)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [m for m in read_outbox(settings, limit=500) if m.to == to]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_six_wrong_passwords_lock_the_account_even_against_the_right_one(idp, idps, make_citizen):
    strict = idps["strict"]
    citizen = make_citizen(unique_email())
    sign_in = SignIn(strict)
    for _ in range(5):
        response = sign_in.attempt(citizen["email"])
        assert response.status_code == 400
        assert "Enter the correct password for this email address" in response.text
    locked = sign_in.attempt(citizen["email"])
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "900"
    text = visible_text(locked)
    assert "You entered the wrong password too many times" in text
    assert "To protect your account, we have locked it for 15 minutes." in text
    assert "Wait 15 minutes, then try to sign in again." in text

    right = sign_in.attempt(citizen["email"], citizen["password"])
    assert right.status_code == 429
    assert 895 <= int(right.headers["retry-after"]) <= 900
    assert "idp_session" not in right.headers.get("set-cookie", "")

    mails = wait_for_mail(strict.app.config["IDP_SETTINGS"], citizen["email"])
    assert len(mails) == 1, "one email, at the moment the account locks"
    assert mails[0].subject == "Someone tried to sign in to your account too many times"
    assert "UTC" in mails[0].body and "locked it for 15 minutes" in mails[0].body
    assert "If this was not you" in mails[0].body


def test_lock_and_throttle_events_are_audited_without_the_email(idp, idps, make_citizen):
    with captured_log("idp.audit") as stream:
        citizen = make_citizen(unique_email())
        stranger = unique_email("stranger")
        sign_in = SignIn(idps["strict"])
        for email in (citizen["email"], stranger):
            for _ in range(7):
                sign_in.attempt(email)
    text = stream.getvalue()
    # Neither address, nor a hash of one (anyone could hash a guessed address to match it).
    for address in (citizen["email"], stranger):
        assert address not in text
        assert hashlib.sha256(address.encode()).hexdigest() not in text
    events = logged_events(text)
    locked = [e for e in events if e["event"] == "account.locked"]
    throttled = [e for e in events if e["event"] == "sign_in.throttled"]
    assert [(e["citizen_id"], e["kind"]) for e in locked] == [
        (citizen["id"], "password"),
        (None, "password"),
    ]
    assert [(e["citizen_id"], e["reason"]) for e in throttled] == [
        (citizen["id"], "locked"),
        (None, "locked"),
    ]


def test_an_unknown_email_gets_exactly_the_same_responses(idp, idps, make_citizen):
    strict = idps["strict"]
    citizen = make_citizen(unique_email())
    stranger = unique_email("stranger")
    sequences = []
    for email, right in ((citizen["email"], citizen["password"]), (stranger, CITIZEN_PASSWORD)):
        sign_in = SignIn(strict)
        responses = [sign_in.attempt(email) for _ in range(6)]
        responses.append(sign_in.attempt(email, right))
        sequences.append([fingerprint(r, email) for r in responses])
    known, unknown = sequences
    assert [status for status, _, _ in known] == [400] * 5 + [429, 429]
    assert known[:6] == unknown[:6]
    # The last Retry-After counts down from the lock: compare the page, and the header roughly.
    assert known[6][2] == unknown[6][2]
    assert abs(int(known[6][1]) - int(unknown[6][1])) <= 1
    assert wait_for_mail(strict.app.config["IDP_SETTINGS"], stranger, seconds=0.5) == []


def test_the_lock_lifts_after_the_configured_lockout(idp, idps, make_citizen, clock):
    brief = idps["brief"]
    citizen = make_citizen(unique_email())
    sign_in = SignIn(brief)
    for _ in range(5):
        assert sign_in.attempt(citizen["email"]).status_code == 400
    locked = sign_in.attempt(citizen["email"])
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "2"
    assert "we have locked it for 2 seconds" in visible_text(locked)
    assert sign_in.attempt(citizen["email"], citizen["password"]).status_code == 429
    clock.advance(2.1)
    assert sign_in.attempt(citizen["email"], citizen["password"]).status_code == 303


def test_a_successful_sign_in_starts_the_count_again(idp, idps, make_citizen):
    strict = idps["strict"]
    citizen = make_citizen(unique_email())
    for _ in range(2):
        sign_in = SignIn(strict)
        for _ in range(5):
            assert sign_in.attempt(citizen["email"]).status_code == 400
        assert sign_in.attempt(citizen["email"], citizen["password"]).status_code == 303


def test_growing_delays_with_the_default_settings(idp, make_citizen, clock):
    citizen = make_citizen(unique_email())
    sign_in = SignIn(idp)
    for _ in range(3):
        assert sign_in.attempt(citizen["email"]).status_code == 400
    waiting = sign_in.attempt(citizen["email"], citizen["password"])
    assert waiting.status_code == 429
    assert waiting.headers["retry-after"] == "1"
    assert "Wait 1 second, then try to sign in again." in visible_text(waiting)
    clock.advance(1.05)
    assert sign_in.attempt(citizen["email"]).status_code == 400
    longer = sign_in.attempt(citizen["email"])
    assert (longer.status_code, longer.headers["retry-after"]) == (429, "2")
    assert "Wait 2 seconds" in visible_text(longer)


def test_too_many_failures_from_one_ip_address_get_429(idp, idps):
    sign_in = SignIn(idps["ip"])
    for _ in range(4):
        assert sign_in.attempt(unique_email()).status_code == 400
    refused = sign_in.attempt(unique_email(), CITIZEN_PASSWORD)
    assert refused.status_code == 429
    assert 890 <= int(refused.headers["retry-after"]) <= 900
    text = visible_text(refused)
    assert "There have been too many attempts to sign in" in text
    assert "Wait 15 minutes" in text
    assert "locked" not in text


def test_two_idps_on_one_database_share_the_counts(idp, idps, make_citizen):
    citizen = make_citizen(unique_email())
    first, second = SignIn(idps["strict"]), SignIn(idps["twin"])
    for _ in range(2):
        assert first.attempt(citizen["email"]).status_code == 400
        assert second.attempt(citizen["email"]).status_code == 400
    assert first.attempt(citizen["email"]).status_code == 400
    assert second.attempt(citizen["email"]).status_code == 429, "the sixth failure, over both"
    assert first.attempt(citizen["email"], citizen["password"]).status_code == 429
    assert second.attempt(citizen["email"], citizen["password"]).status_code == 429


def test_staff_sign_in_locks_too_and_apart_from_citizens(idp, idps, make_citizen):
    strict = idps["strict"]
    email = make_staff(idp.app, unique_email("admin"))
    citizen = make_citizen(email)
    stranger = unique_email("stranger")
    outcomes = {}
    for address, right in ((email, STAFF_PASSWORD), (stranger, STAFF_PASSWORD)):
        staff = StaffBrowser(strict.issuer)
        responses = [staff.sign_in(address, WRONG) for _ in range(6)]
        responses.append(staff.sign_in(address, right))
        outcomes[address] = [(r.status_code, visible_text(r)) for r in responses]
    assert [status for status, _ in outcomes[email]] == [400] * 5 + [429, 429]
    assert outcomes[email][:6] == outcomes[stranger][:6], "the same pages for an unknown address"
    assert "To protect the account, it is locked for 15 minutes." in outcomes[email][5][1]
    # The citizen with the same address is not locked out by the staff account's lock.
    sign_in = SignIn(strict)
    assert sign_in.attempt(citizen["email"], citizen["password"]).status_code == 303
    assert wait_for_mail(strict.app.config["IDP_SETTINGS"], email, seconds=0.5) == []


def test_with_redis_the_counts_live_in_redis(idp, database_url, tmp_path, make_citizen):
    client = redis_or_skip()
    prefix = f"idp-test:{uuid.uuid4().hex}:"
    served = serve(database_url, str(tmp_path), redis_url=REDIS_URL, throttle_redis_prefix=prefix)
    try:
        citizen = make_citizen(unique_email())
        sign_in = SignIn(served)
        statuses = [sign_in.attempt(citizen["email"]).status_code for _ in range(6)]
        assert statuses == [400] * 5 + [429]
        assert sign_in.attempt(citizen["email"], citizen["password"]).status_code == 429
        with served.app.app_context():
            assert db.session.scalar(db.select(db.func.count(ThrottleCounter.id))) == 0
        keys = sorted(k.decode().removeprefix(prefix) for k in client.scan_iter(prefix + "*"))
        assert [k.split(":")[:2] for k in keys] == [
            ["password", "account"],
            ["password", "ip"],
            ["password", "notice"],
            ["password", "total"],
        ]
        assert keys[0].endswith(":lock"), "the failures went when the lock came"
        assert not any(citizen["email"] in k for k in keys)
        assert len(wait_for_mail(served.app.config["IDP_SETTINGS"], citizen["email"])) == 1
    finally:
        served.close()
        forget_redis_keys(client, prefix)


def test_with_redis_unreachable_the_database_counts(idp, database_url, tmp_path, make_citizen):
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("idp.throttle")
    logger.addHandler(handler)
    served = serve(database_url, str(tmp_path), redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        citizen = make_citizen(unique_email())
        sign_in = SignIn(served)
        statuses = [sign_in.attempt(citizen["email"]).status_code for _ in range(6)]
        assert statuses == [400] * 5 + [429]
        assert sign_in.attempt(citizen["email"], citizen["password"]).status_code == 429
        with served.app.app_context():
            # The account, the IP address, the total across lockouts, and the lockout email.
            assert db.session.scalar(db.select(db.func.count(ThrottleCounter.id))) == 4
    finally:
        served.close()
        logger.removeHandler(handler)
    assert len([line for line in lines if "Redis" in line]) == 1, lines


def test_the_lockout_page_and_email_are_in_welsh_when_the_citizen_chose_welsh(
    idp, idps, make_citizen
):
    strict = idps["strict"]
    citizen = make_citizen(unique_email())
    browser = CitizenBrowser(strict.issuer)
    page = browser.get(strict.url("/sign-in?lang=cy"))
    for _ in range(5):
        browser.submit_sign_in(page, citizen["email"], WRONG)
    locked = browser.submit_sign_in(page, citizen["email"], WRONG)
    assert locked.status_code == 429
    text = visible_text(locked)
    assert "Rydych wedi rhoi’r cyfrinair anghywir ormod o weithiau" in text
    assert "Er mwyn diogelu eich cyfrif, rydym wedi ei gloi am 15 munud." in text
    (mail,) = wait_for_mail(strict.app.config["IDP_SETTINGS"], citizen["email"])
    assert "wedi ei gloi am 15 munud" in mail.body


# -- Nobody can lock a citizen out from elsewhere ---------------------------------------------


def device_cookie(response: httpx.Response) -> str:
    (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("idp_device=")]
    return cookie


def test_a_browser_that_signed_in_before_is_not_locked_out_by_guessing_elsewhere(
    idp, idps, make_citizen
):
    strict = idps["strict"]
    citizen = make_citizen(unique_email())
    own = SignIn(strict)
    signed_in = own.attempt(citizen["email"], citizen["password"])
    assert signed_in.status_code == 303
    cookie = device_cookie(signed_in)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert citizen["email"] not in cookie

    attacker = SignIn(strict)
    assert [attacker.attempt(citizen["email"]).status_code for _ in range(6)] == [400] * 5 + [429]
    # The lock stops every browser the account never signed in on, even with the password...
    assert attacker.attempt(citizen["email"], citizen["password"]).status_code == 429
    assert SignIn(strict).attempt(citizen["email"], citizen["password"]).status_code == 429
    # ...but not the owner's own browser.
    assert own.attempt(citizen["email"], citizen["password"]).status_code == 303


def test_wrong_passwords_on_a_trusted_browser_lock_only_that_browser(idp, idps, make_citizen):
    strict = idps["strict"]
    citizen = make_citizen(unique_email())
    own = SignIn(strict)
    assert own.attempt(citizen["email"], citizen["password"]).status_code == 303
    assert [own.attempt(citizen["email"]).status_code for _ in range(6)] == [400] * 5 + [429]
    # Another browser (a phone, say) is not locked by the first one's mistakes.
    assert SignIn(strict).attempt(citizen["email"], citizen["password"]).status_code == 303


def test_guessing_elsewhere_does_not_lock_the_owner_out_of_their_account_pages(idp, idps):
    strict = idps["strict"]
    citizen = new_citizen(strict, unique_email())  # its app's key is this IdP's
    own = CitizenBrowser(strict.issuer)
    page = own.sign_in(own.get(strict.url("/sign-in")), citizen["email"], citizen["password"])
    assert "Your account" in page.text, page.text[:400]
    attacker = SignIn(strict)
    assert [attacker.attempt(citizen["email"]).status_code for _ in range(6)] == [400] * 5 + [429]

    # The owner's own signed-in browser re-authenticates with the password as usual.
    page = own.get(strict.url("/account/password"))
    done = own.follow(
        own.submit(
            page,
            {
                "current_password": citizen["password"],
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )
    )
    assert "Your password has been changed" in done.text, done.text[:400]


def test_staff_browsers_that_signed_in_before_are_not_locked_out_either(idp, idps):
    strict = idps["strict"]
    email = make_staff(idp.app, unique_email("admin"))
    own = StaffBrowser(strict.issuer)
    # The password step: on to the second step (its code is tested elsewhere).
    assert own.password_step(email).status_code == 303
    attacker = StaffBrowser(strict.issuer)
    statuses = [attacker.password_step(email, WRONG).status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]
    assert attacker.password_step(email).status_code == 429
    assert own.password_step(email).status_code == 303


def test_the_lockout_email_is_sent_at_most_once_a_day(idp, idps, make_citizen, clock):
    brief = idps["brief"]
    citizen = make_citizen(unique_email())
    sign_in = SignIn(brief)
    for lock in range(3):
        statuses = [sign_in.attempt(citizen["email"]).status_code for _ in range(6)]
        assert statuses == [400] * 5 + [429], f"lock {lock + 1}"
        clock.advance(2.1)  # the lockout ends
    assert len(wait_for_mail(brief.app.config["IDP_SETTINGS"], citizen["email"])) >= 1
    time.sleep(0.5)  # any later email would be sent from a thread too
    mails = wait_for_mail(brief.app.config["IDP_SETTINGS"], citizen["email"])
    assert len(mails) == 1, "three locks, one email"


def test_failures_across_lockouts_hold_the_account_until_a_password_reset(
    idp, idps, make_citizen, clock
):
    capped = idps["capped"]
    # No app: the email alone proves a reset (its app is checked in test_password_reset.py).
    citizen = make_citizen(unique_email(), second_factor=False)
    sign_in = SignIn(capped)
    assert [sign_in.attempt(citizen["email"]).status_code for _ in range(6)] == [400] * 5 + [429]
    clock.advance(2.1)
    assert [sign_in.attempt(citizen["email"]).status_code for _ in range(6)] == [400] * 5 + [429]
    clock.advance(2.1)  # longer than the lockout: the cap does not end with it
    held = sign_in.attempt(citizen["email"], citizen["password"])
    assert held.status_code == 429
    text = visible_text(held)
    assert "You entered the wrong password too many times" in text
    assert "we have locked it until its password is reset" in text
    assert 'href="/reset-password"' in held.text
    # The owner hears of the first lock, and of the cap (whatever the once-a-day limit).
    cap_mail = mailbox.wait_for_mail(capped, citizen["email"], count=2)
    assert "we have locked it until its password is reset" in cap_mail.body

    # The password reset journey opens it.
    browser = CitizenBrowser(capped.issuer)
    page = browser.get(capped.url("/reset-password"))
    check = browser.follow(browser.submit(page, {"email": citizen["email"]}))
    code = mailbox.code_in(mailbox.wait_for_mail(capped, citizen["email"], count=3))
    new = browser.follow(browser.submit(check, {"code": code}))
    assert "Choose a new password" in new.text
    browser.submit(new, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert SignIn(capped).attempt(citizen["email"], NEW_PASSWORD).status_code == 303

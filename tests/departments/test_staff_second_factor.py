"""Staff sign in with two factors: the password alone opens no staff page; the first sign-in
sets up an authenticator app (QR code and key); after that every sign-in asks for its code
(each code once, one step of drift, wrong codes throttled); an operator resets a lost app."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest

from idp import clock
from idp.development import demo
from idp.extensions import db
from idp.models import StaffMember, StaffSession
from idp.staff.accounts import disable_staff, has_staff_second_factor
from tests.conftest import LiveIdP, serve_idp
from tests.departments import (
    PASSPORTS,
    SECOND_FACTOR_PATH,
    SETUP_PATH,
    STAFF_APPS,
    STAFF_PASSWORD,
    StaffApp,
    StaffBrowser,
    error_summary,
    make_staff,
    redirects_to,
    visible_text,
)
from tests.support.audit import captured_log, logged_events
from tests.support.cli import run

CODE_HEADING = "Enter the code from your authenticator app"
SETUP_HEADING = "Set up an authenticator app"
WRONG_CODE = "Enter the 6-digit code your authenticator app shows now"
TOO_MANY = "Too many wrong codes"
SECRET = re.compile(r'id="totp-secret">([^<]+)<')
DEPARTMENT_ADMIN = "admin@passports.example.gov.uk"
PLATFORM_ADMIN = "platform@sign-in.example.gov.uk"
# Every staff page, for each role: none opens on a password alone.
STAFF_PAGES = {
    "department": ["/departments/", "/departments/services/new"],
    "platform": ["/departments/", "/admin/services", "/admin/initial-access-tokens"],
}


# -- Helpers -----------------------------------------------------------------------------------


def staff_member(idp, role: str, *, second_factor: bool = True) -> str:
    """A department's or the platform's administrator."""
    if role == "department":
        return make_staff(
            idp.app, DEPARTMENT_ADMIN, department=PASSPORTS, second_factor=second_factor
        )
    return make_staff(idp.app, PLATFORM_ADMIN, second_factor=second_factor)


def at_code_page(browser: StaffBrowser, email: str, next_path: str | None = None):
    """The password typed: the code page it leads to."""
    response = browser.password_step(email, next_path=next_path)
    assert response.status_code == 303, error_summary(response)
    assert redirects_to(response) == SECOND_FACTOR_PATH
    page = browser.follow(response)
    assert CODE_HEADING in visible_text(page)
    return page


def at_setup_page(browser: StaffBrowser, email: str, next_path: str | None = None):
    """The password typed by someone without an app: the setup page it leads to."""
    response = browser.password_step(email, next_path=next_path)
    assert response.status_code == 303, error_summary(response)
    assert redirects_to(response) == SETUP_PATH
    page = browser.follow(response)
    assert SETUP_HEADING in visible_text(page)
    return page


def shown_key(page: httpx.Response) -> str:
    """The key shown as text (in groups of four), without the spaces."""
    match = SECRET.search(page.text)
    assert match, page.text[:800]
    return html.unescape(match.group(1)).replace(" ", "")


def away_from_a_step_boundary(margin: float = 4.0) -> int:
    """The current time step, after waiting out the end of a step if it is near."""
    left = 30 - clock.time() % 30
    if left < margin:
        clock.advance(left + 0.2)
    return int(clock.time() // 30)


def wrong_code(app: StaffApp) -> str:
    """A well-formed code that is not the app's for any step near now."""
    now = int(clock.time() // 30)
    near = {app.code_at(step) for step in range(now - 3, now + 4)}
    return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 7919)) if c not in near)


def assert_refused(response: httpx.Response, status: int, message: str) -> None:
    """The same page again with the error in its summary: no redirect, no staff page."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert "location" not in response.headers
    assert any(message in item for item in error_summary(response)), error_summary(response)


def opens_staff_page(browser: StaffBrowser, path: str = "/departments/") -> bool:
    """Whether the browser gets the staff page (rather than a redirect)."""
    return browser.get(path).status_code == 200


def staff_cookie(browser: StaffBrowser) -> str:
    """The browser's staff session cookie."""
    return browser.http.cookies["idp_staff"]


def with_cookie(idp, cookie: str) -> StaffBrowser:
    """Another browser holding a copy of a staff cookie (a stolen or stale one)."""
    other = StaffBrowser(idp.issuer)
    other.http.cookies.set("idp_staff", cookie)
    return other


def member_row(idp, email: str) -> StaffMember:
    """The staff member as stored now (a detached copy)."""
    with idp.app.app_context():
        member = db.session.scalar(db.select(StaffMember).filter_by(email=email))
        db.session.expunge(member)
        return member


def live_sessions(idp, email: str) -> list[list[str] | None]:
    """The amr of each of the member's sessions that has not ended."""
    with idp.app.app_context():
        return list(
            db.session.scalars(
                db.select(StaffSession.amr)
                .join(StaffMember)
                .where(StaffMember.email == email, StaffSession.ended_at.is_(None))
            )
        )


def cli_env(idp, database_url: str) -> dict[str, str]:
    """An operator's environment for `idp` commands against the live IdP's database."""
    env = {
        **os.environ,
        "IDP_DATABASE_URL": database_url,
        "IDP_INSTANCE_PATH": idp.app.config["IDP_SETTINGS"].instance_path,
        "IDP_DEPARTMENTS_FILE": "",
        "IDP_LOG_LEVEL": "WARNING",
    }
    return env


@pytest.fixture
def staff(idp) -> StaffBrowser:
    """A browser nobody has signed in with yet."""
    return StaffBrowser(idp.issuer)


@pytest.fixture
def audit_events():
    """The audit events the IdP records while the test runs (and the raw log text)."""
    with captured_log() as stream:

        def events() -> tuple[list[dict], str]:
            text = stream.getvalue()
            return logged_events(text), text

        yield events


@pytest.fixture(scope="module")
def twin_idp(live_idp, database_url) -> Iterator[LiveIdP]:
    """Another IdP process on the same database, whose wrong codes lock without delays."""
    served = serve_idp(
        database_url,
        live_idp.app.config["IDP_SETTINGS"].instance_path,
        redis_url="",
        throttle_overrides={"second_factor": {"delay_seconds": 0}},
    )
    yield served
    served.close()


# -- The password alone ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["department", "platform"])
def test_the_password_alone_opens_no_staff_page(idp, staff, role):
    email = staff_member(idp, role)
    page = at_code_page(staff, email)
    assert live_sessions(idp, email) == [["pwd"]]
    assert "Sign out" in visible_text(page)
    for link in ("Your services", "Every service", "Register a service", "Initial access tokens"):
        assert link not in visible_text(page)

    for path in STAFF_PAGES[role]:
        response = staff.get(path)
        assert response.status_code == 302, path
        location = urlsplit(response.headers["location"])
        assert location.path == SECOND_FACTOR_PATH, path
        assert parse_qs(location.query) == {"next": [path]}, path
    # A form posted straight to a staff page changes nothing either.
    token = dict(staff.form(page).fields)["csrf_token"]
    posted = staff.http.post("/departments/services/new", data={"csrf_token": token})
    assert posted.status_code == 303
    assert redirects_to(posted) == SECOND_FACTOR_PATH


@pytest.mark.parametrize("role", ["department", "platform"])
def test_a_member_without_an_app_gets_only_the_setup_page(idp, staff, role):
    email = staff_member(idp, role, second_factor=False)
    at_setup_page(staff, email)
    for path in [*STAFF_PAGES[role], SECOND_FACTOR_PATH]:
        response = staff.get(path)
        assert response.status_code == 302, path
        assert redirects_to(response) == SETUP_PATH, path


def test_signing_out_at_the_code_page_ends_the_password_session(idp, staff):
    email = staff_member(idp, "department")
    page = at_code_page(staff, email)
    cookie = staff_cookie(staff)

    signed_out = staff.submit(page, action="/staff/sign-out")

    assert redirects_to(signed_out) == "/staff/sign-in"
    code_page = with_cookie(idp, cookie).get(SECOND_FACTOR_PATH)
    assert redirects_to(code_page) == "/staff/sign-in"
    assert live_sessions(idp, email) == []


# -- Setting up the app at the first sign-in ---------------------------------------------------


def test_the_first_sign_in_sets_up_an_app_and_then_opens_the_page_asked_for(
    idp, staff, audit_events
):
    email = staff_member(idp, "department", second_factor=False)
    sign_in_page = staff.get("/departments/services/new", follow=True)
    response = staff.submit(sign_in_page, {"email": email, "password": STAFF_PASSWORD})
    assert redirects_to(response) == SETUP_PATH
    page = staff.follow(response)
    assert SETUP_HEADING in visible_text(page)
    assert "<svg" in page.text and 'aria-label="QR code for your authenticator app"' in page.text
    key = shown_key(page)
    app = StaffApp(key)
    password_cookie = staff_cookie(staff)

    # A wrong code is refused with a message; the key stays the same.
    refused = staff.submit(page, {"code": wrong_code(app)})
    assert_refused(refused, 400, WRONG_CODE)
    assert shown_key(refused) == key
    assert not opens_staff_page(with_cookie(idp, password_cookie))

    # The code the app shows lets them in, to the page they asked for, with a new session.
    response = staff.submit(refused, {"code": app.next_code()})
    assert response.status_code == 303
    assert response.headers["location"] == "/departments/services/new"
    assert "Register a service" in visible_text(staff.follow(response))
    assert staff_cookie(staff) != password_cookie
    assert opens_staff_page(staff)
    assert not opens_staff_page(with_cookie(idp, password_cookie)), "the old session ended"
    assert live_sessions(idp, email) == [["pwd", "otp"]]

    # The next sign-in asks for a code from the same app, not for a new app.
    again = StaffBrowser(idp.issuer)
    page = at_code_page(again, email)
    assert redirects_to(again.submit(page, {"code": app.next_code()})) == "/departments/"
    assert opens_staff_page(again)

    events, text = audit_events()
    enrolled = [e for e in events if e["event"] == "staff.second_factor.enrolled"]
    signed_in = [e for e in events if e["event"] == "staff.second_factor.succeeded"]
    assert len(enrolled) == 1 and len(signed_in) == 2
    assert all(e["methods"] == "pwd otp" for e in signed_in)
    assert key not in text and app.code_at(app.last_step) not in text


def test_each_visit_to_the_setup_page_shows_a_new_key(idp, staff):
    email = staff_member(idp, "platform", second_factor=False)
    first = at_setup_page(staff, email)
    second = staff.get(SETUP_PATH)
    assert shown_key(second) != shown_key(first)
    # A code from the key shown first (never confirmed) no longer works.
    assert_refused(
        staff.submit(second, {"code": StaffApp(shown_key(first)).next_code()}), 400, WRONG_CODE
    )
    assert (
        redirects_to(staff.submit(second, {"code": StaffApp(shown_key(second)).next_code()}))
        == "/departments/"
    )


def test_a_set_up_app_cannot_be_replaced_from_the_setup_page(idp, staff):
    email = staff_member(idp, "department")
    key_before = member_row(idp, email).totp_secret_encrypted
    at_code_page(staff, email)
    response = staff.get(SETUP_PATH)
    assert redirects_to(response) == SECOND_FACTOR_PATH
    assert member_row(idp, email).totp_secret_encrypted == key_before
    assert "totp-secret" not in staff.follow(response).text


# -- The code page -----------------------------------------------------------------------------


def test_the_code_page_refuses_a_wrong_code_and_lets_the_right_one_in(idp, staff, audit_events):
    email = staff_member(idp, "platform")
    app = STAFF_APPS[email]
    page = at_code_page(staff, email, next_path="/admin/initial-access-tokens")
    password_cookie = staff_cookie(staff)
    wrong = wrong_code(app)

    refused = staff.submit(page, {"code": wrong})
    assert_refused(refused, 400, WRONG_CODE)
    assert CODE_HEADING in visible_text(refused)

    response = staff.submit(refused, {"code": app.next_code()})
    assert response.headers["location"] == "/admin/initial-access-tokens"
    assert "Initial access tokens" in visible_text(staff.follow(response))
    assert staff_cookie(staff) != password_cookie
    assert not opens_staff_page(with_cookie(idp, password_cookie))
    # Signed in, the code page just goes on.
    assert staff.get(SECOND_FACTOR_PATH).status_code == 302

    events, text = audit_events()
    failed = [e for e in events if e["event"] == "staff.second_factor.failed"]
    assert [e["staff_id"] for e in failed] == [member_row(idp, email).id]
    assert wrong not in text and app.secret not in text


@pytest.mark.parametrize(
    "code",
    ["", "12345", "1234567", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16", "9" * 5000],
    ids=["empty", "five", "seven", "letters", "fullwidth", "very-long"],
)
def test_malformed_codes_are_refused_with_a_message(idp, staff, code):
    email = staff_member(idp, "department")
    page = at_code_page(staff, email)
    response = staff.submit(page, {"code": code})
    assert response.status_code == 400
    assert error_summary(response), "a message says what is wrong"
    assert not opens_staff_page(staff)


def test_a_code_works_once_even_on_another_idp_process(idp, twin_idp, audit_events):
    email = staff_member(idp, "department")
    app = STAFF_APPS[email]
    step = away_from_a_step_boundary()
    code = app.code_at(step)
    first = StaffBrowser(idp.issuer)
    assert redirects_to(first.submit(at_code_page(first, email), {"code": code})) == "/departments/"

    # Someone who saw the code (and knows the password) tries it on another IdP process.
    second = StaffBrowser(twin_idp.issuer)
    page = at_code_page(second, email)
    replay = second.submit(page, {"code": code})
    assert_refused(replay, 400, WRONG_CODE)
    # An older code than the one used is refused too: the app has moved past it.
    assert_refused(second.submit(replay, {"code": app.code_at(step - 1)}), 400, WRONG_CODE)
    assert not opens_staff_page(second)
    events, text = audit_events()
    assert any(e["event"] == "staff.second_factor.replayed" for e in events)
    assert code not in text


def test_codes_one_step_away_are_accepted_and_two_steps_away_refused(idp, staff):
    email = staff_member(idp, "platform")
    app = STAFF_APPS[email]
    page = at_code_page(staff, email)
    now = away_from_a_step_boundary()
    for step in (now - 2, now + 2):
        if app.code_at(step) in {app.code_at(s) for s in (now - 1, now, now + 1)}:
            continue  # the same six digits by chance
        page = staff.submit(page, {"code": app.code_at(step)})
        assert_refused(page, 400, WRONG_CODE)
    assert redirects_to(staff.submit(page, {"code": app.code_at(now - 1)})) == "/departments/"


def test_posts_without_the_csrf_token_are_refused(idp, staff):
    enrolled = staff_member(idp, "department")
    page = at_code_page(staff, enrolled)
    response = staff.submit(page, {"code": STAFF_APPS[enrolled].next_code()}, drop=("csrf_token",))
    assert response.status_code == 400
    assert not opens_staff_page(staff)

    newcomer = StaffBrowser(idp.issuer)
    page = at_setup_page(newcomer, staff_member(idp, "platform", second_factor=False))
    code = StaffApp(shown_key(page)).next_code()
    response = newcomer.submit(page, {"code": code}, drop=("csrf_token",))
    assert response.status_code == 400
    assert not opens_staff_page(newcomer)
    assert not has_staff_second_factor(member_row(idp, PLATFORM_ADMIN))


# -- Throttling --------------------------------------------------------------------------------


def test_wrong_codes_are_throttled_with_how_long_to_wait(idp, staff):
    email = staff_member(idp, "department")
    app = STAFF_APPS[email]
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("second_factor")
    page = at_code_page(staff, email)
    statuses = []
    while len(statuses) < limits.max_failures:
        page = staff.submit(page, {"code": wrong_code(app)})
        statuses.append(page.status_code)
        if page.status_code == 429:
            break
    assert statuses[-1] == 429 and set(statuses[:-1]) == {400}, statuses
    wait = int(page.headers["retry-after"])
    assert wait >= 1
    assert re.search(rf"Wait {wait} seconds? and try again", " ".join(error_summary(page)))

    # While throttled, even the right code is not checked (nor used up)...
    right = app.next_code()
    assert_refused(staff.submit(page, {"code": right}), 429, TOO_MANY)
    assert not opens_staff_page(staff)
    # ...and once the wait is over, it works.
    clock.advance(wait + 0.3)
    assert redirects_to(staff.submit(page, {"code": right})) == "/departments/"


def test_too_many_wrong_codes_lock_the_second_step(idp, twin_idp, audit_events):
    email = staff_member(idp, "platform")
    app = STAFF_APPS[email]
    limits = twin_idp.app.config["IDP_SETTINGS"].throttle_limits("second_factor")
    assert limits.delay_seconds == 0
    browser = StaffBrowser(twin_idp.issuer)
    page = at_code_page(browser, email)
    for _attempt in range(limits.max_failures - 1):
        page = browser.submit(page, {"code": wrong_code(app)})
        assert_refused(page, 400, WRONG_CODE)
    page = browser.submit(page, {"code": wrong_code(app)})
    assert_refused(page, 429, TOO_MANY)
    assert "Wait 15 minutes and try again" in visible_text(page)
    assert limits.lockout_seconds - 5 <= int(page.headers["retry-after"]) <= limits.lockout_seconds
    # Locked: the right code is refused too, from a new sign-in as well.
    assert_refused(browser.submit(page, {"code": app.next_code()}), 429, TOO_MANY)
    other = StaffBrowser(twin_idp.issuer)
    assert_refused(
        other.submit(at_code_page(other, email), {"code": app.next_code()}), 429, TOO_MANY
    )
    assert not opens_staff_page(other)
    events, _ = audit_events()
    locked = [e for e in events if e["event"] == "account.locked"]
    assert [(e["kind"], e["realm"]) for e in locked] == [("second_factor", "staff")]


# -- Disabled staff ----------------------------------------------------------------------------


def disable(idp, email: str) -> None:
    """What `idp staff disable` does."""
    with idp.app.app_context():
        member = db.session.scalar(db.select(StaffMember).filter_by(email=email))
        disable_staff(member, actor="test")


def test_a_disabled_member_gets_no_further_than_the_code_page(idp, staff):
    email = staff_member(idp, "department")
    page = at_code_page(staff, email)
    disable(idp, email)

    response = staff.submit(page, {"code": STAFF_APPS[email].next_code()})

    assert response.status_code == 303
    assert redirects_to(response) == "/staff/sign-in"
    assert not opens_staff_page(staff)
    refused = staff.password_step(email)
    assert refused.status_code == 400


def test_a_disabled_member_cannot_set_up_an_app(idp, staff):
    email = staff_member(idp, "platform", second_factor=False)
    page = at_setup_page(staff, email)
    disable(idp, email)

    response = staff.submit(page, {"code": StaffApp(shown_key(page)).next_code()})

    assert redirects_to(response) == "/staff/sign-in"
    assert not opens_staff_page(staff)
    assert not has_staff_second_factor(member_row(idp, email))


# -- A lost app: the operator resets it --------------------------------------------------------


def test_after_an_operator_resets_a_lost_app_the_next_sign_in_sets_up_a_new_one(
    idp, database_url, staff
):
    email = staff_member(idp, "department")
    old_app = STAFF_APPS[email]
    staff.signed_in(email)
    assert opens_staff_page(staff)

    result = run(cli_env(idp, database_url), "staff", "reset-second-factor", email.upper())

    assert f"reset the second factor of {email}; 1 session has ended" in result.stdout
    assert not opens_staff_page(staff), "their sessions ended"
    fresh = StaffBrowser(idp.issuer)
    page = at_setup_page(fresh, email)
    new_key = shown_key(page)
    assert new_key != old_app.secret
    assert (
        redirects_to(fresh.submit(page, {"code": StaffApp(new_key).next_code()})) == "/departments/"
    )
    assert opens_staff_page(fresh)
    # The lost app's codes no longer work.
    later = StaffBrowser(idp.issuer)
    assert_refused(
        later.submit(at_code_page(later, email), {"code": old_app.next_code()}), 400, WRONG_CODE
    )


# -- The demo staff ----------------------------------------------------------------------------


def test_the_demo_staff_sign_in_with_the_printed_key_and_the_dev_page_code(idp, dev_idp):
    with idp.app.app_context():
        demo.ensure_demo_staff()
        demo.ensure_demo_staff()  # a second start changes nothing
    dev_page = httpx.get(dev_idp.url("/dev/totp"))
    shown = re.search(r'id="staff-totp-code"[^>]*>(\d{6})<', dev_page.text).group(1)
    assert demo.DEMO_PLATFORM_ADMIN in dev_page.text and demo.DEMO_DEPARTMENT_ADMIN in dev_page.text
    totp = pyotp.TOTP(demo.DEMO_STAFF_TOTP_SECRET)

    for email, home in (
        (demo.DEMO_PLATFORM_ADMIN, "Every service"),
        (demo.DEMO_DEPARTMENT_ADMIN, "your services"),
    ):
        browser = StaffBrowser(idp.issuer)
        page = at_code_page_with(browser, email, demo.DEMO_STAFF_PASSWORD)
        code = shown if totp.verify(shown, valid_window=1) else totp.now()
        response = browser.submit(page, {"code": code})
        assert response.status_code == 303, error_summary(response)
        assert home in visible_text(browser.follow(response))


def at_code_page_with(browser: StaffBrowser, email: str, password: str) -> httpx.Response:
    """The code page after a password other than the test staff's."""
    response = browser.password_step(email, password)
    assert redirects_to(response) == SECOND_FACTOR_PATH, error_summary(response)
    return browser.follow(response)

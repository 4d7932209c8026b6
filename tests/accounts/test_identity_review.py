"""The identity check attacked: what a citizen (or someone with a citizen's account) tries to
get round the limits, and what a hostile evidence service answers."""

from __future__ import annotations

import base64
import html
import re
import threading
from collections.abc import Iterator

import pytest

from idp.accounts.identity import store
from idp.extensions import db
from tests.accounts.test_identity_journey import (
    KENNETH,
    PAUL,
    UNAVAILABLE,
    FakeService,
    _with_services,
    checks_of,
    events,
    passport_fields,
    start,
)
from tests.support.browser import CitizenBrowser


@pytest.fixture
def citizen_browser(checking_idp, make_citizen) -> CitizenBrowser:
    """A citizen signed in fully (with their authenticator app)."""
    citizen = make_citizen()
    browser = CitizenBrowser(checking_idp.issuer)
    page = browser.follow(browser.get(checking_idp.url("/sign-in")))
    browser.sign_in(page, citizen["email"], citizen["password"])
    browser.citizen = citizen
    return browser


def _checked(idp) -> int:
    return len([e for e in events(idp) if e["event"] == "identity.evidence_checked"])


def test_checks_started_in_advance_do_not_get_round_the_daily_limit(checking_idp, citizen_browser):
    """Starting many checks before failing any must not give a guess for each: a new check
    ends the one in progress, so each failure needs a start, and the fourth start is refused."""
    idp, browser = checking_idp, citizen_browser
    for _ in range(5):
        page = browser.follow(start(browser, idp.issuer, "passport"))
        assert "Enter your passport details" in page.text
    guesses = 0
    for _ in range(5):
        page = browser.follow(browser.get(idp.url("/identity/passport")))
        if "Enter your passport details" not in page.text:
            break
        browser.submit(page, passport_fields(PAUL))
        guesses += 1
    assert guesses == 1
    assert _checked(idp) == 1
    assert checks_of(idp, browser.citizen["id"])[-1] == ("failed", "D")


# -- A hostile evidence service ----------------------------------------------------------------


@pytest.fixture
def hostile_passport_office(checking_idp, evidence_services) -> Iterator[FakeService]:
    fake = FakeService()
    _with_services(checking_idp, {**evidence_services, "passport": fake.url})
    yield fake
    fake.close()


NESTED = b"[" * 5000 + b"]" * 5000


def _deep_header_jwt() -> bytes:
    header = base64.urlsafe_b64encode(NESTED).rstrip(b"=")
    return b'{"credential": "' + header + b'.e30.c2ln"}'


@pytest.mark.parametrize(
    "hostile",
    [
        ("answer", (200, NESTED)),
        ("keys", (200, NESTED)),
        ("answer", (200, _deep_header_jwt())),
        ("forge", lambda claims: {**claims, "nbf": 10**400}),
        ("forge", lambda claims: {**claims, "exp": 10**400}),
    ],
    ids=["nested-answer", "nested-keys", "nested-jwt-header", "huge-nbf", "huge-exp"],
)
def test_a_hostile_service_answer_is_a_clear_page_not_a_server_error(
    checking_idp, citizen_browser, hostile_passport_office, hostile
):
    idp, browser, fake = checking_idp, citizen_browser, hostile_passport_office
    what, value = hostile
    if what == "answer":
        fake.raw_answer = value
    elif what == "keys":
        fake.raw_keys = value
    else:
        fake.forge = value
    page = browser.follow(start(browser, idp.issuer, "passport"))
    response = browser.submit(page, passport_fields(KENNETH))
    assert response.status_code == 503, response.text[:500]
    assert UNAVAILABLE in response.text
    assert events(idp)[-1]["event"] == "identity.evidence_refused"


def _not_valid(claims: dict) -> dict:
    claims["vc"]["evidence"][0].update(validityScore=0, ci=["D02"])
    return claims


def test_the_same_step_sent_many_times_at_once_is_checked_once(
    checking_idp, citizen_browser, hostile_passport_office
):
    """Guesses sent in parallel on one check (each would fail the check, but only one failure
    would count) reach the passport office once; the others are told to try again."""
    idp, browser, fake = checking_idp, citizen_browser, hostile_passport_office
    fake.forge = _not_valid
    fake.delay = 0.5
    page = browser.follow(start(browser, idp.issuer, "passport"))
    answers: list[int] = []

    def guess() -> None:
        answers.append(browser.submit(page, passport_fields(KENNETH)).status_code)

    threads = [threading.Thread(target=guess) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _checked(idp) == 1
    # The others were told to try again (one arriving after the first came back would be sent
    # to start a new check instead).
    assert len(answers) == 4 and answers.count(503) >= 2
    assert checks_of(idp, browser.citizen["id"]) == [("failed", "D")]


def test_refused_attempts_do_not_push_back_the_time_the_citizen_was_given(
    checking_idp, citizen_browser, clock
):
    """Tries refused while the limit holds are not failed checks: at the time the not-proved
    page gave, the citizen may try again, however often they tried meanwhile."""
    idp, browser = checking_idp, citizen_browser
    for _ in range(3):
        page = browser.follow(start(browser, idp.issuer, "passport"))
        browser.submit(page, passport_fields(PAUL))
    clock.advance(12 * 3600)
    _sign_in_again(browser, idp)
    for _ in range(3):
        refused = browser.follow(start(browser, idp.issuer, "passport"))
        assert "You have tried to prove your identity too many times today" in refused.text
    clock.advance(12 * 3600 + 60)
    _sign_in_again(browser, idp)
    page = browser.follow(start(browser, idp.issuer, "passport"))
    assert "Enter your passport details" in page.text


def _sign_in_again(browser: CitizenBrowser, idp) -> None:
    sign_in = browser.follow(browser.get(idp.url("/sign-in")))
    browser.sign_in(sign_in, browser.citizen["email"], browser.citizen["password"])


def _answered_all_and_stopped(idp, citizen_id: int, busy_for: float) -> None:
    """The state a request sending the answers leaves when it stops half way."""
    from idp import clock
    from idp.accounts.identity import logic

    with idp.app.app_context():
        check = logic.current_check(citizen_id)
        check.state.answers = {q["id"]: q["choices"][0] for q in check.state.questions}
        check.state.busy_until = clock.time() + busy_for if busy_for else 0.0
        check.row.state_encrypted = store.encrypt_json(check.state.to_json())
        db.session.commit()


def test_answers_kept_but_never_checked_are_asked_again_not_a_server_error(
    checking_idp, citizen_browser
):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    page = browser.follow(browser.submit(page, passport_fields(KENNETH)))
    page = browser.follow(browser.submit(page, KENNETH["address"]))
    assert "Question 1 of 3" in page.text
    # Being sent by another request now: try again later.
    _answered_all_and_stopped(idp, browser.citizen["id"], busy_for=30)
    busy = browser.get(idp.url("/identity/questions"))
    assert busy.status_code == 503 and UNAVAILABLE in busy.text
    # Nobody is sending them: asked again from the first question.
    _answered_all_and_stopped(idp, browser.citizen["id"], busy_for=0)
    again = browser.follow(browser.get(idp.url("/identity/questions")))
    assert again.status_code == 200 and "Question 1 of 3" in again.text
    assert _checked(idp) == 2


@pytest.mark.parametrize("origin", ["same-site-no-token", "another-site"])
def test_the_identity_pages_refuse_a_forged_post(checking_idp, citizen_browser, origin):
    """No check starts, and no details reach a service, from a form without the page's CSRF
    token or posted from another site."""
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    assert "Enter your passport details" in page.text
    headers = {"Origin": "https://attacker.example"} if origin == "another-site" else {}
    data = {"document": "driving_licence"}
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    if origin == "another-site":
        data["csrf_token"] = html.unescape(token)
    forged = browser.http.post(idp.url("/identity/start"), data=data, headers=headers)
    assert forged.status_code in (400, 403)
    fields = {**passport_fields(KENNETH)} | (
        {"csrf_token": html.unescape(token)} if origin == "another-site" else {}
    )
    guessed = browser.http.post(idp.url("/identity/passport"), data=fields, headers=headers)
    assert guessed.status_code in (400, 403)
    assert checks_of(idp, browser.citizen["id"]) == [(None, None)]
    assert _checked(idp) == 0


@pytest.mark.parametrize(
    ("part", "value"),
    [("birth_day", "9" * 20), ("birth_month", "9" * 20), ("expiry_year", "9" * 4 + "0" * 20)],
)
def test_a_date_part_too_big_for_a_date_is_explained_not_a_server_error(
    checking_idp, citizen_browser, part, value
):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    answer = browser.submit(page, {**passport_fields(KENNETH), part: value})
    assert answer.status_code == 400, answer.text[:300]
    assert "must be a real date" in answer.text or "Year must include 4 numbers" in answer.text
    assert _checked(idp) == 0


def test_housekeeping_deletes_ended_checks_once_the_daily_limit_no_longer_needs_them(
    checking_idp, citizen_browser, clock
):
    """A check keeps the credentials the services issued (the details typed, someone else's
    passport number included when guessed): not kept for ever once it has ended."""
    from idp.operations.housekeeping import purge_expired

    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    browser.submit(page, passport_fields(PAUL))
    clock.advance(3600)
    _sign_in_again(browser, idp)
    browser.follow(start(browser, idp.issuer, "passport"))  # in progress, started later
    with idp.app.app_context():
        assert purge_expired()["identity_checks"] == 0  # the failure still counts today
    clock.advance(24 * 3600 - 1800)
    with idp.app.app_context():
        assert purge_expired()["identity_checks"] == 1
    assert checks_of(idp, browser.citizen["id"]) == [(None, None)]
    clock.advance(3600)  # the one in progress has expired and is a day old
    with idp.app.app_context():
        assert purge_expired()["identity_checks"] == 1
    assert checks_of(idp, browser.citizen["id"]) == []


def test_no_new_check_starts_while_a_step_is_with_its_service(
    checking_idp, citizen_browser, hostile_passport_office
):
    """A new check started while a guess is with the service would let guesses overlap,
    each in its own check, before any of them counted as failed: it waits."""
    import time

    idp, browser, fake = checking_idp, citizen_browser, hostile_passport_office
    fake.forge = _not_valid
    fake.delay = 1.0
    page = browser.follow(start(browser, idp.issuer, "passport"))
    guess = threading.Thread(target=lambda: browser.submit(page, passport_fields(KENNETH)))
    guess.start()
    time.sleep(0.4)
    choose = browser.follow(browser.get(idp.url("/identity/start")))
    second = browser.submit(choose, {"document": "passport"})
    guess.join()
    assert second.status_code == 503 and UNAVAILABLE in second.text
    assert checks_of(idp, browser.citizen["id"]) == [("failed", "D")]
    # Once the guess has come back (and counted), a new check may start.
    again = browser.follow(start(browser, idp.issuer, "passport"))
    assert "Enter your passport details" in again.text

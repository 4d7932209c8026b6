"""The identity check attacked: what a citizen (or someone with a citizen's account) tries to
get round the limits, and what a hostile evidence service answers."""

from __future__ import annotations

import pytest

from tests.accounts.test_identity_journey import (
    PAUL,
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

"""The account page's "Your identity" section and the verified details each service received,
in a real browser: it passes the axe-core checks and fits a 320-pixel phone, before and after
the citizen stops sharing with a service (see test_citizen_pages.py for the checks)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from idp.accounts.identity.vocabulary import ADDRESS, CORE_IDENTITY_JWT
from tests.accounts.test_identity_on_account_page import agreed, disclosed, prove
from tests.e2e.conftest import enter_email_and_password, enter_second_factor
from tests.e2e.test_citizen_pages import (  # noqa: F401 - fixtures
    DEPARTMENT,
    check_page,
    chromium,
    department_callbacks,
    page,
)

pytestmark = pytest.mark.browser


def test_your_identity_and_the_details_shared(idp, make_citizen, make_client, page):  # noqa: F811
    citizen = make_citizen()
    client = make_client("dwp", client_name="Check your benefits")
    department_callbacks(page)
    page.goto(client.authorization().url)
    enter_email_and_password(page, citizen["email"], citizen["password"])
    enter_second_factor(page, citizen)
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page).to_have_title("Department")
    prove(idp.app, citizen)
    agreed(idp.app, citizen, "dwp", CORE_IDENTITY_JWT, ADDRESS)
    disclosed(idp.app, citizen, "dwp", CORE_IDENTITY_JWT, ADDRESS, days_ago=2)

    page.goto(idp.url("/"))

    expect(page.locator("#identity")).to_contain_text("Proved, with medium confidence")
    expect(page.locator("#details-received")).to_contain_text("Your address, as checked")
    check_page(page, "account-identity")

    page.get_by_role("button", name="Stop sharing with Check your benefits").click()

    expect(page.locator("#stopped-sharing")).to_contain_text("Your address, as checked")
    expect(page.locator("#details-received")).to_contain_text("No longer shared")
    check_page(page, "account-stopped-sharing")


def test_a_citizen_without_an_identity_is_offered_the_check(idp, make_citizen, page):  # noqa: F811
    citizen = make_citizen()
    page.goto(idp.url("/sign-in"))
    enter_email_and_password(page, citizen["email"], citizen["password"])
    enter_second_factor(page, citizen)

    expect(page.locator("#identity")).to_have_text("You have not proved your identity.")
    page.get_by_role("link", name="Prove your identity").click()
    expect(page).to_have_url(idp.url("/identity/start"))
    assert DEPARTMENT not in page.url

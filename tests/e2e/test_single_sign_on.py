"""The promise of the product, in a real browser: sign in once, be recognised everywhere."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import enter_email_and_password, enter_second_factor

pytestmark = pytest.mark.browser


def test_sign_in_at_one_department_and_arrive_signed_in_at_the_next(
    idp, make_citizen, departments, browser_page
):
    citizen = make_citizen("journey@example.com", given_name="Sam", family_name="Citizen")
    tax, driving = departments
    page = browser_page

    # Department A: sign in with email and password, agree to share.
    page.goto(tax.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#requesting-service")).to_contain_text("HMRC: Your tax account")
    enter_email_and_password(page, citizen["email"], citizen["password"])
    enter_second_factor(page, citizen)
    expect(page.get_by_role("heading", level=1)).to_contain_text("HMRC: Your tax account")
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page).to_have_url(f"{tax.url}/account")
    expect(page.locator("body")).to_contain_text(citizen["email"])
    tax_sub = page.locator("body").inner_text()

    # Department B: no password prompt at all.
    page.goto(driving.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("DVLA: View your driving licence")
    assert page.locator("input[type=password]").count() == 0
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page).to_have_url(f"{driving.url}/account")
    expect(page.locator("body")).to_contain_text(citizen["email"])
    expect(page.locator("body")).to_contain_text("Sam Citizen")
    assert citizen["subject"] in tax_sub
    expect(page.locator("body")).to_contain_text(citizen["subject"])

    # Signing in to department B again: straight through the IdP, no page shown there.
    page.goto(f"{driving.url}/sign-in")
    expect(page).to_have_url(f"{driving.url}/account")


def test_signing_out_at_a_department_signs_out_of_the_idp(
    idp, make_citizen, departments, browser_page
):
    citizen = make_citizen("leaving@example.com")
    tax, driving = departments
    page = browser_page
    sign_in_at(page, tax, citizen)

    # The department's Sign out is RP-initiated logout: the IdP session ends too.
    page.get_by_role("button", name="Sign out").click()
    # The IdP's page says so and names the service, then offers the way back to it (its
    # registered post_logout_redirect_uri).
    expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
    expect(page.locator("#signed-out-services")).to_contain_text("HMRC: Your tax account")
    page.get_by_role("button", name="Continue to HMRC: Your tax account").click()
    expect(page).to_have_url(f"{tax.url}/")
    page.goto(driving.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Email address")).to_be_visible()


def test_signing_out_at_one_department_signs_the_citizen_out_of_the_other(
    idp, make_citizen, departments, browser_page
):
    citizen = make_citizen("everywhere@example.com")
    tax, driving = departments
    page = browser_page
    sign_in_at(page, tax, citizen)
    page.goto(driving.url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page).to_have_url(f"{driving.url}/account")

    # Sign out at the driving service: past the IdP's signed-out page, it returns to its
    # start page, signed out.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name=re.compile("^Continue to")).click()
    expect(page).to_have_url(f"{driving.url}/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()

    # The IdP told the tax service in the background; its next page load shows it.
    with idp.app.app_context():
        wait_for_delivery(idp, "tax")
    page.goto(f"{tax.url}/account")
    expect(page).to_have_url(f"{tax.url}/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(citizen["email"])


def wait_for_delivery(idp, client_id: str, timeout: float = 15.0) -> None:
    """Wait until the IdP's worker has delivered the department's logout token."""
    import time

    from idp.extensions import db
    from idp.models import LogoutDelivery

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = db.session.scalar(db.select(LogoutDelivery.status).filter_by(client_id=client_id))
        db.session.rollback()
        if status == "delivered":
            return
        time.sleep(0.1)
    raise AssertionError(f"the logout token for {client_id} was not delivered (status {status})")


def sign_in_at(page, department, citizen: dict) -> None:
    """Sign in at a department from its start page: password, second factor, consent."""
    page.goto(department.url)
    page.get_by_role("button", name="Sign in").click()
    enter_email_and_password(page, citizen["email"], citizen["password"])
    enter_second_factor(page, citizen)
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page).to_have_url(f"{department.url}/account")

"""A department joins, in a real browser: its administrator registers a service, a platform
administrator approves it, and citizens then see who is asking and what it will receive."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.departments import STAFF_APPS, STAFF_PASSWORD, make_staff
from tests.support.oidc_client import DepartmentClient

pytestmark = pytest.mark.browser

PASSPORTS = "HM Passport Office"
REDIRECT_URI = "https://passport.example.gov.uk/auth/callback"


def sign_in_as_staff(page, issuer: str, email: str) -> None:
    """Staff sign in at /staff/sign-in: the password, then the code from their app."""
    page.goto(f"{issuer}/staff/sign-in")
    page.get_by_label("Email address", exact=True).fill(email)
    page.get_by_role("textbox", name="Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Enter the code from your authenticator app"
    )
    page.get_by_label("Code from your authenticator app").fill(STAFF_APPS[email].next_code())
    page.get_by_role("button", name="Continue").click()


def test_a_registered_and_approved_service_is_named_to_citizens_with_its_department(
    idp, browser_page
):
    department_admin = make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    platform_admin = make_staff(idp.app, "platform@sign-in.example.gov.uk")
    page = browser_page

    # The department's administrator registers the service.
    sign_in_as_staff(page, idp.issuer, department_admin)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{PASSPORTS}: your services")
    page.get_by_role("link", name="Register a service").first.click()
    # One question a page, then the answers to check.
    page.get_by_label("Service name", exact=True).fill("Renew your passport")
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Where should citizens return to after signing in?").fill(REDIRECT_URI)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Their email address").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("No, it does not").check()  # no verified identity
    page.get_by_role("button", name="Continue").click()
    # The key fields show only for a public key.
    key_field = page.get_by_label("Paste your public key")
    expect(key_field).to_be_hidden()
    page.get_by_label("Your public key (more secure)").check()
    expect(key_field).to_be_visible()
    page.get_by_label("A secret we give you").check()
    expect(key_field).to_be_hidden()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Continue").click()  # no sign-out addresses
    page.get_by_role("button", name="Continue").click()  # no logo
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Check your answers before registering the service"
    )
    expect(page.locator(".govuk-summary-list")).to_contain_text("Their email address")
    page.get_by_role("button", name="Register this service").click()
    client_id = page.locator("#client-id").inner_text()
    assert len(client_id) >= 20
    expect(page.locator("#client-secret")).to_have_text(re.compile(r"^[A-Za-z0-9_-]{40,}$"))
    expect(page.locator("[data-status]")).to_have_text("Waiting for approval")

    # A platform administrator, in another browser, approves it.
    admin_context = page.context.browser.new_context()
    citizen_context = page.context.browser.new_context()
    try:
        admin_page = admin_context.new_page()
        sign_in_as_staff(admin_page, idp.issuer, platform_admin)
        expect(admin_page.get_by_role("heading", level=1)).to_have_text("Every service")
        admin_page.get_by_role("link", name="waiting for approval", exact=True).click()
        admin_page.get_by_role("link", name="Renew your passport").click()
        expect(admin_page.locator("#client-id")).to_have_text(client_id)
        admin_page.get_by_role("button", name="Approve this service").click()
        # A page to confirm on, then a success banner.
        expect(admin_page.get_by_role("heading", level=1)).to_have_text(
            "Are you sure you want to approve this service?"
        )
        admin_page.get_by_role("button", name="Yes, approve this service").click()
        expect(admin_page.locator(".govuk-notification-banner--success")).to_contain_text(
            "The service is approved"
        )
        expect(admin_page.locator("[data-status]")).to_have_text("Active")

        # A citizen following the service's sign-in link sees who is asking and for what.
        department = DepartmentClient(
            issuer=idp.issuer, client_id=client_id, redirect_uri=REDIRECT_URI
        )
        citizen_page = citizen_context.new_page()
        citizen_page.goto(department.authorization(scope="openid email").url)
        expect(citizen_page.get_by_role("heading", level=1)).to_have_text("Sign in")
        service = citizen_page.locator("#requesting-service")
        expect(service.locator(".service-name")).to_have_text("Renew your passport")
        expect(service.locator(".department-name")).to_have_text(f"Run by {PASSPORTS}")
        expect(service.locator(".claims li")).to_have_text(
            [
                "a reference number for you, so it knows you next time"
                " (other departments get a different one)",
                "your email address",
                "whether your email address is confirmed",
            ]
        )
    finally:
        admin_context.close()
        citizen_context.close()

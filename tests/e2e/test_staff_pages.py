"""The staff pages in a real browser: the staff sign-in page, a department's page, a service's
page and the auditor's entries each pass the axe-core accessibility checks (WCAG 2.2 A and AA
rules) with no violation, with GOV.UK Frontend's JavaScript running and nothing refused by the
Content-Security-Policy; each is photographed at desktop width into docs/screenshots/.

Staff pages are desktop tools: their tables may scroll sideways on a phone, so unlike the
citizen's pages (test_citizen_pages.py) the 320-pixel check is not made here."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.audit.test_auditor_pages import make_auditor, record
from tests.departments import PASSPORTS, STAFF_APPS, STAFF_PASSWORD, make_service, make_staff
from tests.e2e.test_citizen_pages import (  # noqa: F401 - fixtures
    AXE,
    AXE_RULES,
    SCREENSHOTS,
    chromium,
    page,
)

pytestmark = pytest.mark.browser


# GOV.UK Frontend's radios with a conditional reveal put aria-expanded on the radio that
# reveals, which ARIA 1.2 does not allow on a radio; the Design System keeps it on purpose, as
# screen readers announce it (a known issue: alphagov/govuk-frontend#979). Only that is let by.
CONDITIONAL_REVEAL = ("aria-allowed-attr", "#method-2")


def check_staff_page(tab, name: str, known: tuple[str, str] | None = None) -> None:
    """axe-core finds nothing (but the known issue given); GOV.UK Frontend's JavaScript ran;
    the Content-Security-Policy refused nothing; a screenshot at desktop width."""
    tab.wait_for_load_state("load")
    assert "govuk-frontend-supported" in tab.locator("body").get_attribute("class")
    tab.evaluate(AXE)
    result = tab.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'tag', values: rules}})", AXE_RULES
    )
    violations = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if not known or (v["id"], [n["target"] for n in v["nodes"]]) != (known[0], [[known[1]]])
    ]
    assert violations == [], f"{name}: {violations}"
    refused = [p for p in tab.console_problems if "Content Security Policy" in p]
    assert refused == [], refused
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)


def sign_in_as_staff(tab, url: str, email: str) -> None:
    """Sign in at the staff sign-in page: the password, then the code from the app."""
    tab.goto(url)
    expect(tab.get_by_role("heading", level=1)).to_have_text("Staff sign in")
    tab.get_by_label("Email address", exact=True).fill(email)
    tab.get_by_role("textbox", name="Password").fill(STAFF_PASSWORD)
    tab.get_by_role("button", name="Sign in", exact=True).click()
    tab.get_by_label("Code from your authenticator app").fill(STAFF_APPS[email].next_code())
    tab.get_by_role("button", name="Continue").click()


def test_the_staff_sign_in_page(idp, page):  # noqa: F811
    page.goto(idp.url("/staff/sign-in"))
    check_staff_page(page, "staff-sign-in")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_title("Error: Staff sign in – Government sign in")
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    check_staff_page(page, "staff-sign-in-error")


def test_a_department_page_and_a_service_page(idp, page):  # noqa: F811
    email = make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    client_id, _ = make_service(idp.app, PASSPORTS, "Renew your passport", approved=True)
    make_service(idp.app, PASSPORTS, "Track your passport application")

    sign_in_as_staff(page, idp.url("/staff/sign-in"), email)

    expect(page.get_by_role("heading", level=1)).to_have_text(f"{PASSPORTS}: your services")
    expect(page.locator("tbody tr")).to_have_count(2)
    check_staff_page(page, "staff-department")
    page.get_by_role("link", name="Renew your passport").click()
    expect(page.locator("#client-id")).to_have_text(client_id)
    check_staff_page(page, "staff-service")
    # A wrong setting: the error summary and the message beside the field pass too.
    page.get_by_label("Redirect URIs").fill("")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Enter at least one redirect URI")
    check_staff_page(page, "staff-service-error")


def test_the_register_a_service_questions_and_check_answers(idp, page):  # noqa: F811
    email = make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    sign_in_as_staff(page, idp.url("/staff/sign-in"), email)
    page.goto(idp.url("/departments/services/new"))

    # Each question page, first with its error, then answered.
    answers = [
        ("staff-register-name", "Enter the service name", "Service name", "Renew your passport"),
        (
            "staff-register-return-addresses",
            "Enter at least one address",
            "Where should citizens return to after signing in?",
            "https://passport.example.gov.uk/callback",
        ),
    ]
    for name, error, label, value in answers:
        check_staff_page(page, name)
        page.get_by_role("button", name="Continue").click()
        expect(page.locator(".govuk-error-summary")).to_contain_text(error)
        check_staff_page(page, f"{name}-error")
        page.get_by_label(label, exact=True).fill(value)
        page.get_by_role("button", name="Continue").click()
    check_staff_page(page, "staff-register-information")
    page.get_by_label("Their email address").check()
    page.get_by_role("button", name="Continue").click()
    check_staff_page(page, "staff-register-identity")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text(
        "Select the verified details your service needs"
    )
    check_staff_page(page, "staff-register-identity-error")
    name_and_birth = page.get_by_label("Their name and date of birth, as checked (coreIdentityJWT)")
    name_and_birth.check()
    # "No, it does not" clears the details chosen (GOV.UK Frontend's exclusive checkbox).
    page.get_by_label("No, it does not").check()
    expect(name_and_birth).not_to_be_checked()
    page.get_by_role("button", name="Continue").click()
    check_staff_page(page, "staff-register-proof", known=CONDITIONAL_REVEAL)
    page.get_by_label("Your public key (more secure)").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text("Paste your public key")
    check_staff_page(page, "staff-register-proof-error", known=CONDITIONAL_REVEAL)
    page.get_by_label("A secret we give you").check()
    page.get_by_role("button", name="Continue").click()
    check_staff_page(page, "staff-register-sign-out-addresses")
    page.get_by_role("button", name="Continue").click()
    check_staff_page(page, "staff-register-logo")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Check your answers before registering the service"
    )
    check_staff_page(page, "staff-register-check-answers")


def test_the_auditors_entries_page(idp, page):  # noqa: F811
    email = make_auditor(idp.app, "auditor@audit.example.gov.uk")
    client_id, _ = make_service(idp.app, PASSPORTS, "Renew your passport", approved=True)
    record(idp, "sign_in.failed", outcome="failure", reason="wrong password", citizen_id=1)
    record(idp, "authorization_code.issued", client_id=client_id, citizen_id=1)

    sign_in_as_staff(page, idp.url("/staff/sign-in"), email)

    expect(page.get_by_role("heading", level=1)).to_have_text("Audit record")
    expect(page.locator("table.audit-entries")).to_contain_text("Renew your passport")
    page.get_by_text("Filter the entries").click()
    check_staff_page(page, "staff-audit-entries")
    page.get_by_role("group", name="From").get_by_label("Day").fill("31")
    page.get_by_role("group", name="From").get_by_label("Month").fill("2")
    page.get_by_role("group", name="From").get_by_label("Year").fill("2025")
    page.get_by_role("button", name="Show entries").click()
    expect(page.locator(".govuk-error-summary")).to_contain_text(
        "The from date must be a real date"
    )
    check_staff_page(page, "staff-audit-entries-error")

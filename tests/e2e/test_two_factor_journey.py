"""A second factor, in a real browser: sign up with an authenticator app, then step up.

A department that accepts a password alone asks for vtr ["Cl"]; the others need "Cl.Cm" (a
password and a code from the app). A citizen signed in with a password alone is asked only
for the code when they go on to a department that needs more.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pyotp
import pytest
from playwright.sync_api import expect

from idp.departments.services import register_client
from relying_parties import council
from relying_parties.common import DepartmentSettings
from tests.conftest import free_port
from tests.e2e.conftest import Department, _serve, enter_email_and_password
from tests.support.mail import code_in, wait_for_mail

pytestmark = pytest.mark.browser

WRONG_CODE_MESSAGE = "Enter the 6-digit code your authenticator app shows now"


@pytest.fixture
def council_service(idp) -> Iterator[Department]:
    """A council tax service that accepts a password alone: it asks for vtr ["Cl"]."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret = "council-service-secret-" + "x" * 32
    with idp.app.app_context():
        register_client(
            "council",
            {
                "client_name": "Northfield Borough Council: Pay your council tax",
                "redirect_uris": [f"{url}/auth/callback"],
                "token_endpoint_auth_method": "client_secret_post",
                "scope": "openid email",
                "subject_type": "public",
            },
            secret,
        )
    server = _serve(
        council.create_app(
            DepartmentSettings(
                name="Pay your council tax",
                department="Northfield Borough Council",
                client_id="council",
                base_url=url,
                issuer=idp.issuer,
                token_endpoint_auth_method="client_secret_post",
                client_secret=secret,
                scope="openid email",
                authorize_params={"vtr": '["Cl"]'},
            )
        ),
        port,
    )
    yield Department("council", url)
    server.close()


def next_step_code(secret: str) -> str:
    """The app's code for the next 30-second step: never the one just typed (each works once)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def wrong_code(secret: str) -> str:
    """Six digits that are none of the codes the IdP would accept around now."""
    totp = pyotp.TOTP(secret)
    valid = {totp.at(time.time() + 30 * shift) for shift in range(-2, 3)}
    return next(c for c in ("123456", "654321", "111111") if c not in valid)


def summary_value(page, term: str):
    """What the department's account page shows beside a term such as "Level of confidence"."""
    return page.locator("dt", has_text=term).locator("xpath=following-sibling::dd[1]")


def expect_signed_in_at(page, department: Department, email: str, vot: str, amr: str) -> None:
    """The department's account page, for this citizen, at this level, by these methods."""
    expect(page).to_have_url(f"{department.url}/account")
    expect(page.locator("p.lead")).to_have_text(f"You are signed in as {email}.")
    expect(summary_value(page, "Level of confidence")).to_have_text(vot)
    expect(summary_value(page, "Methods")).to_have_text(amr)


def sign_in_with_password_only(page, department: Department, email: str, password: str) -> None:
    """At a department that accepts a password alone: email, password, consent; no code."""
    page.goto(department.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.locator("#requesting-service")).to_contain_text("Pay your council tax")
    enter_email_and_password(page, email, password)
    # Straight to consent: no second step for a department that asked for "Cl".
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Northfield Borough Council: Pay your council tax wants to know who you are"
    )
    page.get_by_role("button", name="Allow", exact=True).click()
    expect_signed_in_at(page, department, email, vot="Cl", amr="pwd")


def start_step_up(page, department: Department) -> None:
    """Go to a department that needs "Cl.Cm": the IdP asks for the app's code and nothing else."""
    page.goto(department.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Enter the code from your authenticator app"
    )
    expect(page.locator("#code-hint")).to_contain_text(
        "HMRC: Your tax account asks for a second step to keep your account safe."
    )
    expect(page.locator("input[type=password]")).to_have_count(0)
    expect(page.get_by_label("Email address")).to_have_count(0)


def test_sign_up_with_an_authenticator_app_then_step_up_from_a_password_only_sign_in(
    idp, departments, council_service, browser_page
):
    tax, _ = departments
    page = browser_page
    email = "new.citizen@example.com"
    password = "correct horse battery staple"

    # From the department, to the IdP's sign-in page, to "Create your account".
    page.goto(tax.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.get_by_role("link", name="Create your account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Create your account")
    expect(page.locator(".govuk-body-l")).to_contain_text("HMRC: Your tax account")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Continue").click()

    # The code from the email proves the address.
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    expect(page.locator("main")).to_contain_text(f"We have sent a code to {email}.")
    page.get_by_label("Enter the code", exact=True).fill(code_in(wait_for_mail(idp, email)))
    page.get_by_role("button", name="Continue").click()

    expect(page.locator("main")).to_contain_text(f"Your email address {email} is confirmed.")
    page.get_by_label("First name (optional)").fill("Alex")
    page.get_by_label("Last name (optional)").fill("Newcomer")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("textbox", name="Confirm your password").fill(password)
    page.get_by_role("button", name="Create your account").click()

    # Scan the QR code, or type the key, and type the code the app shows.
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    expect(page.locator(".idp-qr-code svg")).to_be_visible()
    key = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", key), key
    secret = key.replace(" ", "")
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Your authenticator app is set up")
    recovery_codes = page.locator("#recovery-codes li")
    expect(recovery_codes).to_have_count(10)
    assert len(set(recovery_codes.all_inner_texts())) == 10
    page.get_by_role("link", name="I have saved my codes: continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "HMRC: Your tax account wants to know who you are"
    )
    page.get_by_role("button", name="Allow", exact=True).click()
    expect_signed_in_at(page, tax, email, vot="Cl.Cm", amr="pwd, otp")
    expect(summary_value(page, "Name")).to_have_text("Alex Newcomer")

    # Another day, a fresh browser: a password alone is enough for the council.
    page.context.clear_cookies()
    sign_in_with_password_only(page, council_service, email, password)

    # The tax account needs more: only the app's code is asked for, then straight back.
    start_step_up(page, tax)
    page.locator("#code").fill(next_step_code(secret))
    page.get_by_role("button", name="Continue").click()
    expect_signed_in_at(page, tax, email, vot="Cl.Cm", amr="pwd, otp")


def test_a_wrong_code_at_the_step_up_is_explained_and_the_right_one_then_works(
    make_citizen, departments, council_service, browser_page
):
    citizen = make_citizen("stepping.up@example.com")
    tax, _ = departments
    page = browser_page
    sign_in_with_password_only(page, council_service, citizen["email"], citizen["password"])

    start_step_up(page, tax)
    page.locator("#code").fill(wrong_code(citizen["totp_secret"]))
    page.get_by_role("button", name="Continue").click()

    summary = page.get_by_role("alert")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("There is a problem")
    expect(summary).to_contain_text(WRONG_CODE_MESSAGE)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Enter the code from your authenticator app"
    )
    expect(page.locator("input[type=password]")).to_have_count(0)

    page.locator("#code").fill(next_step_code(citizen["totp_secret"]))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "HMRC: Your tax account wants to know who you are"
    )
    page.get_by_role("button", name="Allow", exact=True).click()
    expect_signed_in_at(page, tax, citizen["email"], vot="Cl.Cm", amr="pwd, otp")

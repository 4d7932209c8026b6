"""The citizen's pages in a real browser: each one passes the axe-core accessibility checks
(WCAG 2.2 A and AA rules) with no violation, fits a 320-pixel-wide phone without scrolling
sideways, and is photographed at desktop and phone widths into docs/screenshots/. Signing in
works with the keyboard alone: a visible focus on every step, and after a wrong password the
error summary has the focus, as GOV.UK Frontend's JavaScript puts it there.

One Chromium for the module; axe-core (tests/e2e/axe/, pinned in frontend/package.json) is
evaluated in each page through the DevTools protocol, so the page's own Content-Security-Policy
stays as it is (it allows no injected script)."""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import phonenumbers
import pyotp
import pytest
from playwright.sync_api import expect

from tests.conftest import SERVICES_REQUIRED
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, enter_email_and_password
from tests.support.browser import SECOND_FACTORS
from tests.support.mail import code_in, wait_for_mail, wait_for_text

pytestmark = pytest.mark.browser

AXE = (Path(__file__).parent / "axe" / "axe.min.js").read_text()
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1024, "height": 768}
PHONE = {"width": 320, "height": 640}
# GOV.UK Frontend's focus colour: the yellow of every focused link, input and button.
FOCUS_YELLOW = "rgb(255, 221, 0)"


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One headless Chromium for every test here (Debian's package, driven by Playwright)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        reason = f"Chromium is not installed at {CHROMIUM} (make test installs it with apt-get)"
        if SERVICES_REQUIRED:
            pytest.fail(f"IDP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser context (no cookies) and page, at desktop width."""
    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(15000)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.console_problems = problems
    yield page
    context.close()


def check_page(page, name: str) -> None:
    """axe-core finds nothing; no sideways scrolling at 320 px; screenshots at both widths;
    GOV.UK Frontend's JavaScript ran, and nothing was refused by the Content-Security-Policy."""
    page.wait_for_load_state("load")
    assert "govuk-frontend-supported" in page.locator("body").get_attribute("class")
    page.evaluate(AXE)
    result = page.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'tag', values: rules}})", AXE_RULES
    )
    violations = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
    ]
    assert violations == [], f"{name}: {violations}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} scrolls sideways at 320 px ({width} px wide)"
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    refused = [p for p in page.console_problems if "Content Security Policy" in p]
    assert refused == [], refused


def test_sign_in_pages_for_a_service(idp, make_citizen, make_client, page):
    citizen = make_citizen()
    client = make_client(client_name="HMRC: Your tax account")
    page.goto(client.authorization().url)

    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    check_page(page, "sign-in")
    page.get_by_label("Email address").fill(citizen["email"])
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your password")
    check_page(page, "sign-in-password")
    page.get_by_role("textbox", name="Enter your password").fill("not the password")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_title("Error: Enter your password – Government sign in")
    check_page(page, "sign-in-password-error")
    page.get_by_role("textbox", name="Enter your password").fill(citizen["password"])
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Enter the code")
    check_page(page, "second-factor")
    page.locator("#code").fill("000000")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#code-error")).to_contain_text("Error:")
    check_page(page, "second-factor-error")
    page.locator("#code").fill(SECOND_FACTORS[citizen["email"]].next_code())
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("wants to know who you are")
    # Plain English: no host names, no protocol words.
    expect(page.locator("#requesting-service")).not_to_contain_text("localhost")
    check_page(page, "consent")


def test_sign_up_pages(idp, page):
    email = "new.citizen@example.com"
    page.goto(idp.url("/sign-up"))
    check_page(page, "sign-up")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    code = page.get_by_label("Enter the code")
    assert code.get_attribute("inputmode") == "numeric"
    assert code.get_attribute("autocomplete") == "one-time-code"
    check_page(page, "check-email")
    code.fill(code_in(wait_for_mail(idp, email)))
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("What is your name?")
    check_page(page, "sign-up-name")
    page.get_by_label("First name (optional)").fill("Alex")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Create a password")
    page.get_by_role("button", name="Create your account").click()
    check_page(page, "sign-up-password-error")
    page.get_by_role("textbox", name="Password", exact=True).fill("a passphrase of my own")
    page.get_by_role("textbox", name="Confirm your password").fill("a passphrase of my own")
    page.get_by_role("button", name="Create your account").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    check_page(page, "two-factor-setup")
    secret = page.locator("#totp-secret").inner_text().replace(" ", "")
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    check_page(page, "recovery-codes")


@pytest.mark.parametrize("path", ["/accessibility", "/privacy", "/cookies", "/no-such-page"])
def test_information_pages(idp, page, path):
    page.goto(idp.url(path))
    check_page(page, path.strip("/"))


def focused(page) -> dict:
    """The element that has the keyboard focus, and whether its focus can be seen."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            return {
                tag: el.tagName.toLowerCase(), id: el.id, text: el.innerText || "",
                classes: el.className || "", outline: style.outlineStyle,
                background: style.backgroundColor, shadow: style.boxShadow,
            };
        }"""
    )


def tab_to(page, element_id: str, limit: int = 25) -> list[dict]:
    """Press Tab until the element has the focus; each element passed on the way."""
    passed = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = focused(page)
        passed.append(now)
        assert now["outline"] != "none" or FOCUS_YELLOW in (now["background"] + now["shadow"]), (
            f"no visible focus on {now}"
        )
        if now["id"] == element_id:
            return passed
    raise AssertionError(
        f"#{element_id} never got the focus: {[p['id'] or p['text'] for p in passed]}"
    )


def test_signing_in_with_the_keyboard_alone(idp, make_citizen, page):
    citizen = make_citizen()
    page.goto(idp.url("/sign-in"))

    # The skip link comes first, then the header, then the question.
    passed = tab_to(page, "email")
    assert "Skip to main content" in passed[0]["text"]
    page.keyboard.type(citizen["email"])
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your password")
    tab_to(page, "password")
    page.keyboard.type("not the password")
    page.keyboard.press("Enter")

    # The error summary has the focus; its link takes the keyboard to the field.
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Enter the correct password for this email address"
    page.keyboard.press("Enter")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(citizen["password"])
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Enter the code")
    tab_to(page, "code")
    page.keyboard.type(SECOND_FACTORS[citizen["email"]].next_code())
    page.keyboard.press("Enter")
    expect(page).to_have_url(idp.url("/"))


# -- The account pages, signing out, and codes by text message ---------------------------------

DEPARTMENT = "https://dept-a.example.gov.uk"


def unique_mobile() -> tuple[str, str]:
    """A UK mobile number as typed and in E.164, different in each test so the throttles on
    sending never meet."""
    while True:
        typed = f"07911 {random.randrange(10**6):06d}"  # noqa: S311 (test data)
        parsed = phonenumbers.parse(typed, "GB")
        if phonenumbers.is_valid_number(parsed):
            return typed, phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def give_phone(idp, citizen: dict) -> str:
    """A confirmed mobile number for the citizen, as the setup pages leave it; its E.164."""
    from idp.extensions import db
    from idp.models import PhoneNumber

    _, number = unique_mobile()
    with idp.app.app_context():
        db.session.add(PhoneNumber(citizen_id=citizen["id"], number=number))
        db.session.commit()
    return number


def department_callbacks(page) -> list[str]:
    """The addresses the browser is sent back to at the department (answered here, as the
    department is not running): the code, and the way back after signing out."""
    seen: list[str] = []

    def answer(route):
        seen.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>Department</title>")

    page.route(f"{DEPARTMENT}/**", answer)
    return seen


def test_account_pages_and_signing_out(idp, make_citizen, make_client, page):
    citizen = make_citizen()
    number = give_phone(idp, citizen)
    client = make_client(
        client_name="Renew your passport", post_logout_redirect_uris=[f"{DEPARTMENT}/signed-out"]
    )
    callbacks = department_callbacks(page)
    attempt = client.authorization()
    page.goto(attempt.url)
    enter_email_and_password(page, citizen["email"], citizen["password"])

    # The code by text message at sign-in, with the other ways and "Not you? Sign out".
    page.locator("#use-text-message").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your phone")
    expect(page.locator("#phone-ending")).to_contain_text(number[-4:])
    check_page(page, "check-phone-sign-in")
    page.get_by_label("Enter the code").fill(code_in(wait_for_text(idp, number)))
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page).to_have_title("Department")
    code = parse_qs(urlsplit(callbacks[-1]).query)["code"][0]
    tokens = client.token_request(code, attempt.code_verifier).json()

    # Devices named as people know them, UK times, the ways to sign in at a glance.
    page.goto(idp.url("/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(page.locator("#connected-services")).to_contain_text("Renew your passport")
    expect(page.locator("#sessions")).to_contain_text("this browser")
    expect(page.locator("#history")).to_contain_text("password and text message")
    expect(page.locator("#security")).to_contain_text(f"ending {number[-4:]}")
    check_page(page, "account")

    page.get_by_role("link", name="Manage codes by text message").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Codes by text message")
    check_page(page, "manage-text-message")
    page.get_by_role("button", name="Send a code").click()
    expect(page).to_have_title("Error: Codes by text message – Government sign in")
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    check_page(page, "manage-text-message-error")
    page.get_by_role("link", name="Remove your phone number").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove your phone number")
    check_page(page, "remove-text-message")

    page.goto(idp.url("/"))
    page.locator("#report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Report something you do not recognise"
    )
    check_page(page, "report")

    # The department's "Sign out": the IdP's page names it, and offers the way back.
    logout = {
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": f"{DEPARTMENT}/signed-out",
    }
    page.goto(idp.url("/logout?" + urlencode(logout)))
    expect(page.get_by_role("heading", level=1)).to_have_text("You have signed out")
    expect(page.locator("#signed-out-services")).to_contain_text("Renew your passport")
    check_page(page, "signed-out")
    page.get_by_role("button", name="Continue to Renew your passport").click()
    expect(page).to_have_title("Department")
    assert callbacks[-1].startswith(f"{DEPARTMENT}/signed-out")


def test_setting_up_codes_by_text_message_then_reporting(idp, make_citizen, page):
    citizen = make_citizen(f"texts.{random.randrange(10**9)}@example.com", second_factor=False)  # noqa: S311
    page.goto(idp.url("/sign-in"))
    enter_email_and_password(page, citizen["email"], citizen["password"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")

    page.locator("#choose-text-message").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Get codes by text message")
    check_page(page, "text-message-setup")
    page.get_by_role("button", name="Send a code").click()
    expect(page.locator("#phone_number-error")).to_contain_text("Enter a mobile phone number")
    check_page(page, "text-message-setup-error")
    typed, number = unique_mobile()
    page.get_by_role("textbox", name="UK mobile phone number").fill(typed)
    page.get_by_role("button", name="Send a code").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Check your phone")
    code = page.get_by_label("Enter the code")
    assert code.get_attribute("inputmode") == "numeric"
    assert code.get_attribute("autocomplete") == "one-time-code"
    check_page(page, "check-phone")
    right = code_in(wait_for_text(idp, number))
    code.fill(f"{(int(right) + 1) % 10**6:06d}")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#code-error")).to_contain_text("The code is not right")
    check_page(page, "check-phone-error")
    page.get_by_label("Enter the code").fill(right)
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#recovery-codes li")).to_have_count(10)

    page.goto(idp.url("/account/report"))
    page.get_by_role("button", name="Report it and sign out everywhere").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You have been signed out everywhere")
    check_page(page, "report-done")

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
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import expect

from tests.conftest import SERVICES_REQUIRED
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.browser import SECOND_FACTORS
from tests.support.mail import code_in, wait_for_mail

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

"""`make run`'s five sample departments, each registered a different way, in a real browser:
one sign-in, recognised by all five, with a pairwise identifier per sector; and their pages,
built from GOV.UK Frontend, pass the axe-core accessibility checks (as the IdP's do)."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from idp.accounts.identity.store import save_identity
from idp.development.demo import Running, start_sample_services
from idp.extensions import db
from idp.settings import PROJECT_ROOT
from tests.e2e.conftest import enter_email_and_password, enter_second_factor

pytestmark = pytest.mark.browser

KENNETH = {
    "name": [
        {
            "nameParts": [
                {"type": "GivenName", "value": "KENNETH"},
                {"type": "FamilyName", "value": "DECERQUEIRA"},
            ]
        }
    ],
    "birthDate": [{"value": "1965-07-08"}],
    "address": [
        {
            "buildingNumber": "8",
            "streetName": "HADLEY ROAD",
            "addressLocality": "BATH",
            "postalCode": "BA2 5AA",
            "addressCountry": "GB",
        }
    ],
}

DEPARTMENTS_FILE = PROJECT_ROOT / "config" / "departments.toml"
SERVICES = 5
# The simulated evidence services follow the front page on the next ports.
EVIDENCE_SERVICES = 4
AXE = (Path(__file__).parent / "axe" / "axe.min.js").read_text()
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _free_port_range(count: int) -> int:
    """The first of count consecutive free loopback ports (the samples use consecutive ports)."""
    for _ in range(50):
        base = random.randint(20000, 60000)
        try:
            sockets = []
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError("no range of free ports")


def _wait_listening(port: int, timeout: float = 20.0) -> None:
    """Wait until a service listens (the council registers itself first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


@pytest.fixture
def sample_services(idp, tmp_path):
    """The sample departments from config/departments.toml, served against the live IdP."""
    settings = idp.app.config["IDP_SETTINGS"].replace(
        departments_file=str(DEPARTMENTS_FILE),
        departments_base_port=_free_port_range(SERVICES + 1 + EVIDENCE_SERVICES),
        instance_path=str(tmp_path),
    )
    running = Running(servers=[])
    samples = start_sample_services(idp.app, settings, running)
    for port in range(
        settings.departments_base_port,
        settings.departments_base_port + SERVICES + 1 + EVIDENCE_SERVICES,
    ):
        _wait_listening(port)
    try:
        yield (
            {s.service: s for s in samples},
            f"http://localhost:{settings.departments_base_port + SERVICES}",
        )
    finally:
        for server in running.servers:
            server.close()
        # The samples handed the shared test IdP their evidence services: take them back.
        idp.app.config["IDP_SETTINGS"] = idp.app.config["IDP_SETTINGS"].replace(
            evidence_services={}
        )


def _sub(page) -> str:
    """The identifier the department's account page says it received."""
    return page.locator("dt:has-text('Your identifier here') + dd code").inner_text()


def test_one_sign_in_is_recognised_by_all_five_sample_services(
    idp, make_citizen, sample_services, browser_page
):
    citizen = make_citizen("five@example.com", given_name="Sam", family_name="Citizen")
    # Driving and benefits ask for a proved identity (P2): this citizen proved theirs earlier
    # (tests/e2e/test_identity_check.py walks the check itself).
    with idp.app.app_context():
        save_identity(citizen["id"], "P2", KENNETH, "check-five")
        db.session.commit()
    samples, landing_url = sample_services
    page = browser_page

    page.goto(landing_url)
    for sample in samples.values():
        expect(page.locator("body")).to_contain_text(sample.name)
        expect(page.locator(f"a[href^='{sample.base_url}']").first).to_be_visible()

    subs = {}
    for number, service in enumerate(["tax", "driving", "health", "benefits", "council"]):
        sample = samples[service]
        page.goto(sample.base_url)
        page.get_by_role("button", name="Sign in").click()
        if number == 0:
            # The only password prompt of the whole journey, naming who asks and for what.
            expect(page.locator("#requesting-service")).to_contain_text(sample.name)
            expect(page.locator("#requesting-service")).to_contain_text(sample.department)
            enter_email_and_password(page, citizen["email"], citizen["password"])
            enter_second_factor(page, citizen)
        assert page.locator("input[type=password]").count() == 0
        expect(page.locator("#requesting-service")).to_contain_text(sample.department)
        expect(page.locator("#requesting-service")).to_contain_text("your email address")
        page.get_by_role("button", name="Allow", exact=True).click()
        expect(page).to_have_url(f"{sample.base_url}/account")
        expect(page.locator("body")).to_contain_text(citizen["email"])
        subs[service] = _sub(page)
        if service == "driving":
            # The name and birth date it checked in the core identity JWT, not typed.
            expect(page.locator("#verified-identity")).to_contain_text("KENNETH DECERQUEIRA")
            expect(page.locator("#verified-identity")).to_contain_text("8 July 1965")
            expect(page.locator("#verified-identity code")).to_have_text("P2")
        if service == "benefits":
            # Its form starts with the verified address: nothing typed again.
            expect(page.locator("#address-line-1")).to_have_value("8 HADLEY ROAD")
            expect(page.locator("#address-town")).to_have_value("BATH")
            expect(page.locator("#address-postcode")).to_have_value("BA2 5AA")
            page.get_by_role("button", name="Continue").click()
            expect(page.locator("#applied-address")).to_contain_text("BA2 5AA")

    # driving registered a public subject; the others are pairwise, each in its own sector
    # (its own host), so no two departments can link the citizen.
    assert subs["driving"] == citizen["subject"]
    pairwise = [subs[s] for s in ("tax", "health", "benefits", "council")]
    assert len(set(pairwise)) == 4
    assert citizen["subject"] not in pairwise


def _check_accessible(page, name: str, refused: list[str]) -> None:
    """axe-core (WCAG 2.2 A and AA rules) finds nothing; GOV.UK Frontend's JavaScript ran,
    and the Content-Security-Policy refused nothing (its inline script and style are allowed
    by hash). axe-core is evaluated through the DevTools protocol, past the page's policy."""
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
    assert refused == [], f"{name}: {refused}"


def test_a_sample_services_pages_pass_the_accessibility_checks(
    idp, make_citizen, sample_services, browser_page
):
    citizen = make_citizen("axe@example.com")
    samples, landing_url = sample_services
    tax = samples["tax"]
    page = browser_page
    refused: list[str] = []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    # Every file a sample page asks for is there (the crest GOV.UK Frontend's footer draws on
    # GOV.UK is not: the samples' stylesheet leaves it out).
    missing: list[str] = []
    page.on(
        "response",
        lambda r: missing.append(r.url) if "/static/" in r.url and r.status >= 400 else None,
    )

    page.goto(landing_url)
    _check_accessible(page, "landing page", refused)

    page.goto(tax.base_url)
    expect(page.get_by_role("heading", level=1)).to_have_text(tax.name)
    _check_accessible(page, "start page", refused)

    page.get_by_role("button", name="Sign in with Government sign in").click()
    enter_email_and_password(page, citizen["email"], citizen["password"])
    enter_second_factor(page, citizen)
    page.get_by_role("button", name="Allow", exact=True).click()
    expect(page).to_have_url(f"{tax.base_url}/account")
    expect(page.locator("body")).to_contain_text(f"You are signed in as {citizen['email']}")
    _check_accessible(page, "account page", refused)

    page.goto(tax.base_url)
    expect(page.get_by_role("region", name="Signed in")).to_contain_text("You are signed in")
    _check_accessible(page, "signed-in start page", refused)
    assert missing == []

"""Browser journeys: the IdP and two department services, driven in headless Chromium."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from waitress import create_server

from idp.departments.services import register_client
from relying_parties import driving, tax
from relying_parties.common import DepartmentSettings
from tests.conftest import SERVICES_REQUIRED, free_port

CHROMIUM = os.environ.get("IDP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Department:
    """A running department service."""

    name: str
    url: str


def _serve(app, port: int):
    """Serve a WSGI app on a port in a background thread; returns the server."""
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    return server


@pytest.fixture
def departments(idp, tmp_path) -> Iterator[tuple[Department, Department]]:
    """A tax service (client_secret_basic) and a driving licence service (private_key_jwt)."""
    tax_port, driving_port = free_port(), free_port()
    tax_url, driving_url = f"http://127.0.0.1:{tax_port}", f"http://127.0.0.1:{driving_port}"
    secret = "tax-service-secret-" + "x" * 32
    with idp.app.app_context():
        register_client(
            "tax",
            {
                "client_name": "HMRC: Your tax account",
                "redirect_uris": [f"{tax_url}/auth/callback"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "openid email phone profile",
                "subject_type": "public",
                "post_logout_redirect_uris": [f"{tax_url}/"],
                "backchannel_logout_uri": f"{tax_url}/backchannel-logout",
                "backchannel_logout_session_required": True,
            },
            secret,
        )
        register_client(
            "driving",
            {
                "client_name": "DVLA: View your driving licence",
                "redirect_uris": [f"{driving_url}/auth/callback"],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks_uri": f"{driving_url}/jwks.json",
                "id_token_signed_response_alg": "RS256",
                "scope": "openid email profile",
                "subject_type": "public",
                "post_logout_redirect_uris": [f"{driving_url}/"],
                "backchannel_logout_uri": f"{driving_url}/backchannel-logout",
                "backchannel_logout_session_required": True,
            },
            None,
        )
    servers = [
        _serve(
            tax.create_app(
                DepartmentSettings(
                    name="Your tax account",
                    department="HM Revenue & Customs",
                    client_id="tax",
                    base_url=tax_url,
                    issuer=idp.issuer,
                    token_endpoint_auth_method="client_secret_basic",
                    client_secret=secret,
                )
            ),
            tax_port,
        ),
        _serve(
            driving.create_app(
                DepartmentSettings(
                    name="View your driving licence",
                    department="Driver and Vehicle Licensing Agency",
                    client_id="driving",
                    base_url=driving_url,
                    issuer=idp.issuer,
                    token_endpoint_auth_method="private_key_jwt",
                    private_key_path=str(tmp_path / "driving.pem"),
                    scope="openid email profile",
                )
            ),
            driving_port,
        ),
    ]
    yield Department("tax", tax_url), Department("driving", driving_url)
    for server in servers:
        server.close()


@pytest.fixture
def browser_page(tmp_path):
    """A fresh page in headless Chromium (Debian's package, driven by Playwright)."""
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        reason = f"Chromium is not installed at {CHROMIUM} (make test installs it with apt-get)"
        if SERVICES_REQUIRED:
            pytest.fail(f"IDP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        context.set_default_timeout(15000)
        page = context.new_page()
        try:
            yield page
        finally:
            if hasattr(page, "url"):
                page.screenshot(path=str(tmp_path / "last-page.png"))
            context.close()
            browser.close()


def enter_email_and_password(page, email: str, password: str) -> None:
    """The two sign-in pages: the email address, then the password on its own page."""
    from playwright.sync_api import expect

    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your password")
    page.get_by_role("textbox", name="Enter your password").fill(password)
    page.get_by_role("button", name="Continue").click()


def enter_second_factor(page, citizen: dict) -> None:
    """Type the code the citizen's authenticator app shows (the IdP's second step)."""
    from playwright.sync_api import expect

    from tests.support.browser import SECOND_FACTORS

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Enter the code from your authenticator app"
    )
    page.get_by_label("Code").fill(SECOND_FACTORS[citizen["email"]].next_code())
    page.get_by_role("button", name="Continue").click()

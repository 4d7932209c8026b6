"""Passkeys in a real browser: headless Chromium with a virtual authenticator (the DevTools
WebAuthn domain), adding a passkey on the account pages and then signing in to a department
with the passkey alone.

A WebAuthn RP ID must be a host name, never an IP address, so this test serves its own IdP
whose issuer is http://localhost:<port> (on the shared test database) and points a department
at it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from idp.departments.services import register_client
from idp.extensions import db
from idp.models import Passkey
from relying_parties import tax
from relying_parties.common import DepartmentSettings
from tests.conftest import LiveIdP, free_port, serve_idp
from tests.e2e.conftest import Department, _serve, enter_email_and_password, enter_second_factor

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def localhost_idp(live_idp, database_url) -> Iterator[LiveIdP]:
    """An IdP on the shared database whose issuer is http://localhost:<port>."""
    served = serve_idp(
        database_url,
        live_idp.app.config["IDP_SETTINGS"].instance_path,
        issuer_host="localhost",
    )
    yield served
    served.close()


@pytest.fixture
def tax_department(idp, localhost_idp) -> Iterator[Department]:
    """The tax service, a client of the localhost IdP."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret = "tax-service-secret-" + "p" * 32
    with localhost_idp.app.app_context():
        register_client(
            "tax",
            {
                "client_name": "HMRC: Your tax account",
                "redirect_uris": [f"{url}/auth/callback"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "openid email phone profile",
                "subject_type": "public",
            },
            secret,
        )
    server = _serve(
        tax.create_app(
            DepartmentSettings(
                name="Your tax account",
                department="HM Revenue & Customs",
                client_id="tax",
                base_url=url,
                issuer=localhost_idp.issuer,
                token_endpoint_auth_method="client_secret_basic",
                client_secret=secret,
            )
        ),
        port,
    )
    yield Department("tax", url)
    server.close()


def add_virtual_authenticator(page) -> tuple[object, str]:
    """A platform authenticator with passkeys and user verification (a fingerprint, say)."""
    client = page.context.new_cdp_session(page)
    client.send("WebAuthn.enable")
    added = client.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return client, added["authenticatorId"]


def test_add_a_passkey_then_sign_in_to_a_department_with_it_alone(
    localhost_idp, make_citizen, tax_department, browser_page
):
    citizen = make_citizen("passkey.journey@example.com")
    page = browser_page
    cdp, authenticator_id = add_virtual_authenticator(page)

    # Signed in with the password and the app's code, the citizen adds a passkey.
    page.goto(localhost_idp.url("/sign-in"))
    enter_email_and_password(page, citizen["email"], citizen["password"])
    enter_second_factor(page, citizen)
    expect(page).to_have_url(localhost_idp.url("/"))
    page.goto(localhost_idp.url("/account/passkeys"))
    expect(page.locator("body")).to_contain_text("You have no passkeys yet.")
    # Adding a passkey needs the current password at that moment.
    page.get_by_role("link", name="Add a passkey").click()
    page.get_by_label("Your current password").fill(citizen["password"])
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Name for this passkey").fill("This laptop")
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.locator(".govuk-notification-banner")).to_contain_text("Your passkey is added")
    expect(page.locator("#passkeys")).to_contain_text("This laptop")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    [credential] = credentials["credentials"]
    assert credential["isResidentCredential"] is True
    assert credential["rpId"] == "localhost"

    # Signed out, the citizen goes to the department and signs in with the passkey alone.
    page.goto(localhost_idp.url("/"))
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.goto(tax_department.url)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#requesting-service")).to_contain_text("HMRC: Your tax account")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("HMRC: Your tax account")
    page.get_by_role("button", name="Allow", exact=True).click()

    # Back at the department, signed in at Cl.Cm by a passkey and no password.
    expect(page).to_have_url(f"{tax_department.url}/account")
    body = page.locator("body")
    expect(body).to_contain_text(citizen["email"])
    methods = page.locator("dt:has-text('Methods') + dd")
    expect(methods).to_have_text("hwk")
    expect(page.locator("dt:has-text('Level of confidence') + dd")).to_have_text("Cl.Cm")
    # The IdP kept the authenticator's signature count, so a cloned one would be noticed.
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})[
        "credentials"
    ]
    with localhost_idp.app.app_context():
        [stored] = db.session.scalars(select(Passkey).filter_by(citizen_id=citizen["id"])).all()
        assert (stored.name, stored.device_type) == ("This laptop", "single_device")
        assert stored.sign_count == credential["signCount"] > 0
        assert stored.last_used_at is not None


def test_a_cancelled_passkey_request_says_so(localhost_idp, idp, browser_page):
    page = browser_page
    cdp, authenticator_id = add_virtual_authenticator(page)
    # The citizen does not pass the fingerprint check (or cancels it): no passkey comes back.
    cdp.send(
        "WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": False}
    )
    page.goto(localhost_idp.url("/sign-in"))
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("cancelled or timed out")
    expect(page).to_have_url(localhost_idp.url("/sign-in"))


def test_browsers_without_passkeys_see_no_passkey_button(localhost_idp, idp, browser_page):
    page = browser_page
    page.add_init_script("delete window.PublicKeyCredential;")
    page.goto(localhost_idp.url("/sign-in"))
    expect(page.get_by_role("button", name="Continue")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_hidden()

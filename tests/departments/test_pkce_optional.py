"""A department whose OIDC library cannot send PKCE (govuk-onelogin-django) registers its
service without it on the department pages, seeing why and what it must send instead."""

from __future__ import annotations

import httpx
import pytest

from idp.departments.services import change_client_status
from idp.extensions import db
from idp.models import Client
from tests.departments import (
    PASSPORTS,
    REDIRECT_URI,
    StaffBrowser,
    make_staff,
    stored_client,
    visible_text,
)
from tests.support.browser import CitizenBrowser
from tests.support.oidc_client import DepartmentClient

REASON = "Only if your OIDC library cannot send PKCE, such as govuk-onelogin-django"


@pytest.fixture
def signed_in(idp) -> StaffBrowser:
    """HM Passport Office's administrator, signed in."""
    admin = make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    return StaffBrowser(idp.issuer).signed_in(admin)


def register(browser: StaffBrowser, **fields) -> httpx.Response:
    """Fill in "Register a service" with the library-cannot-send-PKCE box ticked."""
    page = browser.get("/departments/services/new/all-settings")
    assert page.status_code == 200
    assert REASON in visible_text(page)
    values = {
        "client_name": "Renew your passport",
        "redirect_uris": REDIRECT_URI,
        "token_endpoint_auth_method": "client_secret_basic",
        "pkce_optional": "y",
        **fields,
    }
    return browser.submit(page, values)


def client_id_on(page: httpx.Response) -> str:
    marker = '<code id="client-id">'
    assert marker in page.text, page.text[:2000]
    return page.text.split(marker, 1)[1].split("</code>", 1)[0]


def test_a_confidential_service_registered_without_pkce_signs_in_with_a_nonce(idp, signed_in):
    registered = register(signed_in)
    assert registered.status_code == 200, visible_text(registered)[:1000]
    client_id = client_id_on(registered)
    assert stored_client(idp.app, client_id).require_pkce is False
    shown = visible_text(signed_in.get(f"/departments/services/{client_id}"))
    assert "PKCE not required: its OIDC library cannot send PKCE" in shown
    assert "every sign-in must send a nonce" in shown
    with idp.app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        change_client_status(client, "approve", actor="test", platform_admin=True)

    # As govuk-onelogin-django sends it: a nonce, no code_challenge.
    department = DepartmentClient(issuer=idp.issuer, client_id=client_id, redirect_uri=REDIRECT_URI)
    browser = CitizenBrowser(idp.issuer)
    attempt = department.authorization(omit=("code_challenge", "code_challenge_method"))
    welcomed = browser.follow(browser.get(attempt.url))
    assert welcomed.status_code == 200
    assert "Sign in to continue to Renew your passport" in visible_text(welcomed)


def test_a_service_that_sends_pkce_keeps_it_required(idp, signed_in):
    registered = register(signed_in, pkce_optional=[])
    client_id = client_id_on(registered)
    assert stored_client(idp.app, client_id).require_pkce is True
    shown = visible_text(signed_in.get(f"/departments/services/{client_id}"))
    assert "PKCE required (S256)" in shown


def test_a_public_client_cannot_go_without_pkce(idp, signed_in):
    refused = register(signed_in, token_endpoint_auth_method="none")
    assert refused.status_code == 400
    assert "require_pkce cannot be false for a public client (none)" in visible_text(refused)
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Client)) == 0

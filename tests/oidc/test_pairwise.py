"""Pairwise subject identifiers (OIDC Core 8.1): each sector sees its own, stable sub.

Departments in different sectors (the hosts of their redirect URIs, or of a registered
sector_identifier_uri) cannot link a citizen by sub; services of one sector can.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import httpx
import pytest

from idp import create_app
from idp.oidc.claims import pairwise_subject
from idp.settings import load_settings
from tests.support.browser import CitizenBrowser
from tests.support.registration import (
    VALID_METADATA,
    issue_token,
    manage,
    register,
    registered_client,
    registration_error,
    replacement,
)

TAX = "https://tax.example.gov.uk/callback"
DRIVING = "https://driving.example.gov.uk/callback"


@pytest.fixture
def subs(idp, browser, citizen):
    """The sub a client learns for the citizen, from the ID token and from UserInfo."""

    def sub_at(client, *, as_citizen: dict | None = None, in_browser=None) -> str:
        who = as_citizen or citizen
        attempt = client.authorization()
        cb = (in_browser or browser).authorize(attempt.url, who["email"], who["password"])
        response = client.token_request(cb.params["code"], attempt.code_verifier)
        assert response.status_code == 200, response.text
        tokens = response.json()
        id_token_sub = client.validate_id_token(tokens["id_token"], attempt.nonce)["sub"]
        info = httpx.get(
            idp.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert info.json()["sub"] == id_token_sub, "ID token and UserInfo disagree on sub"
        return id_token_sub

    return sub_at


def test_clients_in_different_sectors_see_different_subs(make_client, subs, citizen):
    tax = make_client("tax", redirect_uri=TAX, subject_type="pairwise")
    driving = make_client("driving", redirect_uri=DRIVING, subject_type="pairwise")

    tax_sub, driving_sub = subs(tax), subs(driving)

    assert tax_sub != driving_sub
    assert citizen["subject"] not in {tax_sub, driving_sub}
    assert len(tax_sub) >= 32  # 256 bits, not a guessable counter


@pytest.mark.parametrize(
    "second_redirect",
    ["https://tax.example.gov.uk/self-assessment/callback", "https://tax.example.gov.uk:8443/cb"],
    ids=["other-path", "other-port"],
)
def test_clients_on_the_same_host_share_a_sub(make_client, subs, second_redirect):
    first = make_client("tax-a", redirect_uri=TAX, subject_type="pairwise")
    second = make_client("tax-b", redirect_uri=second_redirect, subject_type="pairwise")
    assert subs(first) == subs(second)


def test_a_sector_identifier_uri_puts_different_hosts_in_one_sector(
    make_client, subs, sector_server
):
    sector = sector_server.serve("/sector.json", [TAX, DRIVING])
    tax = make_client(
        "tax", redirect_uri=TAX, subject_type="pairwise", sector_identifier_uri=sector
    )
    driving = make_client(
        "driving", redirect_uri=DRIVING, subject_type="pairwise", sector_identifier_uri=sector
    )
    driving_alone = make_client("driving-alone", redirect_uri=DRIVING, subject_type="pairwise")

    shared = subs(tax)

    assert subs(driving) == shared
    assert subs(driving_alone) != shared


def test_the_pairwise_sub_is_stable_across_sign_ins(idp, make_client, subs):
    client = make_client("tax", redirect_uri=TAX, subject_type="pairwise")
    first = subs(client)
    # A new browser: a new sign-in, with the earlier consent remembered.
    again = subs(client, in_browser=CitizenBrowser(idp.issuer))
    assert again == first


def test_two_citizens_get_different_subs_at_one_client(make_client, make_citizen, subs):
    client = make_client("tax", redirect_uri=TAX, subject_type="pairwise")
    other = make_citizen("someone.else@example.com")
    assert subs(client) != subs(client, as_citizen=other, in_browser=CitizenBrowser(client.issuer))


def test_a_public_client_gets_the_citizens_public_subject(make_client, subs, citizen):
    public = make_client("public", redirect_uri=TAX, subject_type="public")
    pairwise = make_client("pairwise", redirect_uri=TAX, subject_type="pairwise")
    assert subs(public) == citizen["subject"]
    assert subs(pairwise) != citizen["subject"]


def test_pairwise_is_the_default_for_a_registration_that_does_not_choose(idp, subs, citizen):
    body = register(
        idp, {**VALID_METADATA, "redirect_uris": [TAX]}, issue_token(idp, pre_approved=True)
    ).json()
    assert body["subject_type"] == "pairwise"
    assert subs(registered_client(idp, body)) != citizen["subject"]


def test_changing_the_pairwise_secret_changes_pairwise_subs_only(
    idp, make_client, subs, monkeypatch, citizen
):
    pairwise = make_client("tax", redirect_uri=TAX, subject_type="pairwise")
    public = make_client("public", redirect_uri=DRIVING, subject_type="public")
    before = subs(pairwise)

    monkeypatch.setitem(idp.app.config, "IDP_PAIRWISE_SECRET", b"another secret " * 3)

    assert subs(pairwise) != before
    assert subs(public) == citizen["subject"]


@pytest.fixture(scope="module")
def app_with_secret(tmp_path_factory):
    """Build an IdP app (no server, no database use) with the given pairwise secret setting."""

    def build(secret: str = "", instance: str = "instance"):
        settings = load_settings(
            config_file=os.devnull,
            issuer="https://idp.example",
            instance_path=str(tmp_path_factory.getbasetemp() / "pairwise" / instance),
            database_url="sqlite://",
            departments_file="",
            pairwise_secret=secret,
            log_level="WARNING",  # as the live IdP: the logger is process-wide
        )
        return create_app(settings)

    return build


def _sub(app, sector: str = "tax.example.gov.uk") -> str:
    citizen = SimpleNamespace(subject="citizen-subject-1")
    with app.app_context():
        return pairwise_subject(citizen, sector)


def test_the_pairwise_secret_setting_determines_the_subs(app_with_secret):
    first = app_with_secret("a" * 32)
    same = app_with_secret("a" * 32, instance="other-instance")
    changed = app_with_secret("b" * 32)
    assert _sub(first) == _sub(same)
    assert _sub(first) != _sub(changed)
    assert _sub(first) != _sub(first, "driving.example.gov.uk")


def test_a_generated_pairwise_secret_survives_a_restart(app_with_secret):
    """Without the setting, the development secret is kept in the instance folder."""
    assert _sub(app_with_secret(instance="kept")) == _sub(app_with_secret(instance="kept"))
    assert _sub(app_with_secret(instance="kept")) != _sub(app_with_secret(instance="fresh"))


def test_a_pairwise_secret_shorter_than_32_characters_is_refused(app_with_secret):
    with pytest.raises(ValueError, match="at least 32 characters"):
        app_with_secret("too short")


# --- A pairwise client's sector is fixed ----------------------------------------------------


def _pairwise_registration(idp, redirect_uri: str = TAX) -> dict:
    metadata = {**VALID_METADATA, "redirect_uris": [redirect_uri], "subject_type": "pairwise"}
    response = register(idp, metadata, issue_token(idp, pre_approved=True))
    assert response.status_code == 201, response.text
    return response.json()


def test_moving_a_pairwise_client_to_another_host_is_refused(idp):
    registration = _pairwise_registration(idp)
    before = manage("GET", registration).json()

    response = manage("PUT", registration, replacement(registration, redirect_uris=[DRIVING]))

    description = registration_error(response, 400, "invalid_client_metadata")
    assert description.startswith("sector_identifier_uri")
    assert "tax.example.gov.uk" in description and "driving.example.gov.uk" in description
    assert manage("GET", registration).json() == before


def test_a_pairwise_client_may_add_redirect_uris_on_its_own_host(idp):
    registration = _pairwise_registration(idp)
    uris = [TAX, "https://tax.example.gov.uk/other/callback"]
    response = manage("PUT", registration, replacement(registration, redirect_uris=uris))
    assert response.status_code == 200, response.text
    assert response.json()["redirect_uris"] == uris


def test_a_public_client_may_move_to_another_host(idp):
    metadata = {**VALID_METADATA, "redirect_uris": [TAX], "subject_type": "public"}
    registration = register(idp, metadata, issue_token(idp)).json()
    response = manage("PUT", registration, replacement(registration, redirect_uris=[DRIVING]))
    assert response.status_code == 200, response.text


def test_a_sector_document_on_the_old_sector_lets_a_pairwise_client_move_and_keep_subs(
    idp, subs, sector_server
):
    """What the refusal tells the department to do: list the new URIs from the old sector."""
    old_redirect = sector_server.base + "/callback"  # sector 127.0.0.1 (http on loopback)
    registration = _pairwise_registration(idp, old_redirect)
    before = subs(registered_client(idp, registration))
    sector = sector_server.serve("/sector.json", [DRIVING])

    response = manage(
        "PUT",
        registration,
        replacement(registration, redirect_uris=[DRIVING], sector_identifier_uri=sector),
    )

    assert response.status_code == 200, response.text
    moved = {**response.json(), "client_secret": registration["client_secret"]}
    with idp.app.app_context():
        # New redirect URIs send the service back for approval first.
        from idp.departments.services import change_client_status
        from idp.models.client import find_client

        change_client_status(
            find_client(moved["client_id"]), "approve", actor="test", platform_admin=True
        )
    assert subs(registered_client(idp, moved)) == before

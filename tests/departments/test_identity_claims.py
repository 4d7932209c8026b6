"""Registering for verified identity details (identity_claims, One Login's claim names): the
registration API, the one-page form and the service page accept only the details this IdP
offers, and a platform administrator approves them like any other setting before the
department receives them (Client.reviewed_identity_claims)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from idp.accounts.identity.vocabulary import (
    ADDRESS,
    CORE_IDENTITY_JWT,
    DRIVING_PERMIT,
    IDENTITY_CLAIMS,
    RETURN_CODE,
)
from idp.departments.samples import register_departments
from idp.settings import current_settings
from tests.departments import (
    PASSPORTS,
    StaffBrowser,
    count_clients,
    error_summary,
    make_staff,
    stored_client,
    visible_text,
)
from tests.departments.test_approval import edit, pressed, service_path
from tests.departments.test_department_pages import (
    register_on_one_page,
    register_through_form,
    shown_code,
)
from tests.support.registration import (
    VALID_METADATA,
    issue_token,
    manage,
    register,
    registration_error,
    replacement,
)

DEPARTMENTS_FILE = Path(__file__).resolve().parents[2] / "config" / "departments.toml"
UNKNOWN = "https://vocab.account.gov.uk/v1/socialSecurityRecord"


@pytest.fixture
def platform(idp) -> StaffBrowser:
    """A platform administrator, signed in."""
    return StaffBrowser(idp.issuer).signed_in(
        make_staff(idp.app, "platform@sign-in.example.gov.uk")
    )


@pytest.fixture
def department(idp) -> StaffBrowser:
    """HM Passport Office's administrator, signed in."""
    email = make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    return StaffBrowser(idp.issuer).signed_in(email)


# -- The registration API (RFC 7591 / 7592) -----------------------------------------------------


def test_the_api_registers_identity_claims_and_returns_them(idp):
    token = issue_token(idp, pre_approved=True)

    response = register(
        idp, {**VALID_METADATA, "identity_claims": [RETURN_CODE, CORE_IDENTITY_JWT]}, token
    )

    assert response.status_code == 201, response.text
    body = response.json()
    # In the vocabulary's order, whatever order they were sent in.
    assert body["identity_claims"] == [CORE_IDENTITY_JWT, RETURN_CODE]
    assert manage("GET", body).json()["identity_claims"] == [CORE_IDENTITY_JWT, RETURN_CODE]
    client = stored_client(idp.app, body["client_id"])
    assert client.reviewed_identity_claims == [CORE_IDENTITY_JWT, RETURN_CODE]


def test_an_empty_list_asks_for_no_verified_details(idp):
    response = register(idp, {**VALID_METADATA, "identity_claims": []}, issue_token(idp))

    assert response.status_code == 201, response.text
    assert "identity_claims" not in response.json()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            [CORE_IDENTITY_JWT, UNKNOWN],
            f"identity_claims: '{UNKNOWN}' is not a verified identity detail this IdP offers "
            f"(offered: {', '.join(IDENTITY_CLAIMS)})",
        ),
        (
            ["address"],
            "identity_claims: 'address' is not a verified identity detail this IdP offers",
        ),
        (
            CORE_IDENTITY_JWT,
            f'identity_claims must be a list of claim names, such as ["{CORE_IDENTITY_JWT}"]',
        ),
        ({"claim": CORE_IDENTITY_JWT}, "identity_claims must be a list of claim names"),
        ([ADDRESS, ADDRESS], f"identity_claims lists {ADDRESS} twice"),
        ([7], "identity_claims: 7 is not a claim name (each must be a string)"),
        ([["nested"]], "identity_claims: ['nested'] is not a claim name"),
    ],
    ids=["unknown", "short name", "string", "object", "twice", "number", "nested list"],
)
def test_the_api_refuses_identity_claims_it_does_not_offer(idp, value, message):
    token = issue_token(idp)

    response = register(idp, {**VALID_METADATA, "identity_claims": value}, token)

    assert message in registration_error(response, 400, "invalid_client_metadata")
    assert count_clients(idp.app) == 0


def test_a_very_long_unknown_claim_is_named_but_cut_short(idp):
    response = register(idp, {**VALID_METADATA, "identity_claims": ["x" * 5000]}, issue_token(idp))

    description = registration_error(response, 400, "invalid_client_metadata")
    assert "'" + "x" * 100 + "...'" in description
    assert len(description) < 600


def test_asking_for_more_details_through_the_api_waits_for_approval(idp, platform):
    token = issue_token(idp, pre_approved=True, department=PASSPORTS)
    registration = register(
        idp, {**VALID_METADATA, "identity_claims": [CORE_IDENTITY_JWT]}, token
    ).json()
    client_id = registration["client_id"]

    put = manage(
        "PUT",
        registration,
        replacement(registration, identity_claims=[CORE_IDENTITY_JWT, DRIVING_PERMIT]),
    )

    assert put.status_code == 200, put.text
    assert put.json()["identity_claims"] == [CORE_IDENTITY_JWT, DRIVING_PERMIT]
    client = stored_client(idp.app, client_id)
    assert not client.approval_is_current
    assert client.status == "pending"
    # The department still has only what was approved.
    assert client.reviewed_identity_claims == [CORE_IDENTITY_JWT]
    shown = visible_text(platform.get(service_path(client_id)))
    assert (
        "Verified identity details Their name and date of birth, as checked (coreIdentityJWT) "
        "Their driving licence details (drivingPermit) The approved version (1) has Their name "
        "and date of birth, as checked (coreIdentityJWT)."
    ) in shown

    pressed(platform, client_id, "Approve this service")

    approved = stored_client(idp.app, client_id)
    assert approved.status == "active"
    assert approved.reviewed_identity_claims == [CORE_IDENTITY_JWT, DRIVING_PERMIT]
    assert "The approved version" not in visible_text(platform.get(service_path(client_id)))


def test_the_api_refuses_an_unknown_claim_in_a_change_and_keeps_the_registration(idp):
    registration = register(
        idp,
        {**VALID_METADATA, "identity_claims": [CORE_IDENTITY_JWT]},
        issue_token(idp, pre_approved=True),
    ).json()

    put = manage("PUT", registration, replacement(registration, identity_claims=[UNKNOWN]))

    assert f"'{UNKNOWN}' is not a verified identity detail" in registration_error(
        put, 400, "invalid_client_metadata"
    )
    client = stored_client(idp.app, registration["client_id"])
    assert client.client_metadata["identity_claims"] == [CORE_IDENTITY_JWT]
    assert client.approval_is_current


# -- The department's pages ---------------------------------------------------------------------


def test_the_question_pages_register_the_details_chosen(idp, department):
    registered = register_through_form(department, identity_claims=[ADDRESS, RETURN_CODE])

    client = stored_client(idp.app, shown_code(registered, "client-id"))
    assert client.client_metadata["identity_claims"] == [ADDRESS, RETURN_CODE]
    # Nothing is received before a platform administrator approves it.
    assert client.reviewed_identity_claims == []
    shown = visible_text(department.get(service_path(client.client_id)))
    assert (
        "Verified identity details Their address, as checked (address) Why they could not "
        "prove their identity, if they could not (returnCode)"
    ) in shown


def test_the_one_page_form_registers_the_details_chosen(idp, department):
    registered = register_on_one_page(department, identity_claims=[CORE_IDENTITY_JWT, ADDRESS])

    assert registered.status_code == 200, error_summary(registered)
    client = stored_client(idp.app, shown_code(registered, "client-id"))
    assert client.client_metadata["identity_claims"] == [CORE_IDENTITY_JWT, ADDRESS]


def test_the_one_page_form_without_details_registers_none(idp, department):
    registered = register_on_one_page(department)

    client = stored_client(idp.app, shown_code(registered, "client-id"))
    assert "identity_claims" not in client.client_metadata
    shown = visible_text(department.get(service_path(client.client_id)))
    assert "Verified identity details None" in shown


def test_the_one_page_form_names_a_detail_it_does_not_offer(idp, department):
    refused = register_on_one_page(department, identity_claims=[CORE_IDENTITY_JWT, UNKNOWN])

    assert refused.status_code == 400
    (summary,) = error_summary(refused)
    assert f"'{UNKNOWN}' is not a verified identity detail this IdP offers" in summary
    assert 'href="#identity_claims"' in refused.text
    assert 'id="identity_claims-error"' in refused.text
    assert count_clients(idp.app) == 0


def test_adding_a_detail_on_the_service_page_needs_approval_again(idp, department, platform):
    client_id = shown_code(register_through_form(department), "client-id")
    pressed(platform, client_id, "Approve this service")
    page = department.get(service_path(client_id))
    assert 'name="edit-identity_claims"' in page.text

    changed = edit(department, client_id, **{"edit-identity_claims": [CORE_IDENTITY_JWT]})

    assert changed.status_code == 303, error_summary(changed)
    client = stored_client(idp.app, client_id)
    assert client.status == "pending" and not client.approval_is_current
    assert client.reviewed_identity_claims == []
    shown = visible_text(platform.get(service_path(client_id)))
    assert (
        "Verified identity details Their name and date of birth, as checked (coreIdentityJWT) "
        "The approved version (1) has none."
    ) in shown
    # The confirmation page names the details being approved.
    confirm = platform.submit(
        platform.get(service_path(client_id)),
        action=f"{service_path(client_id)}/status",
        button="Approve this service",
    )
    assert (
        "Verified identity details Their name and date of birth, as checked (coreIdentityJWT)"
    ) in visible_text(confirm)

    pressed(platform, client_id, "Approve this service")

    assert stored_client(idp.app, client_id).reviewed_identity_claims == [CORE_IDENTITY_JWT]


def test_an_edit_that_leaves_the_details_alone_keeps_them(idp, department, platform):
    client_id = shown_code(
        register_through_form(department, identity_claims=[CORE_IDENTITY_JWT]), "client-id"
    )
    pressed(platform, client_id, "Approve this service")

    edit(department, client_id, **{"edit-contacts": "team@passports.example.gov.uk"})

    client = stored_client(idp.app, client_id)
    assert client.client_metadata["identity_claims"] == [CORE_IDENTITY_JWT]
    assert client.approval_is_current and client.status == "active"


def test_the_service_page_refuses_an_unknown_detail_beside_the_field(idp, department):
    client_id = shown_code(register_through_form(department), "client-id")

    refused = edit(department, client_id, **{"edit-identity_claims": [UNKNOWN]})

    assert refused.status_code == 400
    assert any(
        f"'{UNKNOWN}' is not a verified identity detail" in item for item in error_summary(refused)
    )
    assert 'id="edit-identity_claims-error"' in refused.text
    assert "identity_claims" not in stored_client(idp.app, client_id).client_metadata


# -- The sample departments ---------------------------------------------------------------------


def test_the_sample_driving_and_benefits_services_are_approved_for_verified_details(idp):
    with idp.app.app_context():
        settings = dataclasses.replace(current_settings(), departments_file=str(DEPARTMENTS_FILE))
        register_departments(settings)

    driving = stored_client(idp.app, "dvla-driving-licence")
    benefits = stored_client(idp.app, "dwp-check-benefits")
    assert driving.reviewed_identity_claims == [CORE_IDENTITY_JWT, RETURN_CODE]
    assert benefits.reviewed_identity_claims == [CORE_IDENTITY_JWT, ADDRESS, RETURN_CODE]
    assert stored_client(idp.app, "hmrc-tax-account").reviewed_identity_claims == []
    assert driving.approval_is_current and benefits.approval_is_current

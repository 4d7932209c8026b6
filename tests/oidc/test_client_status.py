"""A service that may not be used now: pending approval, suspended by the platform team, or
switched off by its department.

The citizen is shown a page saying so (never redirected to the service: its redirect URIs
are not trusted while it is not active), the department gets unauthorized_client at the
token endpoint, and its live access tokens stop working. Status changes are made as the
`idp clients approve|suspend|reinstate|disable|enable` commands make them.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import update

from idp.departments.services import RegistrationError
from idp.extensions import db
from idp.models import Client
from tests.support.browser import SIGN_IN_FORM, CitizenBrowser
from tests.support.oauth_errors import assert_oauth_error
from tests.support.registration import (
    VALID_METADATA,
    change_status,
    issue_token,
    manage,
    register,
    registered_client,
)

SERVICE = VALID_METADATA["client_name"]
DEPARTMENT = "Environment Agency"


@pytest.fixture
def service(idp):
    """Register a service through the API (pre-approved unless asked), for the department."""

    def registered(*, pre_approved: bool = True) -> tuple[dict, object]:
        token = issue_token(idp, pre_approved=pre_approved, department=DEPARTMENT)
        response = register(idp, VALID_METADATA, token)
        assert response.status_code == 201, response.text
        body = response.json()
        return body, registered_client(idp, body)

    return registered


def redeem(client, browser, citizen) -> dict:
    """Sign in at the service and exchange the code; the tokens."""
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    response = client.token_request(cb.params["code"], attempt.code_verifier)
    assert response.status_code == 200, response.text
    return response.json()


def userinfo(idp, access_token: str) -> httpx.Response:
    """UserInfo with the access token in the header."""
    return httpx.get(idp.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"})


def make_pending(idp, client_id: str) -> None:
    """Put an approved service back to pending. No command does this (approval is never
    withdrawn that way), so it is set directly: it shows what a pending service with an
    outstanding code would get."""
    with idp.app.app_context():
        db.session.execute(
            update(Client).where(Client.client_id == client_id).values(status="pending")
        )
        db.session.commit()


@pytest.mark.parametrize(
    ("status", "title", "explanation"),
    [
        (
            "pending",
            "You cannot sign in to this service yet",
            "still waiting for approval before anyone can sign in to it",
        ),
        (
            "suspended",
            f"{SERVICE} is not available",
            "has suspended this service, so nobody can sign in to it at the moment",
        ),
        (
            "disabled",
            f"{SERVICE} is not available",
            f"{DEPARTMENT} has switched this service off for now",
        ),
    ],
)
def test_the_citizen_is_told_why_a_service_cannot_be_used(
    idp, service, browser, citizen, status, title, explanation
):
    body, client = service(pre_approved=status != "pending")
    if status == "suspended":
        change_status(idp, body["client_id"], "suspend")
    elif status == "disabled":
        change_status(idp, body["client_id"], "disable", platform_admin=False)

    page = browser.get(client.authorization().url)

    assert page.status_code == 403
    assert "location" not in page.headers
    assert page.headers["content-type"].startswith("text/html")
    assert title in page.text
    assert explanation in page.text
    assert "Your account is not affected, and other services still work." in page.text
    assert "unauthorized_client" not in page.text  # no error codes shown to citizens
    assert SIGN_IN_FORM not in page.text  # not asked to sign in for nothing


def test_a_signed_in_citizen_is_shown_the_page_too(idp, service, browser, citizen):
    body, client = service()
    redeem(client, browser, citizen)
    change_status(idp, body["client_id"], "suspend")

    page = browser.get(client.authorization().url)

    assert page.status_code == 403
    assert "has suspended this service" in page.text


@pytest.mark.parametrize("status", ["pending", "suspended", "disabled"])
def test_a_code_issued_before_the_change_gets_unauthorized_client(
    idp, service, browser, citizen, status
):
    body, client = service()
    attempt = client.authorization()
    code = browser.authorize(attempt.url, citizen["email"], citizen["password"]).params["code"]
    if status == "pending":
        make_pending(idp, body["client_id"])
    else:
        action = {"suspended": "suspend", "disabled": "disable"}[status]
        change_status(idp, body["client_id"], action)

    response = client.token_request(code, attempt.code_verifier)

    error = assert_oauth_error(response, 400, "unauthorized_client")
    assert "not active" in error["error_description"]
    assert "access_token" not in response.json()


@pytest.mark.parametrize(("stop", "restore"), [("suspend", "reinstate"), ("disable", "enable")])
def test_stopping_a_service_ends_its_access_tokens_and_restoring_it_allows_sign_in(
    idp, service, browser, citizen, stop, restore
):
    body, client = service()
    old = redeem(client, browser, citizen)["access_token"]
    assert userinfo(idp, old).status_code == 200

    change_status(idp, body["client_id"], stop)

    stopped = userinfo(idp, old)
    assert stopped.status_code == 401
    assert 'error="invalid_token"' in stopped.headers["www-authenticate"]

    change_status(idp, body["client_id"], restore)

    # The old token was revoked, not just hidden while the service was stopped.
    assert userinfo(idp, old).status_code == 401
    fresh = redeem(client, CitizenBrowser(idp.issuer), citizen)["access_token"]
    assert userinfo(idp, fresh).json()["email"] == citizen["email"]


def test_approving_a_pending_service_lets_citizens_sign_in(idp, service, browser, citizen):
    body, client = service(pre_approved=False)
    assert browser.get(client.authorization().url).status_code == 403

    assert change_status(idp, body["client_id"], "approve") == "active"

    tokens = redeem(client, browser, citizen)
    assert userinfo(idp, tokens["access_token"]).status_code == 200


def test_a_suspension_during_sign_in_stops_the_journey_at_consent(idp, service, browser, citizen):
    body, client = service()
    consent_page = browser.follow(browser.get(client.authorization().url))
    consent_page = browser.sign_in(consent_page, citizen["email"], citizen["password"])
    assert "wants to know who you are" in consent_page.text

    change_status(idp, body["client_id"], "suspend")
    answer = browser.submit(consent_page, {}, button="allow")

    assert answer.status_code == 403
    assert "location" not in answer.headers
    assert "has suspended this service" in answer.text


def test_reinstating_a_never_approved_service_leaves_it_waiting_for_approval(idp, service, browser):
    body, client = service(pre_approved=False)
    change_status(idp, body["client_id"], "suspend")

    assert change_status(idp, body["client_id"], "reinstate") == "pending"
    page = browser.get(client.authorization().url)
    assert page.status_code == 403
    assert "waiting for approval" in page.text


@pytest.mark.parametrize(
    ("action", "still"),
    [
        ("approve", "waiting for approval"),
        ("suspend", "waiting for approval"),
        ("reinstate", "has suspended this service"),
    ],
)
def test_only_the_platform_team_approves_suspends_and_reinstates(
    idp, service, browser, action, still
):
    body, client = service(pre_approved=False)
    if action == "reinstate":
        change_status(idp, body["client_id"], "suspend")

    with pytest.raises(RegistrationError):
        change_status(idp, body["client_id"], action, platform_admin=False)

    assert still in browser.get(client.authorization().url).text


def test_a_department_cannot_switch_a_suspended_service_back_on(idp, service, browser):
    body, client = service()
    change_status(idp, body["client_id"], "suspend")

    with pytest.raises(RegistrationError):
        change_status(idp, body["client_id"], "enable", platform_admin=False)

    assert "has suspended this service" in browser.get(client.authorization().url).text


def test_a_stopped_service_can_still_read_its_registration(idp, service):
    """The department can see what is registered while it sorts the problem out."""
    body, _ = service()
    change_status(idp, body["client_id"], "suspend")
    response = manage("GET", body)
    assert response.status_code == 200
    assert response.json()["client_id"] == body["client_id"]


def test_reinstating_restores_a_department_switch_off(idp, service, browser):
    """A suspension does not undo what the department decided before it."""
    body, client = service()
    change_status(idp, body["client_id"], "disable", platform_admin=False)
    change_status(idp, body["client_id"], "suspend")

    assert change_status(idp, body["client_id"], "reinstate") == "disabled"
    assert "switched this service off" in browser.get(client.authorization().url).text


def test_a_status_change_made_on_stale_information_is_refused(idp, service, browser):
    """Two administrators at once: the second change was decided on a status that is gone."""
    from idp.departments.services import change_client_status
    from idp.models.client import find_client

    body, client = service()
    with idp.app.app_context():
        seen = find_client(body["client_id"])  # the department's page shows "active"
        db.session.expunge(seen)  # ...as another request read it
        db.session.execute(
            update(Client).where(Client.client_id == body["client_id"]).values(status="suspended")
        )  # meanwhile the platform suspends it
        db.session.commit()
        with pytest.raises(RegistrationError, match="changed this service's status"):
            change_client_status(seen, "disable", actor="test", platform_admin=False)

    assert "has suspended this service" in browser.get(client.authorization().url).text

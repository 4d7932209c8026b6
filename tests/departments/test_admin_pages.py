"""Platform administrators: every service, approval and suspension, initial access tokens."""

from __future__ import annotations

import re

import httpx
import pytest

from idp.extensions import db
from idp.models import InitialAccessToken, StaffMember
from tests.departments import (
    DVLA,
    PASSPORTS,
    REDIRECT_URI,
    STAFF_PASSWORD,
    StaffBrowser,
    confirmed,
    error_summary,
    make_service,
    make_staff,
    stored_client,
    visible_text,
)
from tests.support.audit import captured_log, logged_events
from tests.support.browser import CitizenBrowser
from tests.support.oidc_client import DepartmentClient

NEW_SERVICE = {
    "client_name": "Apply for a fishing licence",
    "redirect_uris": ["https://fishing.example.gov.uk/callback"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid email",
}


@pytest.fixture
def platform(idp) -> StaffBrowser:
    """A platform administrator, signed in."""
    email = make_staff(idp.app, "platform@sign-in.example.gov.uk")
    return StaffBrowser(idp.issuer).signed_in(email)


@pytest.fixture
def audit_events():
    """The audit events the IdP records while the test runs (and the raw log text)."""
    with captured_log() as stream:

        def events() -> tuple[list[dict], str]:
            text = stream.getvalue()
            return logged_events(text), text

        yield events


def citizen_browser_at(idp, client_id: str) -> tuple[CitizenBrowser, httpx.Response, str]:
    """A citizen following a department's sign-in link (PKCE S256) to the IdP."""
    client = DepartmentClient(issuer=idp.issuer, client_id=client_id, redirect_uri=REDIRECT_URI)
    attempt = client.authorization()
    browser = CitizenBrowser(idp.issuer)
    return browser, browser.follow(browser.get(attempt.url)), attempt.url


def services_listed(page: httpx.Response) -> list[str]:
    """Service names in the order the table lists them."""
    rows = page.text.split('<tbody class="govuk-table__body">', 1)[1].split("</tbody>", 1)[0]
    rows = rows.split('<tr class="govuk-table__row">')[1:]
    return [visible_text_of(row).split(" ")[0] for row in rows]


def visible_text_of(fragment: str) -> str:
    """Text of an HTML fragment."""
    return visible_text(httpx.Response(200, text=fragment))


def status_change(platform: StaffBrowser, client_id: str, button: str, **fields) -> httpx.Response:
    """Press a status button on the service page and confirm it on the page that asks; returns
    the page shown afterwards."""
    page = platform.get(f"/departments/services/{client_id}")
    response = platform.submit(
        page, fields, action=f"/departments/services/{client_id}/status", button=button
    )
    assert response.status_code == 200, visible_text(response)
    assert "Are you sure" in visible_text(response)
    response = confirmed(platform, response)
    assert response.status_code == 303, visible_text(response)
    return platform.follow(response)


def register_with(idp, token: str) -> httpx.Response:
    """POST /register as a department's deployment tooling would."""
    return httpx.post(
        idp.url("/register"), json=NEW_SERVICE, headers={"Authorization": f"Bearer {token}"}
    )


def issue_token(platform: StaffBrowser, **fields) -> httpx.Response:
    """Fill in "Create a token" on the initial access tokens page."""
    page = platform.get("/admin/initial-access-tokens")
    assert page.status_code == 200
    return platform.submit(page, {"description": "Fishing licences team", **fields}, action=None)


def shown_token(page: httpx.Response) -> str:
    """The new token the page shows once."""
    assert '<code id="new-token">' in page.text, error_summary(page)
    return page.text.split('<code id="new-token">', 1)[1].split("</code>", 1)[0]


def test_every_service_is_listed_pending_first_and_filtered_by_status(idp, platform):
    make_service(idp.app, DVLA, "Alpha-active", approved=True)
    make_service(idp.app, PASSPORTS, "Bravo-pending")
    suspended, _ = make_service(idp.app, None, "Charlie-suspended", approved=True)
    make_service(idp.app, DVLA, "Delta-pending")
    status_change(platform, suspended, "Suspend this service")

    everything = platform.get("/admin/services")

    assert everything.status_code == 200
    assert services_listed(everything) == [
        "Bravo-pending",
        "Delta-pending",
        "Alpha-active",
        "Charlie-suspended",
    ]
    text = visible_text(everything)
    assert "Bravo-pending HM Passport Office" in text
    assert "Alpha-active Driver and Vehicle Licensing Agency" in text
    pending = platform.get("/admin/services?status=pending")
    assert services_listed(pending) == ["Bravo-pending", "Delta-pending"]
    assert services_listed(platform.get("/admin/services?status=suspended")) == [
        "Charlie-suspended"
    ]
    assert "No services are switched off" in visible_text(
        platform.get("/admin/services?status=disabled")
    )
    # A department's home page sends platform staff to the list of every service.
    assert platform.get("/departments/").headers["location"] == "/admin/services"


def test_approving_a_pending_service_lets_citizens_sign_in_to_it(idp, platform, make_citizen):
    citizen = make_citizen()
    client_id, _ = make_service(idp.app, PASSPORTS, redirect_uri=REDIRECT_URI)
    _, waiting, _ = citizen_browser_at(idp, client_id)
    assert waiting.status_code == 403
    assert "You cannot sign in to this service yet" in visible_text(waiting)

    approved = status_change(platform, client_id, "Approve this service")

    assert "Status Active" in visible_text(approved)
    browser, sign_in, url = citizen_browser_at(idp, client_id)
    assert sign_in.status_code == 200
    assert "Sign in to continue to Renew your passport" in visible_text(sign_in)
    callback = browser.authorize(url, citizen["email"], citizen["password"])
    assert callback.url.startswith(REDIRECT_URI + "?") and callback.params["code"]
    # Approving twice is refused, with the reason.
    page = platform.get(f"/departments/services/{client_id}")
    assert "Approve this service" not in page.text
    again = platform.submit(
        page,
        {"action-action": "approve"},
        action=f"/departments/services/{client_id}/status",
        button="Suspend this service",
    )
    assert again.status_code == 409
    assert "cannot be approved" in visible_text(again)


def test_suspending_shows_citizens_why_and_reinstating_restores_the_service(idp, platform):
    client_id, _ = make_service(idp.app, PASSPORTS, approved=True, redirect_uri=REDIRECT_URI)

    suspended = status_change(
        platform, client_id, "Suspend this service", **{"action-reason": "phishing report"}
    )

    assert "Status Suspended" in visible_text(suspended)
    _, refused, _ = citizen_browser_at(idp, client_id)
    assert refused.status_code == 403
    assert "has suspended this service" in visible_text(refused)

    reinstated = status_change(platform, client_id, "Reinstate this service")

    assert "Status Active" in visible_text(reinstated)
    _, welcomed, _ = citizen_browser_at(idp, client_id)
    assert welcomed.status_code == 200
    assert "Sign in to continue to Renew your passport" in visible_text(welcomed)


def test_a_platform_administrator_cannot_switch_a_departments_service_off(idp, platform):
    client_id, _ = make_service(idp.app, PASSPORTS, approved=True)
    page = platform.get(f"/departments/services/{client_id}")
    assert "Switch this service off" not in page.text

    response = platform.submit(
        page,
        {"action-action": "disable"},
        action=f"/departments/services/{client_id}/status",
        button="Suspend this service",
    )

    assert response.status_code == 403
    assert stored_client(idp.app, client_id).status == "active"


def test_an_initial_access_token_from_the_page_registers_one_service(idp, platform):
    make_service(idp.app, DVLA, "Unrelated")  # creates the department to choose
    page = platform.get("/admin/initial-access-tokens")
    dvla = re.search(rf'<option value="(\d+)">{DVLA}</option>', page.text).group(1)

    issued = issue_token(platform, department=dvla, max_uses="1", lifetime_days="7")

    assert issued.status_code == 200, error_summary(issued)
    token = shown_token(issued)
    assert "shown only this once" in visible_text(issued)
    assert "Fishing licences team Driver and Vehicle Licensing Agency 0 of 1" in visible_text(
        issued
    )
    assert token not in platform.get("/admin/initial-access-tokens").text
    response = register_with(idp, token)
    assert response.status_code == 201, response.text
    registered = stored_client(idp.app, response.json()["client_id"])
    assert registered.department.name == DVLA
    assert registered.status == "pending"
    assert register_with(idp, token).status_code == 401  # used up
    assert "1 of 1" in visible_text(platform.get("/admin/initial-access-tokens"))


def test_a_revoked_initial_access_token_no_longer_registers(idp, platform):
    token = shown_token(issue_token(platform, max_uses="5", pre_approved="y"))
    page = platform.get("/admin/initial-access-tokens")
    with idp.app.app_context():
        token_id = db.session.scalar(db.select(InitialAccessToken.id))

    revoked = platform.submit(page, action=f"/admin/initial-access-tokens/{token_id}/revoke")

    assert revoked.status_code == 303
    listing = visible_text(platform.follow(revoked))
    assert "Fishing licences team - 0 of 5" in listing and "revoked" in listing
    refused = register_with(idp, token)
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_token"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_uses": "0"}, "Allow between 1 and 1000 registrations"),
        ({"lifetime_days": "100"}, "A token is valid for 1 to 90 days"),
        ({"description": ""}, "Say who the token is for"),
        ({"description": "   "}, "Say who the token is for"),
    ],
    ids=["no uses", "100 days", "no description", "blank description"],
)
def test_bad_token_requests_are_refused_with_the_problem_named(idp, platform, fields, message):
    response = issue_token(platform, **fields)

    assert response.status_code == 400
    assert error_summary(response) == [message]
    assert 'id="new-token"' not in response.text
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count(InitialAccessToken.id))) == 0


def test_department_administrators_are_refused_the_admin_pages(idp, platform):
    issue_token(platform)
    with idp.app.app_context():
        token_id = db.session.scalar(db.select(InitialAccessToken.id))
    department_admin = StaffBrowser(idp.issuer).signed_in(
        make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    )
    home = department_admin.get("/departments/")
    assert "Initial access tokens" not in home.text

    for path in ("/admin/services", "/admin/initial-access-tokens"):
        refused = department_admin.get(path)
        assert refused.status_code == 403
        assert "This page is for platform administrators." in visible_text(refused)
        assert "Back to your services" in visible_text(refused)
    csrf_token = dict(department_admin.form(home, "/staff/sign-out").fields)["csrf_token"]
    response = department_admin.http.post(
        f"/admin/initial-access-tokens/{token_id}/revoke",
        data={"csrf_token": csrf_token, "revoke-action": "revoke"},
    )
    assert response.status_code == 403
    with idp.app.app_context():
        assert db.session.get(InitialAccessToken, token_id).revoked_at is None


def test_platform_actions_are_audited_with_the_administrator_and_no_credentials(
    idp, audit_events, platform
):
    client_id, _ = make_service(idp.app, PASSPORTS)
    with idp.app.app_context():
        staff_id = db.session.scalar(db.select(StaffMember.id))

    status_change(platform, client_id, "Approve this service")
    token = shown_token(issue_token(platform))

    events, text = audit_events()
    approved = next(e for e in events if e["event"] == "client.approved")
    assert approved["client_id"] == client_id
    assert approved["actor"] == f"staff {staff_id}"
    assert (approved["previous_status"], approved["status"]) == ("pending", "active")
    issued = next(e for e in events if e["event"] == "initial_access_token.issued")
    assert issued["actor"] == f"staff {staff_id}"
    assert token not in text
    assert STAFF_PASSWORD not in text


def test_a_suspension_is_audited_as_client_suspended_with_the_reason(idp, audit_events, platform):
    client_id, _ = make_service(idp.app, PASSPORTS, approved=True)

    status_change(platform, client_id, "Suspend this service", **{"action-reason": "phishing"})

    events, _ = audit_events()
    assert [e["reason"] for e in events if e["event"] == "client.suspended"] == ["phishing"]


def test_refused_status_changes_are_explained_in_plain_english(idp, platform):
    client_id, _ = make_service(idp.app, PASSPORTS, approved=True)
    status_url = f"/departments/services/{client_id}/status"
    page = platform.get(f"/departments/services/{client_id}")
    approve = platform.submit(page, {"action-action": "approve"}, action=status_url)
    status_change(platform, client_id, "Suspend this service")
    page = platform.get(f"/departments/services/{client_id}")
    suspend = platform.submit(page, {"action-action": "suspend"}, action=status_url)

    assert "An active service cannot be approved." in visible_text(approve)
    assert "A suspended service cannot be suspended." in visible_text(suspend)


def test_an_approval_is_confirmed_first_and_then_shown_in_a_success_banner(idp, platform):
    client_id, _ = make_service(idp.app, PASSPORTS)
    page = platform.get(f"/departments/services/{client_id}")
    status_url = f"/departments/services/{client_id}/status"

    asked = platform.submit(page, action=status_url, button="Approve this service")

    # A page that asks, says what follows, and has changed nothing yet.
    assert asked.status_code == 200
    text = visible_text(asked)
    assert "Are you sure you want to approve this service?" in text
    assert "Service Renew your passport Department HM Passport Office" in text
    assert "Citizens can then sign in to it" in text
    assert stored_client(idp.app, client_id).status == "pending"
    cancel = re.search(r'<a class="govuk-link" href="([^"]+)">Cancel</a>', asked.text)
    assert cancel.group(1) == f"/departments/services/{client_id}"

    done = confirmed(platform, asked)

    assert done.status_code == 303
    shown = platform.follow(done)
    banner = re.search(
        r'<div class="govuk-notification-banner govuk-notification-banner--success"'
        r".*?</div>\s*</div>",
        shown.text,
        re.S,
    )
    assert banner and "The service is approved: citizens can now sign in to it." in banner.group(0)
    assert stored_client(idp.app, client_id).status == "active"
    # Reloading the page later shows no banner.
    assert (
        "govuk-notification-banner" not in platform.get(f"/departments/services/{client_id}").text
    )


def test_a_suspension_is_confirmed_with_its_reason_and_reinstating_says_so(idp, platform):
    client_id, _ = make_service(idp.app, PASSPORTS, approved=True)
    page = platform.get(f"/departments/services/{client_id}")
    status_url = f"/departments/services/{client_id}/status"

    asked = platform.submit(
        page, {"action-reason": "phishing report"}, action=status_url, button="Suspend this service"
    )

    assert "Reason phishing report" in visible_text(asked)
    assert stored_client(idp.app, client_id).status == "active"
    suspended = platform.follow(confirmed(platform, asked))
    assert "The service is suspended: citizens cannot sign in to it." in visible_text(suspended)
    reinstated = status_change(platform, client_id, "Reinstate this service")
    assert "The service is reinstated." in visible_text(reinstated)
    assert stored_client(idp.app, client_id).status == "active"


def test_staff_pages_are_in_english_only(idp, platform):
    welsh = platform.http.get("/admin/services", params={"lang": "cy"})
    assert welsh.status_code == 200
    assert '<html lang="en"' in welsh.text
    assert "Cymraeg" not in welsh.text and "Every service" in visible_text(welsh)
    # Even with the citizen's Welsh remembered in the same browser.
    platform.http.cookies.set("idp_lang", "cy")
    page = platform.get("/admin/services")
    assert '<html lang="en"' in page.text and "Cymraeg" not in page.text
    assert "Skip to main content" in page.text
    signed_out = StaffBrowser(idp.issuer)
    signed_out.http.cookies.set("idp_lang", "cy")
    sign_in = signed_out.get("/staff/sign-in?lang=cy")
    assert '<html lang="en"' in sign_in.text and "Staff sign in" in visible_text(sign_in)


# -- Departments' names in Welsh ---------------------------------------------------------------


def test_a_platform_administrator_gives_a_department_its_welsh_name(idp, platform, make_citizen):
    make_service(idp.app, DVLA, "View your driving licence", approved=True)
    make_staff(idp.app, "hmrc@sign-in.example.gov.uk", department="HM Revenue & Customs")

    page = platform.get("/admin/departments")
    assert page.status_code == 200
    rows = [line for line in visible_text(page).splitlines() if "Driver and" in line]
    assert rows and "Not given" in rows[0]
    change = re.search(
        r'href="(/admin/departments/\d+/welsh-name)">Change<span class="govuk-visually-hidden">'
        r" the Welsh name of Driver and Vehicle Licensing Agency",
        page.text,
    )
    form_page = platform.get(change.group(1))
    saved = platform.submit(form_page, {"name_cy": "Asiantaeth Trwyddedu Gyrwyr a Cherbydau"})
    assert saved.status_code in (302, 303)
    listing = platform.follow(saved)
    assert "The department's Welsh name was saved." in listing.text
    assert "Asiantaeth Trwyddedu Gyrwyr a Cherbydau" in listing.text
    with idp.app.app_context():
        from idp.models import AuditEntry, Department

        department = db.session.scalar(db.select(Department).filter_by(name=DVLA))
        assert department.name_in("cy") == "Asiantaeth Trwyddedu Gyrwyr a Cherbydau"
        entry = db.session.scalars(
            db.select(AuditEntry).filter_by(event="department.welsh_name_changed")
        ).all()[-1]
        assert entry.details["actor"].startswith("staff ")

    # Emptied: the English name again.
    platform.submit(platform.get(change.group(1)), {"name_cy": ""})
    with idp.app.app_context():
        department = db.session.scalar(db.select(Department).filter_by(name=DVLA))
        assert department.name_cy is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 201, "at most 200 characters"),
        ("Cyllid\u0007", "without control characters"),
    ],
)
def test_a_welsh_name_that_cannot_be_used_is_explained(idp, platform, value, message):
    make_service(idp.app, DVLA, "View your driving licence")
    with idp.app.app_context():
        from idp.models import Department

        department_id = db.session.scalar(db.select(Department.id).filter_by(name=DVLA))
    page = platform.get(f"/admin/departments/{department_id}/welsh-name")
    refused = platform.submit(page, {"name_cy": value})
    assert refused.status_code == 400
    assert any(message in item for item in error_summary(refused)), error_summary(refused)


def test_only_platform_administrators_change_departments(idp):
    email = make_staff(idp.app, "dvla@sign-in.example.gov.uk", department=DVLA)
    department_admin = StaffBrowser(idp.issuer).signed_in(email)
    assert department_admin.get("/admin/departments").status_code == 403
    assert department_admin.get("/admin/departments/1/welsh-name").status_code == 403


def test_an_unknown_department_is_not_found(idp, platform):
    assert platform.get("/admin/departments/999999/welsh-name").status_code == 404

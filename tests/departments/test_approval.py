"""What a platform administrator approves is what citizens meet: one exact version of a
service's settings, under a name no other active service has, with a logo the IdP fetched
and serves itself. Driven over HTTP through the staff pages and the registration API."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.departments import (
    DVLA,
    PASSPORTS,
    REDIRECT_URI,
    StaffBrowser,
    confirmed,
    error_summary,
    make_service,
    make_staff,
    stored_client,
    visible_text,
)
from tests.departments.test_department_pages import (
    citizen_opens,
    register_through_form,
    shown_code,
)
from tests.support.audit import captured_log, logged_events
from tests.support.registration import issue_token, manage, register, replacement


def png_image() -> bytes:
    """A real 1x1 PNG (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


class LogoServer:
    """A department's web server with its logo at /logo: what it sends, and who asked."""

    def __init__(self) -> None:
        self.body = png_image()
        self.content_type = "image/png"
        self.status = 200
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                self.send_response(owner.status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, format: str, *args) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/logo"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def logo_server() -> Iterator[LogoServer]:
    """The department's logo on a loopback port (the test IdP may fetch from loopback)."""
    server = LogoServer()
    yield server
    server.close()


@pytest.fixture
def platform(idp) -> StaffBrowser:
    """A platform administrator, signed in."""
    email = make_staff(idp.app, "platform@sign-in.example.gov.uk")
    return StaffBrowser(idp.issuer).signed_in(email)


@pytest.fixture
def department(idp) -> StaffBrowser:
    """HM Passport Office's administrator, signed in."""
    email = make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    return StaffBrowser(idp.issuer).signed_in(email)


@pytest.fixture
def audit_events():
    """The audit events recorded while the test runs."""
    with captured_log() as stream:
        yield lambda: logged_events(stream.getvalue())


def service_path(client_id: str) -> str:
    return f"/departments/services/{client_id}"


def press(browser: StaffBrowser, client_id: str, button: str, **fields) -> httpx.Response:
    """Press a status button on the service page (and confirm it where a confirmation page
    comes first); returns the response to the press."""
    page = browser.get(service_path(client_id))
    pressed = browser.submit(
        page, fields, action=f"{service_path(client_id)}/status", button=button
    )
    return confirmed(browser, pressed)


def pressed(browser: StaffBrowser, client_id: str, button: str, **fields) -> httpx.Response:
    """Press a status button that works; returns the service page shown afterwards."""
    response = press(browser, client_id, button, **fields)
    assert response.status_code == 303, visible_text(response)
    return browser.follow(response)


def edit(browser: StaffBrowser, client_id: str, **fields) -> httpx.Response:
    """Change the service's settings on its page; returns the response to the form."""
    page = browser.get(service_path(client_id))
    return browser.submit(page, fields, action=service_path(client_id))


def status_shown(browser: StaffBrowser, client_id: str) -> str:
    """The status the service page shows."""
    text = visible_text(browser.get(service_path(client_id)))
    return text.split(" Status ", 1)[1].split(" Client authentication", 1)[0]


# Item: a change waiting for approval stays waiting whatever its department does.


def test_switching_off_and_on_does_not_activate_a_change_waiting_for_approval(
    idp, department, platform
):
    client_id = shown_code(register_through_form(department), "client-id")
    pressed(platform, client_id, "Approve this service")
    assert citizen_opens(idp, client_id).status_code == 200
    changed = edit(department, client_id, **{"edit-client_name": "Renew a passport today"})
    assert changed.status_code == 303, error_summary(changed)
    assert status_shown(department, client_id) == "Waiting for approval"

    pressed(department, client_id, "Switch this service off", **{"action-reason": "testing"})
    back_on = pressed(department, client_id, "Switch this service back on")

    assert "Status Waiting for approval" in visible_text(back_on)
    refused = citizen_opens(idp, client_id)
    assert refused.status_code == 403
    assert "You cannot sign in to this service yet" in visible_text(refused)
    # A further edit that needs no approval of its own does not approve the earlier one.
    edit(department, client_id, **{"edit-contacts": "team@passports.example.gov.uk"})
    assert citizen_opens(idp, client_id).status_code == 403
    approved = pressed(platform, client_id, "Approve this service")
    assert "Status Active" in visible_text(approved)
    assert "Sign in to continue to Renew a passport today" in visible_text(
        citizen_opens(idp, client_id)
    )


def test_an_approval_of_an_older_version_does_not_activate_a_newer_one(
    idp, department, platform, audit_events
):
    client_id = shown_code(register_through_form(department), "client-id")
    seen_by_platform = platform.get(service_path(client_id))  # version 1 on screen
    edit(department, client_id, **{"edit-redirect_uris": "https://passport.example.gov.uk/new"})

    stale = platform.submit(
        seen_by_platform,
        action=f"{service_path(client_id)}/status",
        button="Approve this service",
    )

    assert stale.status_code == 409
    assert "you saw version 1 and it is now version 2" in visible_text(stale)
    assert stored_client(idp.app, client_id).status == "pending"
    approved = pressed(platform, client_id, "Approve this service")
    assert "Status Active" in visible_text(approved)
    stored = stored_client(idp.app, client_id)
    canonical = json.dumps(stored.client_metadata, sort_keys=True, separators=(",", ":"))
    event = next(e for e in audit_events() if e["event"] == "client.approved")
    assert event["version"] == 2
    assert event["metadata_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert event["actor"].startswith("staff ")


def test_a_registration_api_change_stays_waiting_through_off_and_on(idp, department, platform):
    token = issue_token(idp, pre_approved=True, department=PASSPORTS)
    registration = register(
        idp,
        {"client_name": "Passport photos", "redirect_uris": [REDIRECT_URI], "scope": "openid"},
        token,
    ).json()
    client_id = registration["client_id"]
    assert citizen_opens(idp, client_id).status_code == 200
    put = manage(
        "PUT",
        registration,
        replacement(registration, client_name="Passport photo checks"),
    )
    assert put.status_code == 200, put.text

    pressed(department, client_id, "Switch this service off")
    pressed(department, client_id, "Switch this service back on")

    assert stored_client(idp.app, client_id).status == "pending"
    assert citizen_opens(idp, client_id).status_code == 403


# Item: no two active services share a name.


def test_a_new_service_cannot_take_an_active_services_name(idp, department):
    make_service(idp.app, DVLA, "Renew your passport", approved=True)

    refused = register_through_form(department, client_name="  renew YOUR   Passport ")

    assert refused.status_code == 400
    assert any("already the name of another active service" in e for e in error_summary(refused))
    assert "Renew a passport" not in refused.text
    accepted = register_through_form(department, client_name="Renew your passport (Wales)")
    assert accepted.status_code == 200, error_summary(accepted)


def test_the_registration_api_refuses_an_active_services_name(idp):
    make_service(idp.app, DVLA, "Fishing licences", approved=True)
    token = issue_token(idp, max_uses=2)
    metadata = {"client_name": "FISHING  licences", "redirect_uris": [REDIRECT_URI]}

    refused = register(idp, metadata, token)

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
    assert refused.json()["error_description"].startswith("client_name:")
    registration = register(idp, {**metadata, "client_name": "Sea fishing"}, token).json()
    renamed = manage("PUT", registration, replacement(registration, client_name="Fishing Licences"))
    assert renamed.status_code == 400
    assert renamed.json()["error_description"].startswith("client_name:")
    assert manage("GET", registration).json()["client_name"] == "Sea fishing"


@pytest.mark.parametrize(
    "look_alike",
    [
        "\uff32enew your passport",  # a full-width R
        "Renew your passport.",
        "Renew-your passport",
        "\u00a9 Renew your passport",  # a copyright sign
        "RENEW YOUR PASSPORT!",
    ],
)
def test_a_name_that_looks_like_an_active_services_name_is_refused(idp, look_alike):
    make_service(idp.app, DVLA, "Renew your passport", approved=True)
    token = issue_token(idp)

    refused = register(idp, {"client_name": look_alike, "redirect_uris": [REDIRECT_URI]}, token)

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_client_metadata"
    assert "is already the name of another active service" in refused.json()["error_description"]


def test_a_name_mixing_latin_with_cyrillic_or_greek_letters_is_refused(idp, department):
    make_service(idp.app, DVLA, "Renew your passport", approved=True)
    token = issue_token(idp, max_uses=2)
    # The a of "pаssport" is Cyrillic: the name reads exactly like the active service's.
    for name, script in (
        ("Renew your p\u0430ssport", "Cyrillic"),
        ("Renew y\u03bfur car", "Greek"),
    ):
        refused = register(idp, {"client_name": name, "redirect_uris": [REDIRECT_URI]}, token)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_client_metadata"
        assert refused.json()["error_description"].startswith(
            f"client_name mixes Latin and {script} letters"
        )
    on_the_page = register_through_form(department, client_name="Renew your p\u0430ssport")
    assert on_the_page.status_code == 400
    assert any("mixes Latin and Cyrillic letters" in e for e in error_summary(on_the_page))
    # One alphabet throughout is a name like any other.
    greek = register(
        idp,
        {
            "client_name": "\u0394\u03b9\u03b1\u03b2\u03b1\u03c4\u03ae\u03c1\u03b9\u03bf",
            "redirect_uris": [REDIRECT_URI],
        },
        token,
    )
    assert greek.status_code == 201, greek.text


@pytest.mark.both_databases
def test_approving_a_service_whose_name_is_now_taken_is_refused(idp, platform):
    waiting, _ = make_service(idp.app, PASSPORTS, "Check your state pension")
    make_service(idp.app, DVLA, "Check your State Pension", approved=True)

    refused = press(platform, waiting, "Approve this service")

    assert refused.status_code == 409
    assert "is the name of the active service" in visible_text(refused)
    assert stored_client(idp.app, waiting).status == "pending"


# Item: the IdP fetches the logo at approval and serves it; citizens never reach the department.


def test_the_logo_is_fetched_at_approval_and_served_by_the_idp(
    idp, department, platform, logo_server
):
    registered = register_through_form(department, logo_uri=logo_server.url)
    client_id = shown_code(registered, "client-id")
    assert logo_server.requests == 0

    pressed(platform, client_id, "Approve this service")
    assert logo_server.requests == 1
    sign_in = citizen_opens(idp, client_id)

    assert sign_in.status_code == 200
    assert logo_server.requests == 1  # the citizen's visit told the department nothing
    assert (
        logo_server.url not in sign_in.text
        and "127.0.0.1" not in sign_in.text.split('class="idp-service-logo"', 1)[1].split(">", 1)[0]
    )
    digest = hashlib.sha256(logo_server.body).hexdigest()
    path = f"/logos/{client_id}/{digest}"
    assert f'src="{path}"' in sign_in.text
    logo = httpx.get(idp.url(path))
    assert logo.status_code == 200
    assert logo.content == logo_server.body
    assert logo.headers["content-type"] == "image/png"
    assert logo.headers["x-content-type-options"] == "nosniff"
    assert "max-age=31536000" in logo.headers["cache-control"]
    assert httpx.get(idp.url(f"/logos/{client_id}/{'0' * 64}")).status_code == 404


@pytest.mark.both_databases
def test_a_logo_is_served_only_while_its_service_is_active(idp, department, platform, logo_server):
    client_id = shown_code(register_through_form(department, logo_uri=logo_server.url), "client-id")
    pressed(platform, client_id, "Approve this service")
    path = f"/logos/{client_id}/{hashlib.sha256(logo_server.body).hexdigest()}"
    assert httpx.get(idp.url(path)).status_code == 200

    pressed(platform, client_id, "Suspend this service", **{"action-reason": "phishing report"})
    assert httpx.get(idp.url(path)).status_code == 404
    pressed(platform, client_id, "Reinstate this service")
    assert httpx.get(idp.url(path)).status_code == 200
    edit(department, client_id, **{"edit-client_name": "Renew a passport today"})
    assert status_shown(department, client_id) == "Waiting for approval"
    assert httpx.get(idp.url(path)).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/logos/a%00b/x",
        "/logos/{client_id}/%00",
        "/logos/{client_id}/{upper}",
        "/logos/{client_id}/x",
    ],
)
def test_a_logo_address_that_names_nothing_is_404(idp, department, platform, logo_server, path):
    client_id = shown_code(register_through_form(department, logo_uri=logo_server.url), "client-id")
    pressed(platform, client_id, "Approve this service")
    upper = hashlib.sha256(logo_server.body).hexdigest().upper()

    response = httpx.get(idp.url(path.format(client_id=client_id, upper=upper)))

    assert response.status_code == 404
    assert "There is no such" in response.text or "not found" in response.text.lower()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    ("content_type", "body", "status", "reason"),
    [
        ("image/svg+xml", SVG, 200, "SVG image"),
        ("text/html", b"<html>hello</html>", 200, "content type text/html"),
        ("image/png", b"GIF89a not a png at all", 200, "the bytes are not a image/png image"),
        ("image/png", png_image() + b"\x00" * 200_000, 200, "is larger than 102400 bytes"),
        ("image/png", png_image(), 404, "answered HTTP 404"),
    ],
    ids=["svg", "not-an-image", "lying-type", "too-large", "missing"],
)
def test_an_unusable_logo_does_not_stop_the_approval_and_the_reason_is_shown(
    idp, department, platform, logo_server, audit_events, content_type, body, status, reason
):
    logo_server.content_type, logo_server.body, logo_server.status = content_type, body, status
    client_id = shown_code(register_through_form(department, logo_uri=logo_server.url), "client-id")

    approved = pressed(platform, client_id, "Approve this service")

    text = visible_text(approved)
    assert "Status Active" in text
    assert "Logo Not shown to citizens: logo_uri" in text and reason in text
    refusal = next(e for e in audit_events() if e["event"] == "client.logo_refused")
    assert refusal["client_id"] == client_id and reason in refusal["reason"]
    sign_in = citizen_opens(idp, client_id)
    assert sign_in.status_code == 200
    assert 'class="idp-service-logo"' not in sign_in.text and logo_server.url not in sign_in.text


def test_a_welsh_name_that_is_another_active_services_name_is_refused(idp):
    """Citizens reading the pages in Welsh see client_name#cy: it may not be (or look like)
    another active service's name in either language, nor its English name another's Welsh."""
    make_service(
        idp.app,
        DVLA,
        "Renew your passport",
        approved=True,
        **{"client_name#cy": "Adnewyddu eich pasbort"},
    )
    token = issue_token(idp, max_uses=3)
    for metadata, field in (
        ({"client_name": "Passports", "client_name#cy": "ADNEWYDDU  eich pasbort!"}, "#cy"),
        ({"client_name": "Pasbortau", "client_name#cy": "Renew your passport"}, "#cy"),
        ({"client_name": "Adnewyddu eich pasbort"}, "client_name"),
    ):
        refused = register(idp, {**metadata, "redirect_uris": [REDIRECT_URI]}, token)
        assert refused.status_code == 400, metadata
        description = refused.json()["error_description"]
        assert "is already the name of another active service" in description, description
        assert field in description.split(":")[0], description
    fine = register(
        idp,
        {
            "client_name": "Passports",
            "client_name#cy": "Pasbortau",
            "redirect_uris": [REDIRECT_URI],
        },
        token,
    )
    assert fine.status_code == 201, fine.text

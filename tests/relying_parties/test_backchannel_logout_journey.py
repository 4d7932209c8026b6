"""The sample departments against the real IdP: signing out at one department ends the citizen's
single sign-on session, and the IdP's back-channel logout signs them out of the others too."""

import threading
import time
from collections.abc import Iterator

import pytest
from waitress import create_server

from idp.departments.services import register_client
from relying_parties import driving, tax
from relying_parties.common import DepartmentSettings
from tests.conftest import free_port
from tests.support.browser import CitizenBrowser

SECRET = "a-department-client-secret-" + "x" * 16
SIGNED_IN = "You are signed in"


def serve(app, port: int):
    """Serve a department over HTTP in a background thread; returns the server."""
    server = create_server(app, host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=server.run, daemon=True).start()
    return server


@pytest.fixture
def departments(idp, tmp_path) -> Iterator[dict[str, str]]:
    """tax (ES256 ID tokens) and driving (RS256), each registered with its
    backchannel_logout_uri and served over HTTP; their base URLs by name."""
    urls, servers = {}, []
    for module, name, alg in ((tax, "tax", "ES256"), (driving, "driving", "RS256")):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        settings = DepartmentSettings(
            name=name,
            department=f"The {name} department",
            client_id=name,
            base_url=base_url,
            issuer=idp.issuer,
            token_endpoint_auth_method="client_secret_basic",
            client_secret=SECRET,
            scope="openid email",
            instance_path=str(tmp_path / name),
        )
        with idp.app.app_context():
            register_client(
                name,
                {
                    "client_name": name,
                    "redirect_uris": [settings.redirect_uri],
                    "post_logout_redirect_uris": [settings.post_logout_redirect_uri],
                    "backchannel_logout_uri": settings.backchannel_logout_uri,
                    "backchannel_logout_session_required": True,
                    "token_endpoint_auth_method": "client_secret_basic",
                    "id_token_signed_response_alg": alg,
                    "subject_type": "public",
                    "scope": "openid email",
                },
                SECRET,
            )
        servers.append(serve(module.create_app(settings), port))
        urls[name] = base_url
    yield urls
    for server in servers:
        server.close()


def sign_in(browser: CitizenBrowser, base_url: str, citizen: dict) -> None:
    """Sign in at the department through the IdP (single sign-on after the first time)."""
    started = browser.http.get(f"{base_url}/sign-in")
    callback = browser.authorize(started.headers["location"], citizen["email"], citizen["password"])
    assert browser.http.get(callback.url).headers["location"] == "/account"
    assert SIGNED_IN in browser.http.get(f"{base_url}/").text


def signed_out_within(browser: CitizenBrowser, base_url: str, seconds: float = 15) -> bool:
    """Whether the department's start page shows the citizen signed out within seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if SIGNED_IN not in browser.http.get(f"{base_url}/").text:
            return True
        time.sleep(0.2)
    return False


def test_signing_out_at_one_department_signs_the_citizen_out_of_the_others(
    idp, make_citizen, departments
):
    citizen = make_citizen("everywhere@example.com")
    browser = CitizenBrowser(idp.issuer)
    other_browser = CitizenBrowser(idp.issuer)
    other_citizen = make_citizen("elsewhere@example.com")
    for base_url in departments.values():
        sign_in(browser, base_url, citizen)
    sign_in(other_browser, departments["driving"], other_citizen)

    # RP-initiated logout at tax ends the citizen's session at the IdP.
    signed_out = browser.http.post(f"{departments['tax']}/sign-out")
    page = browser.http.get(signed_out.headers["location"])
    assert page.status_code == 200
    assert "You have signed out" in page.text

    assert signed_out_within(browser, departments["driving"])
    assert browser.http.get(f"{departments['driving']}/account").headers["location"] == "/"
    assert SIGNED_IN in other_browser.http.get(f"{departments['driving']}/").text

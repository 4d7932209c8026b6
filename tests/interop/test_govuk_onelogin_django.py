"""govuk-onelogin-django (written for GOV.UK One Login) in a department's Django service, set up
as its README says, pointed at this IdP's discovery URL: Django's login view -> sign-in with both
factors -> consent -> callback, where the package redeems the code with private_key_jwt,
validates the ID token itself (signature, iss, aud, nonce, at_hash), reads UserInfo and signs the
citizen in; then sign-out through the IdP (RP-initiated logout with the ID token as hint) and
back-channel logout to the package's endpoint.

The package always asks vtr ["Cl.Cm.P0"] and sends no PKCE, so the department registers
"require_pkce": false (the package always sends a nonce). It pins an older Authlib than the
IdP, so the service runs in its own virtualenv (`make interop`). SQLite only: the journey starts
a Django process and is about the IdP's protocol, which the other interop tests already run on
both databases.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import SERVICES_REQUIRED, free_port
from tests.interop.journey import discovery_url, sign_in_at_the_idp, sign_out_at_the_idp
from tests.support.oidc_client import make_rsa_key

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv-interop" / "govuk" / "bin" / "python"
APP_DIR = Path(__file__).resolve().parent / "django_app"

pytestmark = pytest.mark.processes


@pytest.fixture
def sqlite_only(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the Django journey runs on SQLite only: it starts a Django process each time")


@pytest.fixture
def django_python() -> Path:
    if not VENV_PYTHON.exists():
        reason = "the govuk-onelogin-django virtualenv is missing: run `make interop`"
        if SERVICES_REQUIRED:
            pytest.fail(f"IDP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return VENV_PYTHON


class DjangoService:
    """The department's Django service, a separate process on a free port of localhost."""

    def __init__(self, python: Path, env: dict[str, str], workdir: Path):
        self.port = free_port()
        # The package rewrites 127.0.0.1 to localhost in its redirect_uri: the browser uses it.
        self.base = f"http://localhost:{self.port}"
        self.log = (workdir / "django.log").open("w+")
        self.env = {**os.environ, **env, "DJANGO_SETTINGS_MODULE": "department.settings"}
        self.env["PYTHONPATH"] = str(APP_DIR)
        manage = [str(python), "-m", "django"]
        subprocess.run(
            [*manage, "migrate", "--noinput"],
            env=self.env,
            cwd=workdir,
            check=True,
            stdout=self.log,
            stderr=self.log,
        )
        self.process = subprocess.Popen(
            [*manage, "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            env=self.env,
            cwd=workdir,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.base + "/", timeout=1)
                return
            except httpx.TransportError:
                assert self.process.poll() is None, self.output()
                time.sleep(0.1)
        raise AssertionError("the Django service did not start: " + self.output())

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def department(idp, make_client, django_python, sqlite_only, tmp_path):
    """Registered at the IdP as One Login registers a service (private_key_jwt with its public
    key, its callback, its back-channel logout endpoint), then started with its settings."""
    key = make_rsa_key()
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    env = {
        "DEPARTMENT_SECRET_KEY": secrets.token_urlsafe(32),
        "DEPARTMENT_DATABASE": str(tmp_path / "department.sqlite3"),
        "GOV_UK_ONE_LOGIN_CLIENT_ID": "govuk-django",
        "GOV_UK_ONE_LOGIN_CLIENT_SECRET": base64.b64encode(pem).decode(),
        "GOV_UK_ONE_LOGIN_OPENID_CONFIG_URL": discovery_url(idp),
    }
    service = DjangoService(django_python, env, tmp_path)
    try:
        make_client(
            "govuk-django",
            auth_method="private_key_jwt",
            redirect_uri=f"{service.base}/one-login/callback/",
            scope="openid email",
            jwks={"keys": [key.public_jwk()]},
            require_pkce=False,
            post_logout_redirect_uris=[f"{service.base}/signed-out/"],
            backchannel_logout_uri=f"{service.base}/one-login/back-channel-logout/",
            subject_type="pairwise",
        )
        yield service
    finally:
        service.close()


def test_govuk_onelogin_django_whole_journey(idp, citizen, browser, department):
    # The citizen's browser keeps the department's cookies and the IdP's.
    site = browser.http
    start = site.get(department.base + "/one-login/login/")
    assert start.status_code == 302, department.output()
    authorize_url = start.headers["location"]
    assert authorize_url.startswith(idp.issuer)
    assert "vtr=%5B%22Cl.Cm.P0%22%5D" in authorize_url  # the package's One Login vector

    callback_url = sign_in_at_the_idp(browser, authorize_url, citizen)
    assert callback_url.startswith(department.base + "/one-login/callback/")
    signed_in = site.get(callback_url)
    assert signed_in.status_code == 302, department.output()
    account = site.get(department.base + signed_in.headers["location"])
    assert account.status_code == 200, department.output()
    assert f"Signed in as {citizen['email']}" in account.text

    # Sign-out as the package's example does it: out of the service, then out of the IdP.
    leaving = site.get(department.base + "/sign-out/")
    assert leaving.status_code == 302, department.output()
    back = sign_out_at_the_idp(browser, leaving.headers["location"])
    assert back == department.base + "/signed-out/"
    assert site.get(department.base + "/account/").status_code == 302


def test_govuk_onelogin_django_back_channel_logout(idp, citizen, browser, department):
    """Signing the citizen out at the IdP reaches the package's back-channel endpoint, which
    ends the citizen's session in the service."""
    from idp.accounts.sessions import end_every_session
    from idp.extensions import db

    site = browser.http
    start = site.get(department.base + "/one-login/login/")
    callback_url = sign_in_at_the_idp(browser, start.headers["location"], citizen)
    assert site.get(callback_url).status_code == 302, department.output()
    assert site.get(department.base + "/account/").status_code == 200

    with idp.app.app_context():
        end_every_session(citizen["id"], "administrator")
        db.session.commit()

    deadline = time.monotonic() + 15
    while site.get(department.base + "/account/").status_code == 200:
        assert time.monotonic() < deadline, "the service never heard: " + department.output()
        time.sleep(0.2)

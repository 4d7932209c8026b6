"""Fixtures: the IdP on SQLite and on PostgreSQL, served over real HTTP, and test data."""

from __future__ import annotations

import functools
import json
import os
import secrets
import socket
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit, urlunsplit

import pyotp
import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from waitress import create_server

from idp import clock as idp_clock
from idp import create_app
from idp.departments.services import register_client
from idp.extensions import db
from idp.oidc.client_keys import forget_cached_keys
from idp.operations.worker import start_worker, stop_worker
from idp.settings import load_settings
from tests.support.evidence import serve_evidence_services
from tests.support.oidc_client import DepartmentClient, make_rsa_key, restart_rsa_pool

SERVICES_REQUIRED = os.environ.get("IDP_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("IDP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
KEPT_TABLES = {"signing_key", "alembic_version"}
CITIZEN_PASSWORD = "a long and memorable passphrase"


@event.listens_for(Engine, "connect")
def _sqlite_without_waiting_for_the_disk(dbapi_connection, connection_record) -> None:
    """The tests' SQLite files are thrown away: a commit need not wait for the disk (PRAGMA
    synchronous=OFF), which took a tenth of the run. What a commit makes visible to other
    connections, locking and WAL are as in production (idp._sqlite_pragmas)."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=OFF")


def _one_ssl_context_per_kind() -> None:
    """httpx reads the whole certificate bundle into a new SSL context for every client it
    makes (each CitizenBrowser and department client, each httpx.get): a fifth of the run. One
    context for each kind of verification serves them all and checks the same. (httpx's own
    helper is wrapped where its transports call it; without it, nothing changes but speed.)"""
    from httpx._transports import default

    create = getattr(default, "create_ssl_context", None)
    if create is None:
        return
    made: dict[tuple[bool, bool], ssl.SSLContext] = {}

    def shared(verify=True, cert=None, trust_env=True) -> ssl.SSLContext:
        if cert is not None or not isinstance(verify, bool):
            return create(verify=verify, cert=cert, trust_env=trust_env)
        key = (verify, trust_env)
        if key not in made:
            made[key] = create(verify=verify, trust_env=trust_env)
        return made[key]

    default.create_ssl_context = shared


_one_ssl_context_per_kind()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_or_skip() -> str:
    """A fresh PostgreSQL database for this test session, or a skip with the reason."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_URL, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        reason = f"PostgreSQL is not reachable at {urlsplit(POSTGRES_URL).netloc}: {exc}"
        if SERVICES_REQUIRED:
            pytest.fail(f"IDP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    name = f"idp_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _drop_postgres(url: str) -> None:
    """Drop a test database."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that touches the IdP runs on the embedded default, SQLite; one marked
    `both_databases` on PostgreSQL as well: storage, locking, concurrency, migrations, the
    production path, code with a branch for each database, a unique constraint refusing a
    duplicate (PostgreSQL's transaction must be rolled back), and input PostgreSQL refuses where
    SQLite accepts it (NUL characters, integers beyond 64 bits). The ids stay `[sqlite]` and
    `[postgresql]`, so `-k sqlite` and `-k "not postgresql"` choose as before."""
    if "database_url" not in metafunc.fixturenames:
        return
    both = metafunc.definition.get_closest_marker("both_databases") is not None
    databases = DATABASES if both else DATABASES[:1]
    metafunc.parametrize("database_url", databases, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """The database of the session's IdP: a fresh SQLite file, or a fresh PostgreSQL database
    (pytest_generate_tests chooses which tests get which)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'idp.sqlite3'}"
        return
    url = _postgres_or_skip()
    yield url
    _drop_postgres(url)


class LiveIdP:
    """A running IdP: its app (for test data) and its issuer URL (for HTTP)."""

    def __init__(self, app: Flask, issuer: str, server=None):
        self.app = app
        self.issuer = issuer
        self.server = server

    def url(self, path: str) -> str:
        """An absolute URL on the IdP."""
        return self.issuer + path

    def close(self) -> None:
        """Stop serving and release the database connections."""
        if self.server is not None:
            self.server.close()
        stop_worker(self.app)
        with self.app.app_context():
            db.engine.dispose()


def serve_idp(
    database_url: str,
    instance_path: str,
    threads: int = 4,
    issuer_host: str = "127.0.0.1",
    url_scheme: str = "http",
    **overrides,
) -> LiveIdP:
    """An IdP migrated and served over HTTP by waitress on a free port; overrides are settings.

    Several may share one database and instance folder, as processes behind a load balancer do.
    issuer_host names the loopback address in the issuer: "localhost" where a browser needs a
    host name rather than an IP address (a WebAuthn RP ID cannot be one). url_scheme "https"
    serves plain HTTP as if behind a TLS terminator (waitress tells the app the scheme).
    """
    from flask_migrate import upgrade

    from idp.oidc.keys import ensure_signing_keys

    port = free_port()
    settings = load_settings(
        config_file=os.devnull,
        **{
            "issuer": f"http://{issuer_host}:{port}",
            "port": port,
            "database_url": database_url,
            "instance_path": instance_path,
            "departments_file": "",
            "log_level": "WARNING",
            # Back-channel logout retries quickly here, so tests see a whole retry schedule.
            "worker_poll_interval": 0.3,
            "backchannel_retry_delay": 0.3,
            "backchannel_timeout": 2.0,
            "backchannel_max_attempts": 4,
            # Every test calls from 127.0.0.1 and many send bad requests on purpose: the limits
            # on failed requests to the machine-facing endpoints are tested where lowered
            # (tests/oidc/test_failure_limits.py), not met by chance here.
            "endpoint_ip_max_failures": 1_000_000,
            "endpoint_client_max_failures": 1_000_000,
            # Each request's audit entries are chained as it ends, so the next request (and the
            # test) sees them in the chain; tests/audit/test_linker.py tests the worker's way.
            "audit_link_each_request": True,
            # argon2id at low cost: a citizen's password and ten recovery codes are hashed for
            # nearly every test, tens of milliseconds each at the production cost, and no test
            # here is about the cost. The production parameters are the defaults
            # (tests/security/test_passwords.py checks them) and the production stack runs them.
            "argon2_time_cost": 1,
            "argon2_memory_cost": 1024,
            **overrides,
        },
    )
    app = create_app(settings)
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        ensure_signing_keys()
    server = create_server(app, host="127.0.0.1", port=port, threads=threads, url_scheme=url_scheme)
    threading.Thread(target=_serve_until_closed, args=(server,), daemon=True).start()
    start_worker(app)
    return LiveIdP(app=app, issuer=settings.issuer, server=server)


def _serve_until_closed(server) -> None:
    """Run waitress's loop. LiveIdP.close closes its sockets from another thread, and a poll
    under way then fails on the closed descriptor: that is the end of serving, not an error."""
    try:
        server.run()
    except OSError:
        if server.accepting:
            raise


@pytest.fixture(autouse=True)
def _real_time_again() -> Iterator[None]:
    """Every test starts and ends on real time, whoever moved the clock."""
    idp_clock.reset()
    yield
    idp_clock.reset()


@pytest.fixture(autouse=True)
def _rsa_keys_from_the_start_of_the_pool() -> None:
    """Each test draws its RSA keys from the start of the pool (make_rsa_key). Only tests and
    function-scoped fixtures make them: a wider fixture's key could be a test's too."""
    restart_rsa_pool()


@pytest.fixture
def clock():
    """The IdP's clock (idp.clock): `clock.advance(seconds)` moves time forward for the test
    and for the live IdP (same process) instead of sleeping; `clock.time()` / `clock.now()`
    read it (compute TOTP codes and JWT times from it). Back to real time after the test."""
    return idp_clock


@pytest.fixture(scope="session")
def live_idp(database_url, tmp_path_factory) -> Iterator[LiveIdP]:
    """The IdP, migrated and served over HTTP by waitress on a free port."""
    served = serve_idp(database_url, str(tmp_path_factory.mktemp("instance")), threads=8)
    yield served
    served.close()


@pytest.fixture(scope="session")
def dev_idp(live_idp, database_url) -> Iterator[LiveIdP]:
    """A second process of the live IdP (same database and instance folder) with the
    development pages on (IDP_DEV_PAGES), as `idp demo` runs: its /dev/outbox and /dev/totp."""
    served = serve_idp(
        database_url,
        live_idp.app.config["IDP_SETTINGS"].instance_path,
        dev_pages=True,
        background_worker=False,
    )
    yield served
    served.close()


@pytest.fixture
def idp(live_idp) -> Iterator[LiveIdP]:
    """The live IdP with empty tables (signing keys kept) for each test."""
    with live_idp.app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            if table.name not in KEPT_TABLES:
                db.session.execute(table.delete())
        db.session.commit()
    forget_cached_keys()
    yield live_idp


@pytest.fixture
def app(idp) -> Flask:
    """The IdP's Flask app, for unit tests of service functions."""
    return idp.app


def new_citizen(
    idp: LiveIdP,
    email: str = "citizen@example.com",
    password: str = CITIZEN_PASSWORD,
    *,
    phone_number: str | None = None,
    phone_number_verified: bool = False,
    second_factor: bool = True,
    **kw,
) -> dict:
    """A citizen created through the account service of this IdP, with an authenticator app."""
    from idp.accounts.citizens import create_citizen
    from idp.accounts.second_factor.logic import begin_totp_enrolment, confirm_totp
    from tests.support.browser import SECOND_FACTORS, SecondFactor

    with idp.app.app_context():
        citizen = create_citizen(email, password, email_verified=True, **kw)
        if phone_number is not None:
            # Sign-up does not ask for a phone number yet: store one as test data.
            citizen.phone_number = phone_number
            citizen.phone_number_verified = phone_number_verified
            db.session.commit()
        totp_secret = None
        if second_factor:
            # Every account has an authenticator app, set up as the setup page does.
            totp_secret = begin_totp_enrolment(citizen)
            step = int(idp_clock.time() // 30)
            codes = confirm_totp(citizen, pyotp.TOTP(totp_secret).at(step * 30))
            SECOND_FACTORS[citizen.email] = SecondFactor(totp_secret, codes, last_step=step)
        return {
            "id": citizen.id,
            "email": citizen.email,
            "password": password,
            "subject": citizen.subject,
            "totp_secret": totp_secret,
        }


@pytest.fixture
def make_citizen(idp):
    """Create citizens through the account service."""
    return functools.partial(new_citizen, idp)


def new_client(
    idp: LiveIdP,
    client_id: str = "dept-a",
    *,
    auth_method: str = "client_secret_basic",
    redirect_uri: str = "https://dept-a.example.gov.uk/callback",
    client_secret: str | None = None,
    **metadata,
) -> DepartmentClient:
    """Register a department client at this IdP; an independent OIDC client for it."""
    secret = None
    key = None
    meta = {
        "client_name": f"Department {client_id}",
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": auth_method,
        "scope": "openid email phone profile",
        # Public subjects let protocol tests compare sub with the citizen's subject;
        # tests/oidc/test_pairwise.py covers the pairwise default.
        "subject_type": "public",
        **metadata,
    }
    if auth_method.startswith("client_secret"):
        secret = client_secret or secrets.token_urlsafe(32)
    elif auth_method == "private_key_jwt" and "jwks_uri" not in meta:
        key = make_rsa_key()
        meta.setdefault("jwks", {"keys": [key.public_jwk()]})
    with idp.app.app_context():
        register_client(client_id, meta, secret)
    return DepartmentClient(
        issuer=idp.issuer,
        client_id=client_id,
        redirect_uri=redirect_uri,
        auth_method=auth_method,
        client_secret=secret,
        private_key=key,
        clock=idp_clock.time,
    )


@pytest.fixture
def make_client(idp):
    """Register a department client and return an independent OIDC client for it."""
    return functools.partial(new_client, idp)


class JWKSServer:
    """A department's jwks_uri: a tiny HTTP server whose document and status a test changes."""

    def __init__(self) -> None:
        self.jwks: dict = {"keys": []}
        self.status = 200
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps(owner.jwks).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def publish(self, *public_jwks: dict) -> None:
        """Serve exactly these public keys from now on."""
        self.jwks = {"keys": list(public_jwks)}

    def close(self) -> None:
        """Stop serving (a second call does nothing)."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    """A department's own JWKS endpoint on a loopback port."""
    server = JWKSServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def evidence_services(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The four simulated evidence services (evidence/) on free ports: their base URLs by kind,
    {"passport": ..., "driving_licence": ..., "address": ..., "kbv": ...}."""
    with serve_evidence_services(str(tmp_path_factory.mktemp("evidence"))) as urls:
        yield urls


@pytest.fixture
def checking_idp(idp, evidence_services) -> Iterator[LiveIdP]:
    """The live IdP configured with the simulated evidence services for this test."""
    from idp.accounts.identity import evidence_client

    before = idp.app.config["IDP_SETTINGS"]
    idp.app.config["IDP_SETTINGS"] = before.replace(evidence_services=dict(evidence_services))
    evidence_client.forget_cached_keys()
    yield idp
    idp.app.config["IDP_SETTINGS"] = before
    evidence_client.forget_cached_keys()

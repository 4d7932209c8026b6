"""Operations: liveness and readiness, a database outage answered with 503 (never a 500),
recovery without a restart, and the client address behind a trusted proxy."""

from __future__ import annotations

import os

import httpx
import pytest
from flask import request
from flask_migrate import upgrade

from idp import create_app
from idp.extensions import db
from idp.settings import load_settings
from tests.conftest import free_port


def test_liveness_and_readiness_when_all_is_well(idp):
    live = httpx.get(idp.url("/healthz"))
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = httpx.get(idp.url("/readyz"))
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert ready.headers["Cache-Control"] == "no-store"


def unreachable_app(tmp_path, **overrides):
    """An IdP whose PostgreSQL server does not answer (nothing listens on the port)."""
    settings = load_settings(
        config_file=os.devnull,
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/idp",
        instance_path=str(tmp_path),
        departments_file="",
        log_level="CRITICAL",
        **overrides,
    )
    return create_app(settings)


def test_a_database_outage_gives_503_pages_and_temporarily_unavailable(tmp_path):
    client = unreachable_app(tmp_path).test_client()
    assert client.get("/healthz").status_code == 200  # the process itself is fine
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json() == {"status": "unavailable", "checks": {"database": "unreachable"}}
    token = client.post("/token", data={"grant_type": "authorization_code", "code": "x"})
    assert token.status_code == 503
    assert token.get_json()["error"] == "temporarily_unavailable"
    assert token.headers["Retry-After"] == "30"
    page = client.get("/authorize?client_id=tax&response_type=code")
    assert page.status_code == 503
    assert "the service is unavailable at the moment" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)
    welsh = client.get("/authorize?client_id=tax&response_type=code&ui_locales=cy")
    assert welsh.status_code == 503 and "nid yw’r gwasanaeth ar gael" in welsh.get_data(
        as_text=True
    )


def test_readiness_names_redis_when_it_does_not_answer(idp):
    settings = idp.app.config["IDP_SETTINGS"].replace(
        redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    app = create_app(settings)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "unreachable"}


def test_the_idp_recovers_by_itself_when_the_database_returns(tmp_path):
    database = tmp_path / "later" / "idp.sqlite3"
    settings = load_settings(
        config_file=os.devnull,
        database_url=f"sqlite:///{database}",
        instance_path=str(tmp_path),
        departments_file="",
        log_level="CRITICAL",
    )
    app = create_app(settings)
    client = app.test_client()
    assert client.get("/readyz").status_code == 503  # its directory does not exist yet
    authorize = "/authorize?client_id=tax&response_type=code"
    assert client.get(authorize).status_code == 503
    database.parent.mkdir()
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    assert client.get("/readyz").status_code == 200  # same process, no restart
    assert client.get(authorize).status_code == 400  # served again: an unknown service


def test_behind_a_trusted_proxy_the_citizens_address_is_used(idp, tmp_path):
    from idp import audit
    from idp.extensions import db
    from idp.models import AuditEntry

    forwarded = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    for proxies, expected in ((0, "127.0.0.1"), (1, "198.51.100.7")):
        settings = idp.app.config["IDP_SETTINGS"].replace(proxy_count=proxies)
        app = create_app(settings)

        @app.get(f"/test-address-{proxies}")
        def address():
            audit.record("test.address")
            return "ok"

        assert (
            app.test_client().get(f"/test-address-{proxies}", headers=forwarded).status_code == 200
        )
        with app.app_context():
            newest = db.session.scalars(
                db.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)
            ).one()
            assert newest.ip == expected
            db.engine.dispose()


def lose_the_connection() -> None:
    """What a PostgreSQL restart does to a request in flight: the server ends the connection
    this request's open transaction is on."""
    from sqlalchemy import text

    from idp.extensions import db

    pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.both_databases
def test_a_connection_lost_before_cleanup_leaves_the_answer_the_idp_made(idp, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("a server ending the connection is PostgreSQL's restart")
    app = create_app(idp.app.config["IDP_SETTINGS"])
    lose = {"before": set(), "after": set()}

    @app.before_request
    def before():
        if request.path in lose["before"]:
            lose_the_connection()

    @app.after_request
    def after(response):
        if request.path in lose["after"]:
            lose_the_connection()  # the answer is made; the cleanup's rollback would fail
        return response

    client = app.test_client()
    lose["after"] = {"/token", "/sign-in"}
    token = client.post("/token", data={"grant_type": "authorization_code", "code": "x"})
    assert token.status_code == 401, token.get_data(as_text=True)
    assert token.get_json()["error"] == "invalid_client"
    page = client.get("/sign-in")
    assert page.status_code == 200 and "Sign in" in page.get_data(as_text=True)

    # Lost while the view works: the documented 503, and the cleanup after it does not fail.
    lose["before"], lose["after"] = {"/token"}, set()
    token = client.post("/token", data={"grant_type": "authorization_code", "code": "x"})
    assert token.status_code == 503
    assert token.get_json()["error"] == "temporarily_unavailable"
    assert token.headers["Retry-After"] == "30"

    lose["before"] = set()
    assert client.get("/readyz").status_code == 200  # the next request has a live connection
    with app.app_context():
        db.engine.dispose()

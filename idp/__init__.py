"""The identity provider: one trusted login for every government department."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from idp import audit
from idp.settings import Settings, load_settings

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")
# Paths answered in JSON rather than HTML pages.
API_PATHS = (
    "/token",
    "/userinfo",
    "/jwks.json",
    "/.well-known/",
    "/register",
    "/revoke",
    "/introspect",
    "/trustmark",
)
OAUTH_ENDPOINTS = {"authorize.authorize", "token.token", "userinfo.userinfo"}
# Set on every response unless the view set its own.
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Authorization URLs carry state and codes: never leak them in Referer headers to another
    # site. Not no-referrer: with it, browsers send "Origin: null" on the IdP's own form posts
    # (Fetch standard, "append a request Origin header"), which the origin check
    # (idp/security/web.py) must refuse.
    ("Referrer-Policy", "same-origin"),
    # The Content-Security-Policy is added in create_app (idp/security/web.py).
)


class IdPFlask(Flask):
    """Flask, without per-request work that gives the same answer every time."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._checked_sync: dict = {}

    def ensure_sync(self, func):
        """As Flask (an async view would be wrapped), but each view and hook is inspected once,
        not at every request (Flask asks inspect.iscoroutinefunction for each, every time)."""
        checked = self._checked_sync.get(func)
        if checked is None:
            if len(self._checked_sync) >= 1000:  # functions made per request (after_this_request)
                self._checked_sync.clear()
            checked = self._checked_sync[func] = super().ensure_sync(func)
        return checked


def create_app(settings: Settings | None = None) -> Flask:
    """The app factory: settings in, a configured Flask app out."""
    # Imported here, not at the top (as flaskr does): Python runs this file first whenever any
    # idp module is imported, and the launcher, gunicorn's master, the bench and the tests
    # import idp.settings or idp.models without wanting every page and endpoint loaded.
    from idp.accounts.sessions import apply_session_cookie
    from idp.audit.linker import link_after_each_context
    from idp.extensions import csrf, db, discard_session, migrate
    from idp.frontend import init_frontend
    from idp.i18n import init_i18n
    from idp.oidc import backchannel
    from idp.oidc.journey import apply_browser_cookie
    from idp.oidc.server import create_authorization_server
    from idp.operations.metrics import init_metrics
    from idp.security.cookies import SigningOnceSessionInterface
    from idp.security.issuer_origin import serve_at_issuer
    from idp.security.secrets import (
        resolve_identity_encryption_key,
        resolve_key_encryption_key,
        resolve_pairwise_secret,
        resolve_secret_key,
    )
    from idp.security.web import CONTENT_SECURITY_POLICY, init_web_security
    from idp.staff.sessions import apply_staff_cookie

    settings = settings or load_settings()
    Path(settings.instance_path).mkdir(parents=True, exist_ok=True)
    app = IdPFlask(__name__, instance_path=settings.instance_path)
    app.session_interface = SigningOnceSessionInterface()
    _configure_logging(settings)
    app.config.update(
        IDP_SETTINGS=settings,
        SECRET_KEY=resolve_secret_key(settings.secret_key, settings.instance_path),
        IDP_KEY_FERNET=resolve_key_encryption_key(
            settings.key_encryption_key, settings.instance_path
        ),
        IDP_IDENTITY_FERNET=resolve_identity_encryption_key(
            settings.identity_encryption_key, settings.instance_path
        ),
        IDP_METRICS_TOKEN=settings.metrics_token,
        IDP_PAIRWISE_SECRET=resolve_pairwise_secret(
            settings.pairwise_secret, settings.instance_path
        ),
        SQLALCHEMY_DATABASE_URI=settings.sqlalchemy_url,
        # hide_parameters: a database error must never log the values (hashes) being written.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "hide_parameters": True},
        # Flask's own cookie carries only the CSRF token; the SSO session is server side.
        # Named, scoped and flagged like the IdP's own cookies (idp/security/cookies.py): the
        # __Host- prefix on an https issuer, Path=/, no Domain, a session cookie (Flask sets no
        # Expires while session.permanent is false, which the IdP never changes).
        SESSION_COOKIE_NAME=("__Host-" if settings.cookies_secure else "") + "idp_csrf",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.cookies_secure,
        WTF_CSRF_TIME_LIMIT=settings.interaction_lifetime,
        # Flask-WTF's https-only Referer check compares with the Host header and refuses a
        # form with an Origin but no Referer; idp/security/web.py checks Origin (or Referer)
        # against the issuer on every scheme instead.
        WTF_CSRF_SSL_STRICT=False,
        MAX_CONTENT_LENGTH=64 * 1024,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
    )
    app.config.update(settings.extra)
    serve_at_issuer(app)  # inside ProxyFix: the issuer's scheme and host win
    if settings.proxy_count > 0:
        # Behind nginx (or any load balancer): the client address and scheme it saw, so
        # per-IP throttling and the audit record name the citizen's address, not the proxy's.
        app.wsgi_app = ProxyFix(
            app.wsgi_app, x_for=settings.proxy_count, x_proto=settings.proxy_count
        )
    db.init_app(app)
    # Runs before Flask-SQLAlchemy's own teardown (the later registered runs first), which then
    # finds nothing left to close: a connection lost since the last statement must not turn the
    # answer already made into gunicorn's bare error page (see discard_session).
    app.teardown_appcontext(lambda _error: discard_session())
    if settings.audit_link_each_request:
        # Registered after, so it runs before: the request's entries are chained, then the
        # session is discarded.
        link_after_each_context(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    # Before CSRFProtect's own check, so a request from another site is told so (403).
    init_web_security(app)
    csrf.init_app(app)
    init_i18n(app)
    init_frontend(app)
    create_authorization_server(app)
    backchannel.init_app(app)
    _register_blueprints(app)
    _register_error_pages(app)

    @app.before_request
    def refuse_nul_characters():
        """NUL is never valid in a parameter, and PostgreSQL cannot store it: refuse it early."""
        if request.endpoint in OAUTH_ENDPOINTS:
            return None  # the protocol endpoints answer NUL with their own OAuth errors
        values = list(request.args.items(multi=True))
        if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
            values += list(request.form.items(multi=True))
        if any("\x00" in k or "\x00" in v for k, v in values):
            message = gettext("The link or form contains characters that are not allowed.")
            return render_template("error.html", message=message), 400
        return None

    # Images only from the IdP itself: a department's logo is the IdP's own copy
    # (departments/logos.py), so no page makes a browser call a department's server; scripts
    # only the IdP's own files and GOV.UK Frontend's one inline script, by its hash.
    security_headers = (*SECURITY_HEADERS, ("Content-Security-Policy", CONTENT_SECURITY_POLICY))

    @app.after_request
    def finish_response(response: Response) -> Response:
        """Session cookie changes and security headers on every response."""
        response.headers[audit.REQUEST_ID_HEADER] = audit.request_id()
        apply_session_cookie(response)
        apply_staff_cookie(response)
        apply_browser_cookie(response)
        # Each header once, unless the view set its own: the names present are read once.
        present = {name.lower() for name, _ in response.headers}
        for name, value in security_headers:
            if name.lower() not in present:
                response.headers.add(name, value)
        if "cache-control" not in present and not request.path.startswith(
            ("/static/", "/jwks.json", "/.well-known/")
        ):
            response.headers.add("Cache-Control", "no-store")
        return response

    init_metrics(app)
    return app


def _register_blueprints(app: Flask) -> None:
    """Every area's pages and endpoints."""
    # Imported only when an app is made (see create_app). The accounts blueprint's views are in
    # three features' pages (accounts/blueprint.py): importing sign_in's and sign_up's adds
    # theirs to it (your_account's come with that feature's own blueprint).
    from idp.accounts.blueprint import bp as accounts_bp
    from idp.accounts.identity.pages import bp as identity_bp
    from idp.accounts.manage.pages import bp as manage_bp
    from idp.accounts.passkeys.pages import bp as passkeys_bp
    from idp.accounts.recovery.pages import bp as recovery_bp
    from idp.accounts.second_factor.pages import bp as two_factor_bp
    from idp.accounts.sign_in import pages as sign_in_pages  # noqa: F401
    from idp.accounts.sign_up import pages as sign_up_pages  # noqa: F401
    from idp.accounts.text_messages.pages import bp as text_messages_bp
    from idp.accounts.your_account.pages import bp as your_account_bp
    from idp.departments.register_pages import bp as register_service_bp
    from idp.departments.registration_api import bp as registration_bp
    from idp.departments.views import bp as departments_bp
    from idp.development.dev_pages import bp as dev_bp
    from idp.oidc.authorize import bp as authorize_bp
    from idp.oidc.did import bp as did_bp
    from idp.oidc.discovery import bp as discovery_bp
    from idp.oidc.end_session import bp as end_session_bp
    from idp.oidc.jwks import bp as jwks_bp
    from idp.oidc.revocation import bp as revocation_bp
    from idp.oidc.token import bp as token_bp
    from idp.oidc.userinfo import bp as userinfo_bp
    from idp.operations.health import bp as health_bp
    from idp.staff.audit_pages import bp as audit_bp
    from idp.staff.pages import bp as staff_bp

    for bp in (
        accounts_bp,
        audit_bp,
        authorize_bp,
        departments_bp,
        register_service_bp,
        dev_bp,
        did_bp,
        discovery_bp,
        health_bp,
        identity_bp,
        end_session_bp,
        jwks_bp,
        manage_bp,
        passkeys_bp,
        recovery_bp,
        registration_bp,
        revocation_bp,
        staff_bp,
        text_messages_bp,
        token_bp,
        two_factor_bp,
        userinfo_bp,
        your_account_bp,
    ):
        app.register_blueprint(bp)


def _register_error_pages(app: Flask) -> None:
    """Every error is a clear page (or JSON for API paths), never a stack trace."""

    def wants_json() -> bool:
        return request.path.startswith(API_PATHS)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        message = gettext(
            "This form has expired or was not sent from this site. Go back and try again."
        )
        return render_template("error.html", message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if wants_json():
            body = {"error": "invalid_request", "error_description": error.description}
            if error.code == 405:
                body["error_description"] = "This method is not allowed on this endpoint."
            response = jsonify(body)
            response.status_code = error.code or 400
            for name, value in error.get_headers():
                if name.lower() not in {"content-type", "content-length"}:
                    response.headers[name] = value
            return response
        message = error.description
        if error.code == 413:
            message = gettext("The form you sent is too large. Go back and try again.")
        return render_template("error.html", message=message), error.code

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(RedisConnectionError)
    @app.errorhandler(RedisTimeoutError)
    def dependency_unavailable(error: Exception):
        """The database (or Redis) does not answer: 503, OAuth temporarily_unavailable on
        the protocol endpoints, a plain page elsewhere. Nothing was half-written: the
        transaction rolls back. Connections are checked before use, so the next request after
        the database returns is served as usual."""
        logging.getLogger("idp").error(
            "a dependency is unavailable on %s: %s", request.path, type(error).__name__
        )
        from idp.extensions import discard_session  # only when an app is made (create_app)

        # The connection may be gone already: its rollback would raise again, here.
        discard_session()
        if wants_json():
            response = jsonify(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "The service is temporarily unavailable. "
                    "Try again shortly.",
                }
            )
            response.status_code = 503
        else:
            message = gettext(
                "Sorry, the service is unavailable at the moment. Try again in a few minutes."
            )
            response = app.make_response((render_template("error.html", message=message), 503))
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        logging.getLogger("idp").exception("unexpected error on %s", request.path)
        from idp.extensions import discard_session  # only when an app is made (create_app)

        discard_session()
        if wants_json():
            return jsonify(
                {"error": "server_error", "error_description": "Something went wrong."}
            ), 500
        message = gettext("Sorry, something went wrong. Try again later.")
        return render_template("error.html", message=message), 500


class JSONLines(logging.Formatter):
    """One JSON object per line, for shipping off-host: audit events as the audit writer made
    them, anything else as {time, level, logger, message}. json.dumps escapes newlines and
    other control characters, so no text a user controls can start a line of its own."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        if record.name == "idp.audit":
            return record.getMessage()
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging(settings: Settings) -> None:
    """One JSON object per line on standard output."""
    logger = logging.getLogger("idp")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        formatter = JSONLines()
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(settings.log_level)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """SQLite: enforce foreign keys, wait for locks, allow readers beside a writer (WAL)."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

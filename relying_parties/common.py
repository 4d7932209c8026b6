"""Build a department service from its settings: the samples differ only in settings and in
the words of their templates/rp/department.html."""

import os
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask
from werkzeug.wrappers import Response

from relying_parties.client import register_idp_client
from relying_parties.frontend import STATIC_FOLDER, content_security_policy, init_frontend
from relying_parties.settings import DepartmentSettings
from relying_parties.views import blueprint

__all__ = ["DepartmentSettings", "create_department_app", "session_cookie_name"]


def session_cookie_name(client_id: str) -> str:
    """A cookie name unique to the service, since browsers share localhost cookies across ports."""
    return f"rp_{re.sub(r'[^A-Za-z0-9_-]', '_', client_id)}_session"


def create_department_app(settings: DepartmentSettings, import_name: str) -> Flask:
    """The Flask app for one department; its templates in import_name override the shared ones."""
    instance_path = os.path.abspath(settings.instance_path) if settings.instance_path else None
    app = Flask(import_name, instance_path=instance_path, static_folder=STATIC_FOLDER)
    app.config.update(
        SECRET_KEY=settings.secret_key or os.urandom(32),
        SESSION_COOKIE_NAME=session_cookie_name(settings.client_id),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
    )
    register_idp_client(app, settings)
    init_frontend(app, settings.colour)
    app.register_blueprint(blueprint)
    app.context_processor(lambda: {"settings": settings})
    app.after_request(security_headers_for(settings.issuer, settings.colour))
    return app


def security_headers_for(issuer: str, colour: str) -> Callable[[Response], Response]:
    """Response headers that keep the pages self-contained and unframeable."""
    issuer_parts = urlsplit(issuer)
    policy = content_security_policy(f"{issuer_parts.scheme}://{issuer_parts.netloc}", colour)

    def add_security_headers(response: Response) -> Response:
        """Add the headers to one response."""
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            # Pages show personal data: keep them out of shared caches and the back button.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return add_security_headers

"""One simulated evidence service as a Flask app: its human page, its JWKS and its check."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable

from flask import Flask, render_template_string, request
from werkzeug.exceptions import HTTPException

from evidence import address, driving_licence, kbv, passport
from evidence.credentials import Evidence, issue_credential
from evidence.keys import load_signing_key
from evidence.subject import InvalidRequest, parse_binding, parse_body, parse_subject

TITLES = {
    "passport": "Passport check",
    "driving_licence": "Driving licence check",
    "address": "Address and fraud check",
    "kbv": "Knowledge-based questions",
}
KINDS = tuple(TITLES)
DOCUMENT_CHECKS: dict[str, Callable[[dict, datetime.date], tuple[dict, Evidence]]] = {
    "passport": passport.check,
    "driving_licence": driving_licence.check,
    "address": address.check,
}
# The most a request body may hold: a check's details are a few hundred bytes.
MAX_BODY = 16 * 1024

HOME_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ title }} (simulated)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: Arial, sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.5">
<h1>{{ title }} (simulated)</h1>
<p><strong>This is a simulation.</strong> It stands in for {{ stands_in_for }} so that the
identity check can run without outside services. It knows only the fictional test identities
shipped with it (see <code>evidence/README.md</code>); no real person's details are checked.</p>
<p>The identity provider calls it server to server; there is nothing to do here in a browser.</p>
<ul>
<li><code>GET /.well-known/jwks.json</code>: the public key its credentials are signed with</li>
{% if kind == "kbv" %}<li><code>POST /questions</code>: three questions for a person</li>
<li><code>POST /check</code>: mark the answers; the result as a signed credential</li>
{% else %}<li><code>POST /check</code>: check the details; the result as a signed credential</li>
{% endif %}</ul>
</body>
</html>
"""
STANDS_IN_FOR = {
    "passport": "HM Passport Office's record of passports issued",
    "driving_licence": "the DVLA's driving licence register",
    "address": "a credit reference agency and fraud databases",
    "kbv": "a credit reference agency's knowledge-based questions",
}


def _json_body() -> object:
    """The request's JSON body, or None when it is not JSON (nested too deep included: the
    parser's RecursionError is not a ValueError, so get_json(silent=True) lets it through)."""
    try:
        return request.get_json(silent=True)
    except RecursionError:
        return None


def create_app(
    kind: str, instance_path: str | None = None, *, base_url: str | None = None
) -> Flask:
    """The service for kind ("passport", "driving_licence", "address" or "kbv").

    Its key comes from EVIDENCE_<KIND>_SIGNING_KEY (a PEM) or is made in the instance folder.
    base_url is its own URL, the iss of its credentials; without it, the URL it is called at.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown evidence service {kind!r}: one of {', '.join(KINDS)}")
    app = Flask(
        f"evidence.{kind}",
        instance_path=os.path.abspath(instance_path) if instance_path else None,
        root_path=os.path.dirname(__file__),
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    key = load_signing_key(kind, app.instance_path)
    outstanding = kbv.OutstandingQuestions()

    def issuer() -> str:
        """The iss of this service's credentials: its own URL."""
        return (base_url or request.host_url).rstrip("/")

    @app.get("/")
    def home() -> str:
        """What this is: a simulation."""
        return render_template_string(
            HOME_PAGE, title=TITLES[kind], kind=kind, stands_in_for=STANDS_IN_FOR[kind]
        )

    @app.get("/.well-known/jwks.json")
    def jwks() -> tuple[dict, int, dict]:
        """The public key that verifies this service's credentials."""
        return key.public_jwks(), 200, {"Cache-Control": "public, max-age=300"}

    @app.post("/check")
    def check() -> dict:
        """Check the details (or mark the answers) and return the signed credential."""
        body = parse_body(_json_body())
        binding = parse_binding(body)
        if kind == "kbv":
            credential_subject, evidence = kbv.mark(body, binding, outstanding)
        else:
            subject = parse_subject(body)
            credential_subject, evidence = DOCUMENT_CHECKS[kind](subject, datetime.date.today())
        credential = issue_credential(key, issuer(), binding, credential_subject, evidence)
        return {"credential": credential}

    if kind == "kbv":

        @app.post("/questions")
        def questions() -> dict:
            """The person's three questions."""
            body = parse_body(_json_body())
            binding = parse_binding(body)
            return {"questions": kbv.ask(parse_subject(body), binding, outstanding)}

    @app.get("/health")
    def health() -> dict:
        """Liveness check."""
        return {"status": "ok"}

    @app.errorhandler(InvalidRequest)
    def invalid_request(exc: InvalidRequest) -> tuple[dict, int]:
        """A malformed request: 400, saying which field and why."""
        return {"error": "invalid_request", "error_description": exc.description}, 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[dict, int]:
        """Werkzeug's errors (unknown path, wrong method, body too large) as JSON."""
        error = "invalid_request" if exc.code and exc.code < 500 else "server_error"
        description = exc.description
        if exc.code in (404, 405):
            endpoints = "POST /questions, POST /check" if kind == "kbv" else "POST /check"
            description = (
                f"no {request.method} {request.path[:100]} here: this service answers GET /, "
                f"GET /.well-known/jwks.json and {endpoints}"
            )
        elif exc.code == 413:
            description = f"the body is larger than {MAX_BODY} bytes"
        return {"error": error, "error_description": description}, exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[dict, int]:
        """A defect: logged, and answered as JSON without its details."""
        app.logger.exception("unexpected error in the %s service", kind)
        return {"error": "server_error", "error_description": "the check failed unexpectedly"}, 500

    @app.after_request
    def headers(response):
        """Nothing here is cached or sniffed, and the page loads nothing."""
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"
        )
        return response

    return app

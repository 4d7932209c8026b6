"""Browser-facing protections that apply to every request: the origin check on state-changing
requests, 303 after a POST, and HTTP Strict Transport Security.

* Origin check (OWASP CSRF Prevention Cheat Sheet, "Verifying origin with standard headers";
  OWASP ASVS 4.0 V13.2.3 / 5.0 V3.5): a POST, PUT, PATCH or DELETE to the IdP's pages must
  carry an ``Origin`` header naming the issuer's origin or, when the browser sent no Origin,
  a ``Referer`` on the issuer's origin. Neither header is refused too: every browser sends
  Origin on a POST, so only a non-browser (or a stripped request) sends neither, and the
  pages are for browsers. This is on top of the CSRF token, never instead of it.
* 303 See Other after a POST (RFC 9700 4.12): a 302 or 307 would let a browser re-send the
  POSTed form (a password, a code) to wherever the redirect points, a department included.
* Path parameters with a control character (NUL above all, which PostgreSQL text cannot hold)
  are 404 for every route, so no view's lookup meets one.
* HSTS (RFC 6797) on every response of an https issuer, so a browser never talks plain HTTP
  to the IdP again, whatever link it is given.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from urllib.parse import urlsplit

from flask import Flask, Response, abort, jsonify, render_template, request
from flask_babel import gettext

from idp import audit
from idp.settings import current_settings

log = logging.getLogger("idp")

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# RFC 6797 6.1: one year, subdomains included (the issuer's host names nothing but the IdP).
HSTS_VALUE = "max-age=31536000; includeSubDomains"
REDIRECTS_TO_SEE_OTHER = frozenset({301, 302, 307, 308})

# The one inline script of every page, from GOV.UK Frontend's page template
# (govuk_frontend_jinja/template.html): it marks the body so the components' styles and
# JavaScript apply only in browsers that run ES modules. Allowed by its hash (CSP Level 3,
# "hash-source"), so no 'unsafe-inline'; tests/security/test_content_security_policy.py fails
# if a new release of the template changes the script.
GOVUK_FRONTEND_SUPPORTED_SCRIPT = (
    "document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype"
    " ? ' govuk-frontend-supported' : '');"
)
_DIGEST = hashlib.sha256(GOVUK_FRONTEND_SUPPORTED_SCRIPT.encode()).digest()
GOVUK_FRONTEND_SUPPORTED_HASH = f"'sha256-{base64.b64encode(_DIGEST).decode()}'"
# Everything from the IdP itself: GOV.UK Frontend's stylesheet, fonts, images and its
# JavaScript (a module, started by static/init.js). Images also as data: URLs (the QR code).
CONTENT_SECURITY_POLICY = (
    f"default-src 'self'; script-src 'self' {GOVUK_FRONTEND_SUPPORTED_HASH}; "
    "img-src 'self' data:; frame-ancestors 'none'; form-action 'self' http: https:; "
    "object-src 'none'; base-uri 'none'"
)

# Endpoints a state-changing request may reach from any origin, and why that is safe.
CROSS_ORIGIN_ENDPOINTS = {
    # A department's server calls these with its own credentials (client authentication or a
    # bearer token), never with the citizen's cookies: a forged cross-site request from a
    # browser has no credentials to present, so the origin says nothing here.
    "token.token": "department server, authenticated by client credentials",
    "revocation.introspect": "department server, authenticated by client credentials",
    "revocation.revoke": "department server, authenticated by client credentials",
    "registration.register": "department server, authenticated by an initial access token",
    "registration.configuration": "department server, authenticated by its access token",
    "userinfo.userinfo": "department server, authenticated by the access token",
    # OIDC Core 3.1.2.1: a department may send the authorization request as a form POST from
    # its own site, by design cross-site. It changes nothing by itself: it starts a journey,
    # and every step that follows (sign-in, consent) is an IdP page checked here.
    "authorize.authorize": "authorization request, cross-site by design",
    # OIDC RP-Initiated Logout 1.0 section 2: a department may POST the logout request from
    # its own site. Ending the session takes the citizen's confirmation on an IdP page (a
    # POST from that page, checked here) unless the department proves who asked with an
    # id_token_hint it was issued.
    "end_session.logout": "RP-initiated logout, cross-site by design",
}
# The IdP receives no back-channel requests: back-channel logout tokens go out to departments
# (idp/oidc/backchannel.py), so there is nothing else to exempt.


def issuer_origin() -> str:
    """The issuer's origin (RFC 6454): scheme, host and port, without a path."""
    parts = urlsplit(current_settings().issuer)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_of(url: str) -> str | None:
    """The origin of a URL in the same form as issuer_origin, or None when it has none."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return None
    default_port = {"http": ":80", "https": ":443"}[parts.scheme]
    netloc = parts.netloc.lower()
    if netloc.endswith(default_port):
        netloc = netloc[: -len(default_port)]
    return f"{parts.scheme}://{netloc}"


def _may_come_from_anywhere() -> bool:
    """Whether this request's endpoint is one of CROSS_ORIGIN_ENDPOINTS (and, for /logout,
    not the citizen's confirmation: that is a form on the IdP's own page, checked)."""
    if request.endpoint == "end_session.logout" and request.form.get("confirm") == "yes":
        return False
    return request.endpoint in CROSS_ORIGIN_ENDPOINTS


def why_refused() -> str | None:
    """Why this state-changing request did not come from the IdP's own pages, or None."""
    expected = origin_of(issuer_origin())
    origin = request.headers.get("Origin")
    if origin is not None:
        # "null" is what a browser sends from a sandboxed or privacy-sensitive context.
        return None if origin_of(origin) == expected else "origin mismatch"
    referer = request.headers.get("Referer")
    if referer is not None:
        return None if origin_of(referer) == expected else "referer mismatch"
    return "no origin or referer"


def check_origin() -> tuple[str | Response, int] | None:
    """Refuse a state-changing request to a page when it came from another site (403)."""
    if request.method not in STATE_CHANGING_METHODS:
        return None
    if request.endpoint is None or _may_come_from_anywhere():
        return None  # an unknown path gets its 404 (or 405) as it would anyway
    reason = why_refused()
    if reason is None:
        return None
    audit.record(
        "request.cross_origin_refused",
        "failure",
        reason=reason,
        path=request.path[:200],
        origin=(request.headers.get("Origin") or "")[:200] or None,
    )
    message = gettext(
        "This form was not sent from this site, so it has not been accepted. Go back to the "
        "page on this site and try again."
    )
    if request.mimetype == "application/json":  # the passkey ceremonies' fetch requests
        return jsonify(error="cross_origin_request", message=message), 403
    return render_template("error.html", message=message), 403


def finish(response: Response) -> Response:
    """303 for every redirect that answers a POST (or another state-changing method), and
    HSTS on every response of an https issuer."""
    if request.method in STATE_CHANGING_METHODS and response.status_code in (
        REDIRECTS_TO_SEE_OTHER
    ):
        response.status_code = 303
    if current_settings().issuer.startswith("https://"):
        response.headers["Strict-Transport-Security"] = HSTS_VALUE
    return response


def refuse_nul_in_path(endpoint: str | None, values: dict | None) -> None:
    """No identifier the IdP issues (client ID, logo digest, session reference...) holds a
    control character, and PostgreSQL text cannot hold NUL at all: a path parameter with one
    names nothing, so the answer is 404 before any view looks it up."""
    for value in (values or {}).values():
        if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
            abort(404)


def init_web_security(app: Flask) -> None:
    """Refuse impossible path parameters, run the origin check before every request and
    finish every response."""
    app.url_value_preprocessor(refuse_nul_in_path)
    app.before_request(check_origin)
    app.after_request(finish)

"""The JWKS endpoint: public members only, one kid per key."""

from flask import Blueprint, Response, jsonify, request

from idp.oidc.keys import PUBLIC_JWKS_MAX_AGE, public_jwks
from idp.settings import current_settings

bp = Blueprint("jwks", __name__)


def longest_stale_jwks(max_age: int) -> int:
    """The oldest view of the keys a department can hold, in seconds: an IdP process's own
    copy (at most max-age, and PUBLIC_JWKS_MAX_AGE), kept by the proxy in front of the IdP for
    max-age (nginx sends no Age header), then by the department for max-age again.

    A rotated key is published signing_key_lead_time (default 7200 s) before it signs, far
    longer than this (625 s with the default max-age of 300 s), so every department has it
    before the first token it signs; `idp keys` warns when a lead time is shorter."""
    return 2 * max_age + min(max_age, PUBLIC_JWKS_MAX_AGE)


@bp.get("/jwks.json")
def jwks() -> Response:
    """The IdP's public signing keys, including those that do not sign yet; cacheable for the
    jwks_max_age setting (RFC 9111 5.2.2.1), which bounds how long a withdrawn key is trusted."""
    response = jsonify(public_jwks())
    response.headers["Cache-Control"] = f"public, max-age={current_settings().jwks_max_age}"
    response.add_etag()
    return response.make_conditional(request)


@bp.after_app_request
def never_cache_errors(response: Response) -> Response:
    """Errors at the JWKS path (405, 404) are never stored by caches: the app leaves caching
    on this path to the view, and 404 and 405 are heuristically cacheable (RFC 9110 15.1)."""
    if request.path.startswith("/jwks.json") and response.status_code >= 400:
        response.headers["Cache-Control"] = "no-store"
    return response

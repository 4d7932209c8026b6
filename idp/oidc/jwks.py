"""The JWKS endpoint: public members only, one kid per key."""

from flask import Blueprint, Response, jsonify, request

from idp.oidc.keys import public_jwks

bp = Blueprint("jwks", __name__)

# Departments and shared caches may keep the JWKS this long. A rotated key is published
# signing_key_lead_time (default 7200 s) before it signs; with the max-age at most half of
# that, even a department that caches a copy already max-age old in a shared cache (a client
# ignoring Age) has fetched the new key before it signs. A short max-age also bounds how long
# a withdrawn (compromised) key stays trusted; conditional GETs (ETag) keep refetches cheap.
JWKS_MAX_AGE = 3600


@bp.get("/jwks.json")
def jwks() -> Response:
    """The IdP's public signing keys, including those that do not sign yet."""
    response = jsonify(public_jwks())
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    response.add_etag()
    return response.make_conditional(request)


@bp.after_app_request
def never_cache_errors(response: Response) -> Response:
    """Errors at the JWKS path (405, 404) are never stored by caches: the app leaves caching
    on this path to the view, and 404 and 405 are heuristically cacheable (RFC 9110 15.1)."""
    if request.path.startswith("/jwks.json") and response.status_code >= 400:
        response.headers["Cache-Control"] = "no-store"
    return response

"""The JWKS endpoint: public members only, one kid per key."""

from flask import Blueprint, Response, jsonify

from idp.oidc.keys import public_jwks

bp = Blueprint("jwks", __name__)

# Departments cache keys; an hour keeps them current through key rotation's lead time.
JWKS_MAX_AGE = 3600


@bp.get("/jwks.json")
def jwks() -> Response:
    """The IdP's public signing keys."""
    response = jsonify(public_jwks())
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    return response

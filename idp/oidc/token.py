"""The token endpoint (RFC 6749 3.2, OIDC Core 3.1.3): codes for tokens."""

from flask import Blueprint, Response

from idp.extensions import csrf
from idp.oidc.server import authorization_server

bp = Blueprint("token", __name__)


@bp.post("/token")
@csrf.exempt
def token() -> Response:
    """Exchange an authorization code; errors are RFC 6749 JSON, never cached."""
    response = authorization_server().create_token_response()
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response

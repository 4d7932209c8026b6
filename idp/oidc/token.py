"""The token endpoint (RFC 6749 3.2, OIDC Core 3.1.3): codes for tokens."""

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Blueprint, Response, request

from idp.extensions import csrf
from idp.oidc.client_auth import audit_refused_request
from idp.oidc.failure_limits import limit_failures
from idp.oidc.server import authorization_server

bp = Blueprint("token", __name__)


@bp.post("/token")
@csrf.exempt
@limit_failures("token", per_client=True)
def token() -> Response:
    """Exchange an authorization code; errors are RFC 6749 JSON, never cached."""
    server = authorization_server()
    if not request.form.get("grant_type"):
        # RFC 6749 5.2: a missing required parameter is invalid_request.
        error = InvalidRequestError("Missing grant_type.")
        response = server.handle_error_response(server.create_oauth2_request(None), error)
    else:
        response = server.create_token_response()
    if response.status_code >= 400:
        audit_refused_request("token", "token.failed", response)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response

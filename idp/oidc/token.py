"""The token endpoint (RFC 6749 3.2, OIDC Core 3.1.3): codes for tokens.

A token request goes through these steps in order:

1. Failure limits: an address (or an authenticated client) that failed too often is slowed
   down (idp/oidc/failure_limits.py).
2. grant_type is present (RFC 6749 5.2: invalid_request otherwise).
3. Authlib picks the grant for the grant_type and authenticates the client
   (idp/oidc/client_auth.py), which must be registered for that grant.
4. The grant checks what it redeems and issues the tokens, in the order its module lists:
   idp/oidc/grants/authorization_code.py (code, redirect_uri, PKCE code_verifier) or
   idp/oidc/grants/refresh_token.py (refresh token, scope). Tokens are stored by
   idp/oidc/tokens.py, and the ID token added by idp/oidc/id_token.py.
5. A refusal is recorded in the audit log (client_auth.audit_refused_request).
6. The response, success or error, is never cached (RFC 6749 5.1).
"""

from authlib.oauth2.rfc6749 import InvalidRequestError
from flask import Blueprint, Response, request

from idp.extensions import csrf
from idp.oidc.authorization_server import authorization_server
from idp.oidc.client_auth import audit_refused_request
from idp.oidc.failure_limits import limit_failures

bp = Blueprint("token", __name__)


@bp.post("/token")
@csrf.exempt
@limit_failures("token", per_client=True)
def token() -> Response:
    """Exchange an authorization code; errors are RFC 6749 JSON, never cached."""
    # 1. Failure limits: the limit_failures decorator.
    server = authorization_server()
    # 2. grant_type is present.
    if not request.form.get("grant_type"):
        # RFC 6749 5.2: a missing required parameter is invalid_request.
        error = InvalidRequestError("Missing grant_type.")
        response = server.handle_error_response(server.create_oauth2_request(None), error)
    else:
        # 3 and 4. Authlib: client authentication, then the grant (idp/oidc/grants/).
        response = server.create_token_response()
    # 5. A refusal is recorded.
    if response.status_code >= 400:
        audit_refused_request("token", "token.failed", response)
    # 6. Never cached.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response

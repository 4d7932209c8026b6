"""The UserInfo endpoint (OIDC Core 5.3): claims by scope for a bearer token."""

from __future__ import annotations

import json

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import Blueprint, Response, jsonify

from idp import audit
from idp.extensions import csrf, db
from idp.models import Token
from idp.oidc.claims import user_info
from idp.oidc.failure_limits import limit_failures
from idp.oidc.server import token_assurance
from idp.security.secrets import hash_token

bp = Blueprint("userinfo", __name__)


class AccessTokenValidator(BearerTokenValidator):
    """Find an access token by its hash; expiry and revocation are checked by Authlib."""

    def authenticate_token(self, token_string: str) -> Token | None:
        """The stored token for the presented string."""
        if not token_string or len(token_string) > 256:
            return None
        return db.session.scalar(
            db.select(Token).filter_by(access_token_hash=hash_token(token_string))
        )


require_token = ResourceProtector()
require_token.register_token_validator(AccessTokenValidator())


def bearer_error_response(error: OAuth2Error) -> Response:
    """RFC 6750 3: the error as JSON and in a Bearer challenge.

    With no bearer token at all the challenge carries no error code (RFC 6750 3.1); a token
    that is unknown, expired or revoked answers invalid_token.
    """
    if error.error not in ("invalid_token", "insufficient_scope"):
        description = "No access token was presented: send it as Authorization: Bearer <token>."
        return Response(
            json.dumps({"error_description": description}),
            status=401,
            headers={
                "Content-Type": "application/json",
                "Cache-Control": "no-store",
                "WWW-Authenticate": 'Bearer realm="userinfo"',
            },
        )
    description = error.get_error_description()
    body = {"error": error.error, "error_description": description}
    challenge = f'Bearer error="{error.error}", error_description="{description}"'
    return Response(
        json.dumps(body),
        status=error.status_code,
        headers={
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            "WWW-Authenticate": challenge,
        },
    )


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
@limit_failures("userinfo")
def userinfo() -> Response:
    """The claims the token's scope releases."""
    try:
        token: Token = require_token.acquire_token(["openid"])
    except OAuth2Error as error:
        if error.error in ("invalid_token", "insufficient_scope"):
            # A token was presented and refused (never recorded: only that it was refused).
            audit.record("userinfo.failed", "failure", reason=error.error)
        return bearer_error_response(error)
    client = token.get_client()
    event = {"citizen_id": token.citizen_id, "client_id": token.client_id, "sid": token.sid}
    if client is None or not client.is_active:
        audit.record("userinfo.failed", "failure", reason="client_not_active", **event)
        return bearer_error_response(
            InvalidTokenError("The service this token was issued to is not active.")
        )
    claims = user_info(token.citizen, client, token.scope)
    level, methods = token_assurance(token)
    audit.record(
        "userinfo.released",
        level=level,
        methods=methods,
        scope=token.scope,
        claims=sorted(claims),
        **event,
    )
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response

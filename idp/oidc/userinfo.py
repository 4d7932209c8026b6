"""The UserInfo endpoint (OIDC Core 5.3): claims by scope for a bearer token, and the verified
identity details its grant releases (idp/oidc/identity_claims.py)."""

from __future__ import annotations

import json

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6750 import BearerTokenValidator, InvalidTokenError
from flask import Blueprint, Response, jsonify, request

from idp import audit
from idp.extensions import csrf
from idp.oidc.claims import user_info
from idp.oidc.failure_limits import limit_failures
from idp.oidc.identity_claims import identity_userinfo
from idp.oidc.records import AccessTokenRecord, find_record
from idp.oidc.tokens import token_assurance
from idp.security.secrets import hash_token

bp = Blueprint("userinfo", __name__)


class AccessTokenValidator(BearerTokenValidator):
    """Find an access token by its hash; expiry and revocation are checked by Authlib."""

    def authenticate_token(self, token_string: str) -> AccessTokenRecord | None:
        """The stored token for the presented string, with its citizen's claims."""
        if not token_string or len(token_string) > 256:
            return None
        return find_record(AccessTokenRecord, hash_token(token_string))


class BearerTokenProtector(ResourceProtector):
    """RFC 6750 2: the access token in the Authorization header (2.1) or in the form-encoded
    body of a POST (2.2, pyoidc's default), by exactly one method; never in the query string
    (RFC 6750 2.3 is not offered: RFC 9700 4.3.2, URLs end up in histories and logs)."""

    def parse_request_authorization(self, oauth_request):
        """The validator and the token string, from the header or the form body."""
        if "access_token" in request.args:
            raise InvalidRequestError(
                "The access token must not be sent in the query string: send it as"
                " Authorization: Bearer <token>, or as access_token in a form-encoded POST body."
            )
        body_tokens = form_body_tokens()
        if not body_tokens:
            return super().parse_request_authorization(oauth_request)
        if request.headers.get("Authorization"):
            raise InvalidRequestError(
                "The access token was sent both in the Authorization header and in the body:"
                " use one method only."
            )
        if len(body_tokens) > 1:
            raise InvalidRequestError("access_token must be sent once.")
        return self.get_token_validator("bearer"), body_tokens[0]


def form_body_tokens() -> list[str]:
    """access_token values of a form-encoded POST body (RFC 6750 2.2: no other method or
    content type carries the token in the body)."""
    if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded":
        return []
    return request.form.getlist("access_token")


require_token = BearerTokenProtector()
require_token.register_token_validator(AccessTokenValidator())


def bearer_error_response(error: OAuth2Error) -> Response:
    """RFC 6750 3: the error as JSON and in a Bearer challenge.

    With no bearer token at all the challenge carries no error code (RFC 6750 3.1); a token
    that is unknown, expired or revoked answers invalid_token.
    """
    if error.error not in ("invalid_token", "insufficient_scope", "invalid_request"):
        description = (
            "No access token was presented: send it as Authorization: Bearer <token>,"
            " or as access_token in a form-encoded POST body."
        )
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
        token: AccessTokenRecord = require_token.acquire_token(["openid"])
    except OAuth2Error as error:
        if error.error in ("invalid_token", "insufficient_scope", "invalid_request"):
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
    claims.update(identity_userinfo(token.identity, client, token.citizen_id, claims["sub"]))
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

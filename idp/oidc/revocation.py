"""Token revocation (RFC 7009) and introspection (RFC 7662), both for authenticated clients.

A client revokes or introspects only its own tokens: another client's token is refused at
revocation (invalid_grant, nothing changes) and is `{"active": false}` at introspection. An
unknown token is revoked with 200, as RFC 7009 2.2 asks.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as AuthlibRevocation
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as AuthlibIntrospection
from flask import Blueprint, Response

from idp import audit
from idp.extensions import csrf, db
from idp.models import RefreshToken, Token
from idp.models.client import registered_client
from idp.models.timestamps import utcnow
from idp.oidc.authorization_server import authorization_server
from idp.oidc.claims import subject_for
from idp.oidc.client_auth import TOKEN_ENDPOINT_AUTH_METHODS, audit_refused_request
from idp.oidc.failure_limits import limit_failures, mark_unknown_token
from idp.oidc.tokens import revoke_refresh_family, token_assurance
from idp.security.secrets import hash_token
from idp.settings import current_settings

bp = Blueprint("revocation", __name__)

# Client authentication is required: a public client ("none") cannot use these endpoints.
AUTHENTICATED_METHODS = [m for m in TOKEN_ENDPOINT_AUTH_METHODS if m != "none"]
MAX_TOKEN_LENGTH = 512


def _require_token(request) -> None:
    """Only the token is required; an unknown token_type_hint is ignored (RFC 7009 2.1,
    RFC 7662 2.1), where Authlib would refuse it."""
    if not request.form.get("token"):
        raise InvalidRequestError("The token parameter is required.")


def _token_event(event: str, token: Token | RefreshToken, **details: Any) -> None:
    """An event about one token: whose, which department's, from which sign-in (never the
    token itself)."""
    level, methods = token_assurance(token)
    audit.record(
        event,
        citizen_id=token.citizen_id,
        client_id=token.client_id,
        sid=token.sid,
        level=level,
        methods=methods,
        token_type="refresh_token" if isinstance(token, RefreshToken) else "access_token",
        **details,
    )


def _find(token_string: str, hint: str | None) -> Token | RefreshToken | None:
    """An access or refresh token of this IdP (the hint only says which to try first)."""
    if not token_string or len(token_string) > MAX_TOKEN_LENGTH:
        return None
    digest = hash_token(token_string)
    access = db.select(Token).filter_by(access_token_hash=digest)
    refresh = db.select(RefreshToken).filter_by(token_hash=digest)
    order = (refresh, access) if hint == "refresh_token" else (access, refresh)
    for query in order:
        found = db.session.scalar(query)
        if found is not None:
            return found
    return None


class RevocationEndpoint(AuthlibRevocation):
    """RFC 7009: the client's own token stops working at once."""

    CLIENT_AUTH_METHODS = AUTHENTICATED_METHODS

    def check_params(self, request, client) -> None:
        _require_token(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return _find(token_string, token_type_hint)

    def authenticate_token(self, request, client):
        token = super().authenticate_token(request, client)
        if token is None:
            mark_unknown_token()  # a guess, or a token long purged: a failure
            # RFC 7009 2.2: an unknown token is "revoked" too; the record says none was found.
            audit.record("token.revoked", client_id=client.client_id, found=False)
        return token

    def revoke_token(self, token: Token | RefreshToken, request) -> None:
        if isinstance(token, RefreshToken):
            # Revoking a refresh token ends its family and the access tokens issued in it.
            revoke_refresh_family(token.family)
        elif token.revoked_at is None:
            token.revoked_at = utcnow()
        db.session.commit()
        _token_event("token.revoked", token, found=True)


class IntrospectionEndpoint(AuthlibIntrospection):
    """RFC 7662: whether the client's own token is active, and what it carries."""

    CLIENT_AUTH_METHODS = AUTHENTICATED_METHODS

    def check_params(self, request, client) -> None:
        _require_token(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return _find(token_string, token_type_hint)

    def check_permission(self, token: Token, client, request) -> bool:
        return token.check_client(client)

    def authenticate_token(self, request, client):
        request.introspected = super().authenticate_token(request, client)
        if request.introspected is None:
            mark_unknown_token()  # a guess, or a token long purged: a failure
        return request.introspected

    def create_endpoint_response(self, request):
        """As Authlib, and recorded: which client asked, and whether the token is active."""
        status, body, headers = super().create_endpoint_response(request)
        token = getattr(request, "introspected", None)
        if token is not None and body.get("active"):
            _token_event("token.introspected", token, active=True)
        else:
            # Unknown, expired, revoked or another client's: nothing of the token is recorded.
            audit.record("token.introspected", client_id=request.client.client_id, active=False)
        return status, body, headers

    def introspect_token(self, token: Token | RefreshToken) -> dict[str, Any]:
        client = registered_client(token.client_id)
        return {
            "active": client is not None and client.status == "active",
            "scope": token.scope,
            "client_id": token.client_id,
            "token_type": "refresh_token" if isinstance(token, RefreshToken) else "Bearer",
            "sub": subject_for(token.citizen, client) if client else None,
            "aud": token.client_id,
            "iss": current_settings().issuer,
            "exp": int(token.expires_at.timestamp()),
            "iat": int(token.issued_at.timestamp()),
        }


def _respond(endpoint_name: str) -> Response:
    response = authorization_server().create_endpoint_response(endpoint_name)
    if response.status_code >= 400:
        audit_refused_request(endpoint_name, f"{endpoint_name}.failed", response)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/revoke")
@csrf.exempt
@limit_failures("revoke", per_client=True)
def revoke() -> Response:
    """RFC 7009 revocation."""
    return _respond(RevocationEndpoint.ENDPOINT_NAME)


@bp.post("/introspect")
@csrf.exempt
@limit_failures("introspect", per_client=True)
def introspect() -> Response:
    """RFC 7662 introspection."""
    return _respond(IntrospectionEndpoint.ENDPOINT_NAME)

"""Authlib wiring: the authorization server, the code grant and its extensions.

Authlib does the protocol; this module fills its hooks and holds the IdP's policy.
"""

from __future__ import annotations

import time
from datetime import timedelta

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    UnauthorizedClientError,
    UnsupportedResponseTypeError,
    grants,
    scope_to_list,
)
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import grants as oidc_grants
from flask import Flask, current_app, g
from sqlalchemy import select, update

from idp import audit
from idp.accounts.levels import (
    InvalidVectorOfTrust,
    achieved_vector,
    parse_vtr,
    requested_vectors,
)
from idp.accounts.sessions import current_session, live_session_for_sid
from idp.extensions import db
from idp.models import AuthorizationCode, Client, RefreshToken, Token
from idp.models.client import find_client
from idp.models.grant import revoke_live
from idp.models.timestamps import utcnow
from idp.oidc import backchannel
from idp.oidc.claims import subject_for
from idp.oidc.client_auth import (
    ClientAuthentication,
    PrivateKeyJWT,
    authenticate_client_secret_basic,
    authenticate_client_secret_post,
)
from idp.oidc.keys import signing_key
from idp.oidc.redirect_uri import trusted_redirect_uri
from idp.security.secrets import hash_token, new_token
from idp.settings import current_settings

PROMPT_VALUES = {"none", "login", "consent", "select_account"}
TOKEN_ENDPOINT_AUTH_METHODS = [
    "private_key_jwt",
    "client_secret_basic",
    "client_secret_post",
    "none",
]


def save_token(token: dict, request: OAuth2Request) -> None:
    """Store issued tokens by their hashes only: the access token, and a refresh token (a new
    family after a code, the same family after a refresh)."""
    code: AuthorizationCode | None = request.authorization_code
    previous: RefreshToken | None = getattr(request, "refresh_token", None)
    origin = code or previous
    now = utcnow()
    family = None
    if token.get("refresh_token"):
        family = previous.family if previous else new_token(24)
        lifetime = timedelta(seconds=current_settings().refresh_token_lifetime)
        db.session.add(
            RefreshToken(
                token_hash=hash_token(token["refresh_token"]),
                family=family,
                client_id=request.client.client_id,
                citizen_id=request.user.id,
                scope=token.get("scope", ""),
                sid=origin.sid,
                auth_time=origin.auth_time,
                amr=list(origin.amr or []),
                vot=origin.vot,
                issued_at=now,
                expires_at=previous.expires_at if previous else now + lifetime,
            )
        )
    db.session.add(
        Token(
            access_token_hash=hash_token(token["access_token"]),
            client_id=request.client.client_id,
            citizen_id=request.user.id,
            scope=token.get("scope", ""),
            sid=origin.sid if origin else None,
            authorization_code_id=code.id if code else None,
            refresh_family=family,
            issued_at=now,
            expires_at=now + timedelta(seconds=int(token["expires_in"])),
        )
    )
    if code is not None:
        # Remembered on the code, so a replay of it can end the family (RFC 6749 4.1.2).
        code.refresh_family = family
        backchannel.record_participation(code.live_session_id, code.sid, request.client.client_id)
    db.session.commit()
    # One sign-in's events share its session reference: the code's (or refresh token's) sid.
    audit.record(
        "token.refreshed" if previous is not None else "token.issued",
        citizen_id=request.user.id,
        client_id=request.client.client_id,
        sid=origin.sid if origin else None,
        level=origin.vot if origin else None,
        methods=list(origin.amr or []) if origin else None,
        grant_type=request.payload.grant_type,
        scope=token.get("scope"),
        with_refresh=bool(family),
    )


def _refuse_replay(event: str, row, reason: str, description: str) -> None:
    """A code or refresh token used twice: keep the revocation just made, record, refuse."""
    db.session.commit()
    g.refusal_recorded = True  # the endpoint records nothing more of this refusal
    audit.record(
        event,
        outcome="failure",
        reason=reason,
        citizen_id=row.citizen_id,
        client_id=row.client_id,
        sid=row.sid,
        level=row.vot,
        methods=list(row.amr or []),
    )
    raise InvalidGrantError(description)


def token_assurance(token: Token | RefreshToken) -> tuple[str | None, list[str] | None]:
    """The level met (vot) and the methods used (amr) at the sign-in a token comes from."""
    origin: AuthorizationCode | RefreshToken | None = None
    if isinstance(token, RefreshToken):
        origin = token
    elif token.authorization_code_id is not None:
        origin = db.session.get(AuthorizationCode, token.authorization_code_id)
    elif token.refresh_family:
        origin = db.session.scalar(
            db.select(RefreshToken).filter_by(family=token.refresh_family).limit(1)
        )
    return (origin.vot, list(origin.amr or [])) if origin is not None else (None, None)


def revoke_refresh_family(family, now=None) -> None:
    """End a refresh token family and every access token issued in it (not committed).
    family is its value, or a scalar subquery giving it."""
    now = now or utcnow()
    revoke_live(RefreshToken, RefreshToken.family == family, now=now)
    revoke_live(Token, Token.refresh_family == family, now=now)


def revoke_code_grant(code_id: int, now=None) -> None:
    """End everything a code issued (not committed): its access tokens and the refresh token
    family it started, with every token refreshed from it (RFC 6749 4.1.2, RFC 9700 4.2.4).

    The family is read in the statement itself, not from a row loaded earlier: a concurrent
    first use that committed while this request waited on the code's row is seen."""
    now = now or utcnow()
    revoke_live(Token, Token.authorization_code_id == code_id, now=now)
    family = (
        select(AuthorizationCode.refresh_family)
        .where(AuthorizationCode.id == code_id)
        .scalar_subquery()
    )
    revoke_refresh_family(family, now)


class IdPAuthorizationServer(AuthorizationServer):
    """Authlib's Flask server, taking stored authorization requests and answering errors well."""

    def authenticate_client(self, request, methods, endpoint="token"):
        """As Authlib; a client that proved who it is (any method but none) is kept for the
        failure limits (idp/oidc/failure_limits.py), which count only a client's own failures
        against it. A public client only names itself, which anyone can do, so its requests
        are counted against the IP address alone."""
        client = super().authenticate_client(request, methods, endpoint)
        if not client.is_public:
            g.authenticated_client_id = client.client_id
        return client

    def create_oauth2_request(self, request):
        """Use an already-built request (a resumed journey) as it is."""
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def validate_requested_scope(self, scope):
        """Any scope may be asked for: OIDC Core 3.1.2.1 says scope values that are not
        understood are ignored, so the grant keeps only those the client may have
        (Client.get_allowed_scope) instead of refusing the request with invalid_scope."""

    def get_authorization_grant(self, request):
        """Only the code flow. Authlib would echo any other response_type in the error's
        description, and fail on characters RFC 6749 does not allow there."""
        response_type = request.payload.response_type
        if response_type != "code":
            raise UnsupportedResponseTypeError(
                response_type,
                "Only response_type=code is supported.",
                redirect_uri=trusted_redirect_uri(request.payload),
            )
        return super().get_authorization_grant(request)

    def get_consent_grant(self, request=None, end_user=None):
        """As Authlib, but errors found before the grant's own checks (a repeated parameter)
        are redirected too once the client and its redirect URI are known (RFC 6749 4.1.2.1)."""
        request = self.create_oauth2_request(request)
        try:
            return super().get_consent_grant(request, end_user)
        except OAuth2Error as error:
            if error.redirect_uri is None and not isinstance(error, InvalidClientError):
                error.redirect_uri = trusted_redirect_uri(request.payload)
            raise

    def handle_error_response(self, request, error):
        """invalid_client is always 401 with WWW-Authenticate (RFC 6749 5.2). The error and
        request are kept for the audit record (the endpoints record refusals)."""
        g.oauth_error, g.oauth_request = error, request
        if isinstance(error, InvalidClientError):
            error.status_code = 401
        return super().handle_error_response(request, error)


class PKCE(CodeChallenge):
    """PKCE with S256 only; required unless a confidential client registered it optional."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        """Refuse plain, a challenge without a method, and a missing challenge where required."""
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        method = data.get("code_challenge_method")
        if challenge and not method:
            raise InvalidRequestError("code_challenge_method is required; only S256 is supported.")
        if method == "plain":
            raise InvalidRequestError("code_challenge_method plain is not allowed; use S256.")
        if method and method not in self.SUPPORTED_CODE_CHALLENGE_METHOD:
            raise InvalidRequestError("Unsupported code_challenge_method; use S256.")
        if not challenge:
            if method:
                raise InvalidRequestError("Missing code_challenge.")
            client: Client = grant.request.client
            if client.require_pkce:
                raise InvalidRequestError(
                    "PKCE is required: send code_challenge with code_challenge_method=S256."
                )
            if not data.get("nonce"):
                # A client registered without PKCE must bind the response with a nonce.
                raise InvalidRequestError("Missing nonce: required when PKCE is not used.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationPolicy:
    """The IdP's own checks on every authorization request, as grant hooks."""

    def __call__(self, grant):
        """Register the checks on the grant."""
        grant.register_hook("after_validate_authorization_request_payload", self.validate_request)

    def validate_request(self, grant, redirect_uri):
        """openid scope, supported parameters, prompt and max_age values, client status."""
        data = grant.request.payload.data
        values = grant.request.payload.datalist.values()
        if any("\x00" in value for repeated in values for value in repeated):
            # Nothing legitimate holds NUL, and PostgreSQL text cannot store it.
            raise InvalidRequestError("Parameters must not contain NUL characters.")
        client: Client = grant.request.client
        if not client.is_active:
            raise UnauthorizedClientError("This service is not active on the IdP.")
        if "openid" not in (scope_to_list(data.get("scope")) or []):
            raise InvalidScopeError("The scope must contain openid.")
        # OIDC Core 6: request objects are not supported here, and say so.
        if "request" in data:
            raise RequestNotSupportedError()
        if "request_uri" in data:
            raise RequestUriNotSupportedError()
        response_mode = data.get("response_mode")
        if response_mode not in (None, "query"):
            raise InvalidRequestError("Only response_mode=query is supported.")
        prompts = (data.get("prompt") or "").split()
        unknown = [p for p in prompts if p not in PROMPT_VALUES]
        if unknown:
            raise InvalidRequestError("Unsupported prompt value.")
        max_age = data.get("max_age")
        # ASCII only: isdigit() alone accepts digits such as superscript two, which int() refuses.
        if max_age is not None and not (
            max_age.isascii() and max_age.isdigit() and len(max_age) <= 9
        ):
            raise InvalidRequestError("max_age must be a whole number of seconds.")
        if data.get("vtr") is not None:
            try:
                parse_vtr(data["vtr"])
            except InvalidVectorOfTrust as exc:
                raise InvalidRequestError(str(exc).replace('"', "'")) from None
        if len(data.get("nonce") or "") > 512:
            raise InvalidRequestError("nonce is too long (512 characters at most).")
        if len(data.get("state") or "") > 2048:
            raise InvalidRequestError("state is too long (2048 characters at most).")


class RequestNotSupportedError(InvalidRequestError):
    """OIDC Core 3.1.2.6: request objects are not supported."""

    error = "request_not_supported"
    description = "Request objects are not supported."


class RequestUriNotSupportedError(InvalidRequestError):
    """OIDC Core 3.1.2.6: request_uri is not supported."""

    error = "request_uri_not_supported"
    description = "request_uri is not supported."


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """The code grant: codes hashed, single use, short lived, bound to client and redirect."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43  # 43 characters of [A-Za-z0-9]: about 256 bits

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        """Store the code's hash with everything it is bound to."""
        session = current_session()
        data = request.payload.data
        now = utcnow()
        row = AuthorizationCode(
            code_hash=hash_token(code),
            client_id=request.client.client_id,
            citizen_id=request.user.id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            sid=session.sid,
            auth_time=session.auth_time,
            amr=list(session.amr or []),
            vot=achieved_vector(
                session.amr or [], requested_vectors(data), session.password_enough_alone
            ),
            created_at=now,
            expires_at=now + timedelta(seconds=current_settings().authorization_code_lifetime),
        )
        db.session.add(row)
        db.session.commit()
        audit.record(
            "authorization_code.issued",
            citizen_id=request.user.id,
            client_id=request.client.client_id,
            sid=row.sid,
            level=row.vot,
            methods=list(row.amr or []),
            scope=request.scope,
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode:
        """Claim the code atomically; a second use revokes what the first use issued."""
        if not isinstance(code, str) or len(code) > 256:
            raise InvalidGrantError("The authorization code is not valid.")
        row = db.session.scalar(db.select(AuthorizationCode).filter_by(code_hash=hash_token(code)))
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The authorization code is not valid for this client.")
        if not client.is_active:
            raise UnauthorizedClientError("This service is not active on the IdP.")
        now = utcnow()
        # The claim stays uncommitted until save_token commits it with the token, so a
        # concurrent second use waits on the row and then revokes what the first issued.
        # A failed redemption rolls back at the end of the request, leaving the code usable.
        claimed = db.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if claimed != 1:
            # RFC 6749 4.1.2: a replayed code revokes the tokens issued with it.
            revoke_code_grant(row.id, now)
            _refuse_replay(
                "authorization_code.replayed",
                row,
                "code_reused",
                "The authorization code has already been used; tokens issued with it are revoked.",
            )
        if row.expires_at <= now:
            raise InvalidGrantError("The authorization code has expired.")
        # No token outlives its session: a code redeemed after the citizen signed out (or the
        # session expired) gets nothing. The session row stays locked until the tokens are
        # stored, so it cannot end unnoticed in between (its end would miss this department).
        live = live_session_for_sid(row.sid, lock=True)
        if live is None:
            db.session.commit()  # the code stays spent
            g.refusal_recorded = True  # the endpoint records nothing more of this refusal
            audit.record(
                "authorization_code.refused",
                "failure",
                reason="session_ended",
                citizen_id=row.citizen_id,
                client_id=row.client_id,
                sid=row.sid,
            )
            raise InvalidGrantError("The sign-in this code came from has ended.")
        row.live_session_id = live.id  # not stored: save_token records the department there
        return row

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Keep the used code (marked used) so a replay can be recognised."""

    def authenticate_user(self, authorization_code: AuthorizationCode):
        """The citizen the code was issued for."""
        return authorization_code.citizen


class OpenIDCode(oidc_grants.OpenIDCode):
    """ID tokens: ES256 by default (RS256 on request), kid in the header, sid and amr."""

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        """Nonce reuse is not tracked here; each department checks the nonce it sent."""
        return False

    def get_client_algorithm(self, client: Client) -> str:
        """The department's registered algorithm, else the IdP default."""
        return client.id_token_signed_response_alg or current_settings().default_id_token_alg

    def resolve_client_private_key(self, client: Client):
        """The current private key for the client's algorithm."""
        return signing_key(self.get_client_algorithm(client))

    def get_encode_header(self, client: Client) -> dict:
        """alg, kid and typ."""
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": signing_key(alg).kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict:
        """iss, aud and exp."""
        return {
            "iss": current_settings().issuer,
            "aud": client.client_id,
            "exp": int(time.time()) + current_settings().id_token_lifetime,
        }

    def get_compatible_claims(self, request: OAuth2Request) -> dict:
        """The standard claims, with the department's view of the subject."""
        claims = super().get_compatible_claims(request)
        claims["sub"] = subject_for(request.user, request.client)
        return claims

    def get_authorization_code_claims(self, authorization_code: AuthorizationCode) -> dict:
        """nonce, auth_time and amr from the code, and the session id (sid)."""
        claims = super().get_authorization_code_claims(authorization_code)
        claims["sid"] = authorization_code.sid
        claims["auth_time"] = authorization_code.get_auth_time()
        if authorization_code.vot:
            # GOV.UK One Login's vector of trust, and the same value as the OIDC acr.
            claims["vot"] = authorization_code.vot
            claims["acr"] = authorization_code.vot
        return claims

    def generate_user_info(self, user, scope: str) -> dict:
        """No profile claims in the ID token: departments read them from UserInfo."""
        return {}


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Refresh tokens rotate at every use; a used one presented again revokes its family."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken:
        """Claim the refresh token atomically (committed with the new one by save_token)."""
        if not isinstance(refresh_token, str) or len(refresh_token) > 256:
            raise InvalidGrantError("The refresh token is not valid.")
        row = db.session.scalar(
            db.select(RefreshToken).filter_by(token_hash=hash_token(refresh_token))
        )
        if row is None or row.client_id != self.request.client.client_id:
            raise InvalidGrantError("The refresh token is not valid for this client.")
        if not self.request.client.is_active:
            raise UnauthorizedClientError("This service is not active on the IdP.")
        if row.revoked_at is not None:
            raise InvalidGrantError("The refresh token has been revoked.")
        now = utcnow()
        if row.expires_at <= now:
            raise InvalidGrantError("The refresh token has expired: the citizen must sign in.")
        # The session's row stays locked until the new tokens are stored: a sign-out at the
        # same moment waits, then revokes them too (or went first, and nothing is issued).
        if live_session_for_sid(row.sid, lock=True) is None:
            raise InvalidGrantError("The sign-in this refresh token came from has ended.")
        claimed = db.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == row.id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        ).rowcount
        if claimed != 1:
            # RFC 9700 4.14.2: a rotated token used again means it leaked: end the family.
            db.session.rollback()
            revoke_refresh_family(row.family, now)
            _refuse_replay(
                "refresh_token.replayed",
                row,
                "refresh_token_reused",
                "The refresh token has already been used; every token of its family is revoked.",
            )
        return row

    def authenticate_user(self, refresh_token: RefreshToken):
        """The citizen the family speaks for."""
        return refresh_token.citizen

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Already claimed (used_at) in authenticate_refresh_token."""


class OpenIDRefresh(OpenIDCode):
    """A new ID token at refresh: same iss, sub, aud and auth_time (and sid, amr, acr, vot),
    a new iat; no nonce (OIDC Core 12.2)."""

    def get_compatible_claims(self, request: OAuth2Request) -> dict:
        claims = super().get_compatible_claims(request)
        row: RefreshToken = request.refresh_token
        claims.pop("nonce", None)
        claims.update(sid=row.sid, auth_time=row.get_auth_time(), amr=list(row.amr or []))
        if row.vot:
            claims.update(vot=row.vot, acr=row.vot)
        return claims


class Issuer(IssuerParameter):
    """RFC 9207: iss in every authorization response."""

    def get_issuer(self) -> str:
        """The issuer identifier."""
        return current_settings().issuer


def create_authorization_server(app: Flask) -> IdPAuthorizationServer:
    """A server for this app: the code grant, client authentication and the iss parameter."""
    settings = app.config["IDP_SETTINGS"]
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {
        "authorization_code": settings.access_token_lifetime,
        "refresh_token": settings.access_token_lifetime,
    }
    # Refresh tokens go only to departments registered for the refresh_token grant.
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
    server = IdPAuthorizationServer(app, query_client=find_client, save_token=save_token)
    server.register_grant(AuthorizationCodeGrant, [PKCE(), OpenIDCode(), AuthorizationPolicy()])
    server.register_grant(RefreshTokenGrant, [OpenIDRefresh()])
    # Method selection and refusals are client_auth.py's (either secret method for a secret).
    server._client_auth = ClientAuthentication(find_client)
    server.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    server.register_client_auth_method("client_secret_post", authenticate_client_secret_post)
    server.register_client_auth_method(
        "private_key_jwt", PrivateKeyJWT(settings.issuer, settings.issuer + "/token")
    )
    server.issuer_parameter = Issuer()
    server.register_extension(server.issuer_parameter)
    from idp.oidc.revocation import IntrospectionEndpoint, RevocationEndpoint

    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    app.extensions["authorization_server"] = server
    return server


def authorization_server() -> IdPAuthorizationServer:
    """The authorization server of the current app."""
    return current_app.extensions["authorization_server"]

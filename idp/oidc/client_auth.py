"""Client authentication at the token, revocation and introspection endpoints:
client_secret_basic and client_secret_post (RFC 6749 2.3.1), private_key_jwt (RFC 7523
section 2.2, OIDC Core 9) and none (public clients, at the token endpoint only).

A client with a secret may send it either way, whichever it registered: RFC 6749 2.3.1 says
the server MUST support HTTP Basic for clients with a password, and libraries pick one or the
other per endpoint. A private_key_jwt or public client is held to its registered method.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime
from urllib.parse import unquote_plus

import flask
from authlib.oauth2.rfc6749 import InvalidClientError, UnauthorizedClientError
from authlib.oauth2.rfc6749.authenticate_client import ClientAuthentication as AuthlibClientAuth
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7523.client import ASSERTION_TYPE
from joserfc import jwt
from joserfc.errors import JoseError
from sqlalchemy.exc import IntegrityError

from idp import audit, clock
from idp.extensions import db
from idp.models import Client, UsedClientAssertion
from idp.models.client import registered_client
from idp.oidc.client_keys import ClientKeysUnavailable, client_key_set
from idp.security.secrets import hash_token
from idp.settings import current_settings

# The methods the token endpoint accepts, in the order discovery lists them.
TOKEN_ENDPOINT_AUTH_METHODS = [
    "private_key_jwt",
    "client_secret_basic",
    "client_secret_post",
    "none",
]
ASSERTION_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"]


def _invalid(description: str, reason: str) -> InvalidClientError:
    """An invalid_client error with a description safe for RFC 6749's character set; reason
    is what the audit record says (never the secret or assertion)."""
    safe = "".join(ch if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\' else "'" for ch in description)
    error = InvalidClientError(description=safe, status_code=401)
    error.audit_reason = reason
    return error


def _is_time(value: object) -> bool:
    """A NumericDate (RFC 7519 2): a finite number; JSON parsers also accept NaN and Infinity."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The client_id and secret of an HTTP Basic header, or None when Basic is not used.

    RFC 6749 2.3.1: both are form-urlencoded before they are joined with a colon, so a '+'
    is a space and '%3A' a colon.
    """
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _invalid(
            "The Authorization header does not hold Basic credentials.", "malformed_credentials"
        ) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        raise _invalid(
            "The Basic credentials must be client_id:client_secret.", "malformed_credentials"
        )
    return unquote_plus(client_id), unquote_plus(secret)


# -- Which method a client may use ----------------------------------------------------------------

SECRET_METHODS = ("client_secret_basic", "client_secret_post")


def method_allowed(client: Client, method: str) -> bool:
    """Whether the client may authenticate with this method.

    RFC 6749 2.3.1: a client with a password may send it by HTTP Basic (which the server MUST
    support) or in the request body; either is accepted for a client registered for one of
    them that has a secret. private_key_jwt and none: only the registered method, so a client
    registered for keys never falls back to a secret.
    """
    registered = client.token_endpoint_auth_method
    if method in SECRET_METHODS and registered in SECRET_METHODS:
        return bool(client.client_secret_hash)
    return method == registered


def registered_method_description(client: Client, endpoint: str = "token") -> str:
    """What to do instead, named by the method the client is registered for."""
    registered = client.token_endpoint_auth_method
    if registered in SECRET_METHODS:
        return (
            f"This client is registered for {registered}: send its client_secret by HTTP "
            "Basic (client_secret_basic) or in the form (client_secret_post)."
        )
    if registered == "private_key_jwt":
        return (
            "This client is registered for private_key_jwt: send a client_assertion signed "
            f"with one of its registered keys, with client_assertion_type {ASSERTION_TYPE}."
        )
    if endpoint != "token":
        return (
            f"This client is registered for {registered} (a public client): it has no "
            "credentials to authenticate with here."
        )
    return f"This client is registered for {registered}: send client_id alone, with no secret."


def _known_client_for(query_client, client_id: str, method: str) -> Client:
    """The client named by the credentials, allowed to use this method; else invalid_client."""
    client = query_client(client_id)
    if client is None:
        raise _invalid("The client does not exist on this server.", "unknown_client")
    if not method_allowed(client, method):
        raise _invalid(registered_method_description(client), "method_not_registered")
    return client


def authenticate_client_secret_basic(query_client, request) -> Client | None:
    """client_secret_basic, with credentials form-urldecoded as RFC 6749 2.3.1 asks."""
    credentials = basic_credentials(request.headers.get("Authorization"))
    if credentials is None:
        return None
    client_id, secret = credentials
    client = _known_client_for(query_client, client_id, "client_secret_basic")
    if not client.check_client_secret(secret):
        raise _invalid("The client secret is not valid.", "wrong_secret")
    return client


def authenticate_client_secret_post(query_client, request) -> Client | None:
    """client_secret_post: client_id and client_secret in the form (RFC 6749 2.3.1)."""
    client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
    if not client_id or not secret:
        return None
    client = _known_client_for(query_client, client_id, "client_secret_post")
    if not client.check_client_secret(secret):
        raise _invalid("The client secret is not valid.", "wrong_secret")
    return client


class ClientAuthentication(AuthlibClientAuth):
    """Authlib's method registry, choosing by method_allowed; a refusal names the method the
    client is registered for, never a list of every method."""

    def authenticate(self, request, methods, endpoint):
        """The client authenticated by the first method that recognises the request."""
        for method in methods:
            client = self._methods[method](self.query_client, request)
            if client is not None and method_allowed(client, method):
                request.auth_method = method
                return client
        raise self._refusal(request, endpoint)

    @staticmethod
    def _refusal(request, endpoint: str) -> InvalidClientError:
        """invalid_client saying what was wrong with the request's client authentication."""
        client = claimed_client(request.form, request.headers)
        if client is not None:
            return _invalid(
                registered_method_description(client, endpoint), "method_not_registered"
            )
        if request.form.get("client_id") or presented_method(request.form, request.headers):
            return _invalid("The client does not exist on this server.", "unknown_client")
        return _invalid(
            "The request does not authenticate a client: send the client's credentials with "
            "the method it is registered for.",
            "no_credentials",
        )


class PrivateKeyJWT(JWTBearerClientAssertion):
    """Checks a client assertion: signature, iss = sub = client_id, aud, exp, iat and jti."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, issuer: str, token_endpoint: str):
        super().__init__(validate_jti=True)
        self.issuer = issuer
        self.token_endpoint = token_endpoint

    def get_audiences(self) -> list[str]:
        """The issuer or the token endpoint URL (OIDC Core 9 and RFC 7523 3)."""
        return [self.issuer, self.token_endpoint]

    def resolve_client_public_key(self, client: Client, *, refresh: bool = False):
        """The client's keys (a KeySet); refresh=True looks at its jwks_uri again."""
        try:
            return client_key_set(client, refresh=refresh)
        except ClientKeysUnavailable as exc:
            raise _invalid(
                f"The client's public keys are unavailable: {exc}", "keys_unavailable"
            ) from None

    def __call__(self, query_client, request):
        """Authenticate a client by its assertion, or return None when none was sent."""
        assertion = request.form.get("client_assertion")
        if request.form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            return None
        try:
            headers, unverified = self.extract_assertion(assertion)
        except (InvalidClientError, ValueError, RecursionError):
            # RecursionError: JSON nested deeper than the parser goes is no JWT either.
            raise _invalid(
                "The client assertion is not a signed JWT.", "malformed_assertion"
            ) from None
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or not client_id:
            raise _invalid(
                "The client assertion has no sub naming the client.", "malformed_assertion"
            )
        form_client_id = request.form.get("client_id")
        if form_client_id is not None and form_client_id != client_id:
            # RFC 7521 4.2: a client_id sent beside the assertion must name the same client.
            raise _invalid(
                "client_id does not match the client assertion sub.", "client_id_mismatch"
            )
        client = query_client(client_id)
        if client is None:
            raise _invalid("The client does not exist on this server.", "unknown_client")
        self.authenticate_client(client)
        if not client.is_active:
            # Before any fetch of its jwks_uri: an inactive service costs the IdP nothing.
            raise UnauthorizedClientError("This service is not active on the IdP.")
        key_set = self.resolve_client_public_key(client)
        token = self._decode_with_client_keys(assertion, headers, client, key_set)
        self.verify_claims(token.claims)
        request.client = client
        return client

    def authenticate_client(self, client: Client) -> Client:
        """Only clients registered for private_key_jwt may use it."""
        if method_allowed(client, self.CLIENT_AUTH_METHOD):
            return client
        raise _invalid(registered_method_description(client), "method_not_registered")

    def _decode_with_client_keys(self, assertion: str, headers: dict, client: Client, key_set):
        """Verify with the registered keys; for a jwks_uri, look again once before refusing."""
        alg = headers.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            raise _invalid(
                f"The client assertion alg {alg} is not accepted.", "algorithm_not_accepted"
            )
        kid = headers.get("kid")
        token = self._verify_signature(assertion, alg, kid, key_set)
        if token is None and client.jwks_uri:
            # The department may have rotated its keys (with or without a kid): look again.
            key_set = self.resolve_client_public_key(client, refresh=True)
            token = self._verify_signature(assertion, alg, kid, key_set)
        if token is not None:
            return token
        if kid is not None and not any(key.kid == kid for key in key_set.keys):
            raise _invalid(f"No registered key of the client has kid {kid}.", "unknown_key")
        raise _invalid(
            "The client assertion signature does not verify with any registered key.",
            "bad_signature",
        )

    @staticmethod
    def _verify_signature(assertion: str, alg: str, kid, key_set):
        """The verified token, trying the key named by kid first, else every key; or None."""
        keys = list(key_set.keys)
        # RFC 7515 4.1.4: kid is a hint. Registered keys without one get a thumbprint kid.
        if kid is not None:
            keys = [k for k in keys if k.kid == kid] or keys
        for key in keys:
            try:
                return jwt.decode(assertion, key, algorithms=[alg])
            except (JoseError, ValueError, RecursionError):
                continue
        return None

    def verify_claims(self, claims) -> None:
        """iss = sub = client_id, aud, exp in the future, a bounded lifetime, iat, fresh jti."""
        settings = current_settings()
        now = int(clock.time())
        skew = settings.clock_skew
        client_id = claims.get("sub")
        if claims.get("iss") != client_id:
            raise _invalid(
                "The client assertion iss and sub must both be the client_id.", "wrong_issuer"
            )
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not set(self.get_audiences()).intersection(a for a in audiences if isinstance(a, str)):
            raise _invalid(
                "The client assertion aud must be the issuer or the token endpoint URL.",
                "wrong_audience",
            )
        exp = claims.get("exp")
        if not _is_time(exp):
            raise _invalid(
                "The client assertion has no exp, or its exp is not a number.",
                "malformed_assertion",
            )
        if exp <= now - skew:
            raise _invalid("The client assertion has expired.", "assertion_expired")
        if exp > now + settings.client_assertion_max_lifetime + skew:
            raise _invalid(
                "The client assertion lives longer than "
                f"{settings.client_assertion_max_lifetime} seconds.",
                "assertion_lifetime",
            )
        iat = claims.get("iat")
        if iat is not None:
            if not _is_time(iat):
                raise _invalid("The client assertion iat is not a number.", "malformed_assertion")
            if exp - iat > settings.client_assertion_max_lifetime + skew:
                raise _invalid(
                    "The client assertion lives longer than "
                    f"{settings.client_assertion_max_lifetime} seconds.",
                    "assertion_lifetime",
                )
            if iat > now + skew:
                raise _invalid("The client assertion was issued in the future.", "issued_in_future")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_time(nbf) or nbf > now + skew):
            raise _invalid("The client assertion is not valid yet.", "not_yet_valid")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _invalid("The client assertion has no jti.", "malformed_assertion")
        if not self._remember_jti(client_id, jti, exp + skew):
            raise _invalid("The client assertion jti has been used before.", "assertion_replayed")

    @staticmethod
    def _remember_jti(client_id: str, jti: str, until: float) -> bool:
        """Store the jti; False when it was already stored (a replay), on any IdP process."""
        row = UsedClientAssertion(
            client_id=client_id,
            jti_hash=hash_token(jti),
            expires_at=datetime.fromtimestamp(until, UTC),
        )
        try:
            with db.session.begin_nested():
                db.session.add(row)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            return False
        return True


# -- The audit record of refused requests at the endpoints clients authenticate to ---------------


def presented_method(form, headers) -> str | None:
    """How a request tried to authenticate its client: the method's name, never the credential."""
    if (headers.get("Authorization") or "").strip().lower().startswith("basic "):
        return "client_secret_basic"
    if form.get("client_assertion") or form.get("client_assertion_type"):
        return "private_key_jwt"
    if form.get("client_secret"):
        return "client_secret_post"
    if form.get("client_id"):
        return "none"
    return None


def _unverified_sub(assertion: str) -> str | None:
    """The sub a client assertion claims (unverified: only to name the client it claims)."""
    parts = assertion.split(".")
    if len(parts) != 3 or len(parts[1]) > 8192:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def claimed_client(form, headers) -> Client | None:
    """The registered client a request says it comes from (not verified), or None: a client_id
    nobody registered is not recorded, as it might be anything (a secret pasted by mistake)."""
    try:
        basic = basic_credentials(headers.get("Authorization"))
    except InvalidClientError:
        basic = None
    if basic is not None:
        claimed = basic[0]
    elif form.get("client_assertion"):
        claimed = _unverified_sub(form["client_assertion"]) or form.get("client_id")
    else:
        claimed = form.get("client_id")
    return registered_client(claimed) if isinstance(claimed, str) and claimed else None


def _failure_reason(error, method: str | None, client: Client | None) -> str:
    """Why client authentication failed: the check that refused it, else what can be told."""
    reason = getattr(error, "audit_reason", None)
    if reason:
        return reason
    if method is None:
        return "no_credentials"
    if client is None:
        return "unknown_client"
    if method != client.token_endpoint_auth_method:
        return "method_not_registered"
    return "wrong_secret" if method.startswith("client_secret") else "refused"


def audit_refused_request(endpoint: str, event: str, response) -> None:
    """Record a refused request at the token, revocation or introspection endpoint.

    A client that failed to authenticate is client.authentication_failed, with the method it
    tried and why it failed; anything else is event, with the OAuth error as the reason.
    Neither ever holds a secret, an assertion, a code or a token.
    """
    if flask.g.get("refusal_recorded"):
        return
    error = flask.g.get("oauth_error")
    authenticated = getattr(flask.g.get("oauth_request"), "client", None)
    form, headers = flask.request.form, flask.request.headers
    body = response.get_json(silent=True) or {}
    client = authenticated or claimed_client(form, headers)
    if body.get("error") == "invalid_client" and authenticated is None:
        method = presented_method(form, headers)
        audit.record(
            "client.authentication_failed",
            "failure",
            reason=_failure_reason(error, method, client),
            client_id=client.client_id if client else None,
            endpoint=endpoint,
            method=method,
        )
        return
    audit.record(
        event,
        "failure",
        reason=body.get("error"),
        client_id=client.client_id if client else None,
        detail=(body.get("error_description") or "")[:200],
    )

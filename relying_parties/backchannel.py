"""OpenID Connect Back-Channel Logout 1.0: the IdP POSTs a logout token when a citizen's single
sign-on session ends, and the service checks it (section 2.6) before ending its own sign-ins.

The token is checked with PyJWT against the IdP's JWKS: the one the service fetched through
discovery for ID tokens, fetched again once for a key it does not know.
"""

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from relying_parties.ended_sessions import Logout
from relying_parties.errors import IdentityProviderUnavailable
from relying_parties.settings import DepartmentSettings

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# RFC 7515 4.1.9: typ is a media type, compared case-insensitively, "application/" optional.
LOGOUT_TOKEN_TYPES = frozenset({"logout+jwt", "application/logout+jwt"})
# Tolerated difference between the IdP's clock and the service's.
CLOCK_LEEWAY_SECONDS = 60
# The IdP's JWKS is fetched again when this old (its Cache-Control max-age is an hour).
JWKS_MAX_AGE_SECONDS = 3600
# A kid the service does not know makes it fetch the JWKS again, but not more often than this,
# so that tokens with made-up kids cannot make it hammer the IdP.
UNKNOWN_KID_REFETCH_INTERVAL_SECONDS = 10
# What a value from the token may show in an error description (and so the log) at most.
MAX_QUOTED_LENGTH = 40


class LogoutTokenError(Exception):
    """A logout token the service refuses; the message says why, never showing the token."""


class IdentityProviderKeys:
    """The IdP's signing keys, shared with Authlib's ID token checks: fetched again when an
    hour old, and once (at most every few seconds) for a kid the service has not seen."""

    def __init__(
        self,
        fetch_jwks: Callable[[bool], Mapping[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """fetch_jwks(force) returns the IdP's JWKS, from the network when force is set."""
        self._fetch_jwks = fetch_jwks
        self._clock = clock
        self._lock = threading.Lock()
        self._fetched_at: float | None = None
        self._refetched_for_unknown_kid_at: float | None = None

    def key(self, kid: str, alg: str) -> jwt.PyJWK:
        """The IdP's public key kid for alg; LogoutTokenError if the IdP publishes none."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at > JWKS_MAX_AGE_SECONDS
            jwk = self._find(kid, refresh=stale)
            refetched = False
            if jwk is None and self._may_refetch_for_unknown_kid(now):
                self._refetched_for_unknown_kid_at = now
                jwk = self._find(kid, refresh=True)
                refetched = True
        if jwk is None and not refetched and not stale:
            # A key the IdP may have published seconds ago (an emergency rotation) while a
            # refetch is not allowed yet: ask to be tried again rather than refuse for good.
            raise IdentityProviderUnavailable(
                f"the IdP's key {quoted(kid)} is unknown and its JWKS was fetched moments ago"
            )
        if jwk is None:
            raise LogoutTokenError(f"the IdP publishes no key {quoted(kid)} (kid)")
        return usable_key(jwk, kid, alg)

    def _may_refetch_for_unknown_kid(self, now: float) -> bool:
        """Whether enough time has passed since the last refetch for an unknown kid."""
        last = self._refetched_for_unknown_kid_at
        return last is None or now - last >= UNKNOWN_KID_REFETCH_INTERVAL_SECONDS

    def _find(self, kid: str, refresh: bool) -> Mapping[str, Any] | None:
        """The JWK named kid in the JWKS, fetched first if refresh is set."""
        jwks = self._fetch_jwks(refresh)
        if refresh:
            self._fetched_at = self._clock()
        keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(keys, list):
            raise IdentityProviderUnavailable("the IdP's JWKS has no list of keys")
        return next(
            (key for key in keys if isinstance(key, Mapping) and key.get("kid") == kid), None
        )


def usable_key(jwk: Mapping[str, Any], kid: str, alg: str) -> jwt.PyJWK:
    """The JWK as a PyJWT key for alg, if it is a signing key of the right type for it."""
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
        raise LogoutTokenError(f"the IdP's key {quoted(kid)} is not a signing key for {alg}")
    try:
        return jwt.PyJWK(dict(jwk), algorithm=alg)
    except jwt.PyJWTError:
        raise LogoutTokenError(
            f"the IdP's key {quoted(kid)} is not a signing key for {alg}"
        ) from None


def check_logout_token(
    token: str, settings: DepartmentSettings, keys: IdentityProviderKeys
) -> Logout:
    """OIDC Back-Channel Logout 1.0 2.6: the logout token's signature and claims, checked."""
    header = checked_header(token, settings.logout_token_alg)
    key = keys.key(header["kid"], header["alg"])
    claims = verified_claims(token, key, settings)
    check_logout_claims(claims, settings)
    return Logout(
        jti=claims["jti"],
        expires_at=float(claims["exp"]) + CLOCK_LEEWAY_SECONDS,
        sid=claims.get("sid"),
        sub=claims.get("sub"),
    )


def checked_header(token: str, expected_alg: str) -> dict[str, Any]:
    """The JOSE header, before the signature: typ logout+jwt, the registered alg, a kid."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError:
        raise LogoutTokenError("logout_token is not a signed JWT") from None
    except jwt.PyJWTError as error:
        raise LogoutTokenError(f"the logout token's header is not valid: {error}") from None
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in LOGOUT_TOKEN_TYPES:
        given = "none" if typ is None else quoted(typ)
        raise LogoutTokenError(f"the logout token's typ must be logout+jwt, not {given}")
    alg = header.get("alg")
    if alg != expected_alg:
        # Also refuses none and HS256 (an HMAC keyed with the IdP's public key).
        raise LogoutTokenError(
            f"the logout token must be signed with {expected_alg}, not {quoted(alg)}"
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise LogoutTokenError("the logout token's header names no key (kid)")
    return header


def verified_claims(token: str, key: jwt.PyJWK, settings: DepartmentSettings) -> dict[str, Any]:
    """The claims, once the signature, iss, aud, exp and iat check out: PyJWT checks all but
    iat, which is checked here so that an iat in the future has a reason of its own."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.logout_token_alg],
            issuer=settings.issuer,
            audience=settings.client_id,
            leeway=CLOCK_LEEWAY_SECONDS,
            options={
                "require": ["iss", "aud", "iat", "exp", "jti"],
                "verify_iat": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise LogoutTokenError(
            "the logout token's signature does not match the IdP's key"
        ) from None
    except jwt.ExpiredSignatureError:
        raise LogoutTokenError("the logout token has expired (exp)") from None
    except jwt.MissingRequiredClaimError as error:
        raise LogoutTokenError(f"the logout token has no {error.claim} claim") from None
    except jwt.InvalidIssuerError:
        raise LogoutTokenError(f"the logout token is not from {settings.issuer} (iss)") from None
    except jwt.InvalidAudienceError:
        raise LogoutTokenError(f"the logout token is not for {settings.client_id} (aud)") from None
    except jwt.ImmatureSignatureError:
        raise LogoutTokenError("the logout token is not valid yet (nbf)") from None
    except jwt.PyJWTError as error:
        raise LogoutTokenError(f"the logout token is not valid: {error}") from None
    for name in ("iat", "exp"):
        if not is_time(claims[name]):
            raise LogoutTokenError(f"the logout token's {name} must be a number")
    if claims["iat"] > time.time() + CLOCK_LEEWAY_SECONDS:
        raise LogoutTokenError("the logout token was issued in the future (iat)")
    return claims


def is_time(value: object) -> bool:
    """Whether value is a JWT NumericDate: a finite number of seconds (not true or false)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_logout_claims(claims: Mapping[str, Any], settings: DepartmentSettings) -> None:
    """Back-Channel Logout 2.4 and 2.6: the logout event, a sid (or sub), no nonce, a jti."""
    events = claims.get("events")
    if not isinstance(events, Mapping) or BACKCHANNEL_LOGOUT_EVENT not in events:
        raise LogoutTokenError(
            f"the logout token's events claim has no {BACKCHANNEL_LOGOUT_EVENT} member"
        )
    if not isinstance(events[BACKCHANNEL_LOGOUT_EVENT], Mapping):
        raise LogoutTokenError(
            f"the logout token's {BACKCHANNEL_LOGOUT_EVENT} event must be a JSON object"
        )
    if "nonce" in claims:
        # 2.4: a nonce marks an ID token, which must never pass for a logout token.
        raise LogoutTokenError("the logout token must not contain a nonce")
    for name in ("jti", "sid", "sub"):
        if name in claims and (not isinstance(claims[name], str) or not claims[name]):
            raise LogoutTokenError(f"the logout token's {name} must be a non-empty string")
    if settings.backchannel_logout_session_required and "sid" not in claims:
        raise LogoutTokenError(
            "the logout token has no sid claim, which this service registered as required "
            "(backchannel_logout_session_required)"
        )
    if "sid" not in claims and "sub" not in claims:
        raise LogoutTokenError("the logout token has neither a sid nor a sub claim")


def quoted(value: object) -> str:
    """A value from the token, quoted and cut short, safe to put in a description or log."""
    text = repr(value)
    return text if len(text) <= MAX_QUOTED_LENGTH else f"{text[: MAX_QUOTED_LENGTH - 3]}..."

"""A department's public keys, by value (jwks) or by reference (jwks_uri, fetched and cached)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey

from idp.models import Client
from idp.security.outbound import FetchError, fetch_json
from idp.settings import current_settings

# Refetch a jwks_uri for an unknown kid at most this often, so assertions cannot make us a
# request amplifier.
MIN_REFETCH_INTERVAL = 10.0
# NIST SP 800-131A: RSA below 2048 bits is disallowed; EC curves for ES256 and ES384.
MIN_RSA_BITS = 2048
EC_CURVES = ("P-256", "P-384")
# A JWKS is a few keys; anything bigger is refused rather than read into memory.
MAX_JWKS_BYTES = 64 * 1024


class ClientKeysUnavailable(Exception):
    """The department's keys could not be obtained; the message says why."""


@dataclass
class _CachedKeySet:
    keys: KeySet
    fetched_at: float


_cache: dict[str, _CachedKeySet] = {}
# A jwks_uri that just failed is not fetched again for MIN_REFETCH_INTERVAL: its error is kept.
_failures: dict[str, tuple[float, str]] = {}
_lock = threading.Lock()


def import_key_set(data: object, where: str) -> KeySet:
    """Parse a JWKS document, refusing private members and unusable keys."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ClientKeysUnavailable(f"{where} is not a JWKS document with a keys list")
    try:
        key_set = KeySet.import_key_set(data)
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ClientKeysUnavailable(f"{where} holds a key that cannot be used: {exc}") from None
    for key in key_set.keys:
        if problem := _strength_problem(key):
            raise ClientKeysUnavailable(f"{where}: {problem}")
        if key.is_private:
            raise ClientKeysUnavailable(f"{where} holds private key material")
    return key_set


def _strength_problem(key: object) -> str | None:
    """Why a public key is not strong enough for client authentication, or None."""
    if isinstance(key, RSAKey):
        bits = key.public_key.key_size
        if bits < MIN_RSA_BITS:
            return f"an RSA key of {bits} bits is too weak (at least {MIN_RSA_BITS})"
        return None
    if isinstance(key, ECKey):
        curve = key.curve_name
        if curve not in EC_CURVES:
            return f"the EC curve {curve} is not supported (use {' or '.join(EC_CURVES)})"
        return None
    return "only RSA and EC public keys can authenticate a client"


def _fetch(jwks_uri: str) -> KeySet:
    """Fetch a department's JWKS (timeout, size cap, no private addresses in production)."""
    try:
        data = fetch_json(jwks_uri, "jwks_uri", MAX_JWKS_BYTES)
    except FetchError as exc:
        raise ClientKeysUnavailable(str(exc)) from None
    return import_key_set(data, "jwks_uri")


def client_key_set(client: Client, *, refresh: bool = False) -> KeySet:
    """The client's public keys; refresh=True refetches a jwks_uri (for an unknown kid)."""
    if client.jwks is not None:
        return import_key_set(client.jwks, "jwks")
    if not client.jwks_uri:
        raise ClientKeysUnavailable("the client registered neither jwks nor jwks_uri")
    lifetime = current_settings().jwks_cache_lifetime
    # Elapsed real time, not idp.clock: a cache's age and refetch spacing are not wall-clock.
    now = time.monotonic()
    with _lock:
        cached = _cache.get(client.jwks_uri)
    if cached is not None:
        fresh = now - cached.fetched_at < lifetime
        may_refetch = now - cached.fetched_at >= MIN_REFETCH_INTERVAL
        if fresh and not (refresh and may_refetch):
            return cached.keys
    with _lock:
        failed = _failures.get(client.jwks_uri)
    if failed is not None and now - failed[0] < MIN_REFETCH_INTERVAL:
        raise ClientKeysUnavailable(failed[1])
    try:
        keys = _fetch(client.jwks_uri)
    except ClientKeysUnavailable as exc:
        with _lock:
            _failures[client.jwks_uri] = (now, str(exc))
        raise
    with _lock:
        _cache[client.jwks_uri] = _CachedKeySet(keys=keys, fetched_at=now)
        _failures.pop(client.jwks_uri, None)
    return keys


def forget_cached_keys() -> None:
    """Drop every cached JWKS (tests, and key compromise handling)."""
    with _lock:
        _cache.clear()
        _failures.clear()

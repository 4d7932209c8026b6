"""The verified identity a department asked for, checked as GOV.UK One Login's documentation
asks ("Validate the core identity claim JWT"), then kept with the sign-in.

A service that needs a proved identity asks with vtr ["Cl.Cm.P2"] and the claims it wants in
the `claims` parameter (its authorize_params). UserInfo then carries the core identity claim, a
JWT the IdP signs with its identity-signing key, published in its DID document: checked here
for signature, iss, aud (this service), sub (the citizen signed in), nbf/exp and vot. The
address (and document details) come as plain UserInfo claims under the same access token.
When the citizen could not prove their identity, UserInfo carries a returnCode instead.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, import_key

from relying_parties.errors import IdentityProviderUnavailable, SignInError
from relying_parties.settings import DepartmentSettings, service_url

VOCAB = "https://vocab.account.gov.uk/v1/"
CORE_IDENTITY = VOCAB + "coreIdentityJWT"
ADDRESS = VOCAB + "address"
RETURN_CODE = VOCAB + "returnCode"
# What the IdP's return codes mean, in this service's words (the IdP's README lists them).
RETURN_CODE_WORDS = {
    "X": "You told the sign-in service you do not have a passport or photocard driving licence.",
    "D": "Your passport or driving licence details could not be confirmed.",
    "F": "Your address could not be confirmed.",
    "K": "You did not answer enough security questions correctly.",
}
DID_CACHE_SECONDS = 300
LEEWAY_SECONDS = 30
HTTP_TIMEOUT_SECONDS = 10

_did_cache: dict[str, tuple[float, KeySet]] = {}
_did_lock = threading.Lock()


def did_url(settings: DepartmentSettings) -> str:
    """Where the IdP publishes its identity-signing key (a did:web DID document)."""
    return service_url(settings.issuer, "/.well-known/did.json")


def identity_keys(settings: DepartmentSettings, force: bool = False) -> KeySet:
    """The assertion keys of the IdP's DID document, each named by its DID URL id (a kid)."""
    url = did_url(settings)
    with _did_lock:
        cached = _did_cache.get(url)
        if cached and not force and time.monotonic() - cached[0] < DID_CACHE_SECONDS:
            return cached[1]
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        methods = response.json().get("assertionMethod", [])
        keys = KeySet(
            [
                import_key(method["publicKeyJwk"], parameters={"kid": method["id"]})
                for method in methods
                if isinstance(method, dict) and "publicKeyJwk" in method and "id" in method
            ]
        )
    except (requests.RequestException, ValueError, TypeError, KeyError, JoseError) as error:
        raise IdentityProviderUnavailable(
            f"could not read the IdP's DID document: {error}"
        ) from error
    with _did_lock:
        _did_cache[url] = (time.monotonic(), keys)
    return keys


def _not_verified(description: str) -> SignInError:
    return SignInError(
        title="We could not confirm your identity",
        error="invalid_identity",
        description=description,
        status=502,
    )


def checked_core_identity(
    settings: DepartmentSettings, token: str, sub: str, now: float | None = None
) -> dict[str, Any]:
    """The core identity JWT's claims, once every check passed; SignInError otherwise."""
    try:
        try:
            decoded = jwt.decode(token, identity_keys(settings), algorithms=["ES256"])
        except JoseError:
            # A key rotated since the DID document was cached: read it once more.
            decoded = jwt.decode(token, identity_keys(settings, force=True), algorithms=["ES256"])
        jwt.JWTClaimsRegistry(
            now=int(now if now is not None else time.time()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": settings.issuer},
            aud={"essential": True, "value": settings.client_id},
            sub={"essential": True, "value": sub},
            exp={"essential": True},
            vot={"essential": True, "value": settings.identity_level},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as error:
        raise _not_verified(
            f"The verified identity did not pass this service's checks ({error})."
        ) from error
    return decoded.claims


def verified_identity(settings: DepartmentSettings, userinfo: Mapping, sub: str) -> dict | None:
    """What the service keeps of the verified identity in UserInfo: the name, birth date and
    address once checked, or the return code saying why there is none; None for a service
    that does not ask."""
    if settings.identity_level is None:
        return None
    codes = userinfo.get(RETURN_CODE)
    if codes:
        code = codes[0].get("code") if isinstance(codes, list) and codes else None
        return {"return_code": str(code) if code else "unknown"}
    token = userinfo.get(CORE_IDENTITY)
    if not isinstance(token, str):
        raise _not_verified(
            "The sign-in service did not send the verified identity this service needs."
        )
    subject = checked_core_identity(settings, token, sub).get("vc", {}).get("credentialSubject", {})
    names = (subject.get("name") or [{}])[0].get("nameParts", [])
    addresses = userinfo.get(ADDRESS)
    return {
        "level": settings.identity_level,
        "given_names": " ".join(p.get("value", "") for p in names if p.get("type") == "GivenName"),
        "family_name": " ".join(p.get("value", "") for p in names if p.get("type") == "FamilyName"),
        "birth_date": (subject.get("birthDate") or [{}])[0].get("value"),
        "address": addresses[0] if isinstance(addresses, list) and addresses else None,
    }

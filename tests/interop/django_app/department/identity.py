"""The department's own check of the verified identity (One Login's coreIdentityJWT).

govuk-onelogin-django signs the citizen in and reads UserInfo; the identity claims are the
department's to check, as One Login's documentation says ("Validate the core identity claim
JWT"): the signature with the identity-signing key published in the IdP's DID document, the
issuer, the audience (this service's client ID), the subject (the citizen signed in), the
expiry, and the level (vot) the service asked for.
"""

from __future__ import annotations

import time

import requests
from joserfc import errors, jwk, jwt

CORE_IDENTITY = "https://vocab.account.gov.uk/v1/coreIdentityJWT"


class IdentityNotVerified(Exception):
    """The core identity claim is missing or fails a check; the message says which."""


def did_keys(did_url: str) -> jwk.KeySet:
    """The keys of a DID document's assertion methods, each named by its id (a JWT's kid)."""
    response = requests.get(did_url, timeout=5)
    response.raise_for_status()
    document = response.json()
    return jwk.KeySet(
        [
            jwk.import_key(method["publicKeyJwk"], parameters={"kid": method["id"]})
            for method in document.get("assertionMethod", [])
            if isinstance(method, dict) and "publicKeyJwk" in method
        ]
    )


def verified_identity(
    core_identity_jwt: str | None,
    *,
    did_url: str,
    issuer: str,
    client_id: str,
    sub: str,
    level: str,
    now: float | None = None,
) -> dict:
    """The verified name parts and birth date, or IdentityNotVerified saying what is wrong."""
    if not core_identity_jwt:
        raise IdentityNotVerified("no core identity claim in UserInfo")
    try:
        # The key whose DID id is the JWT's kid, so a key the IdP does not publish fails.
        token = jwt.decode(core_identity_jwt, did_keys(did_url), algorithms=["ES256"])
        jwt.JWTClaimsRegistry(
            now=int(now if now is not None else time.time()),
            leeway=5,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            sub={"essential": True, "value": sub},
            exp={"essential": True},
            vot={"essential": True, "value": level},
        ).validate(token.claims)
    except errors.JoseError as error:
        raise IdentityNotVerified(f"the core identity claim is not valid: {error}") from error
    subject = token.claims.get("vc", {}).get("credentialSubject", {})
    names = subject.get("name") or [{}]
    parts = names[0].get("nameParts", [])
    return {
        "given_names": " ".join(p["value"] for p in parts if p.get("type") == "GivenName"),
        "family_name": " ".join(p["value"] for p in parts if p.get("type") == "FamilyName"),
        "birth_date": (subject.get("birthDate") or [{}])[0].get("value"),
    }

"""The identity-signing key's public parts and the trustmark, as GOV.UK One Login publishes them.

- `/.well-known/did.json` (and `/did.json`, for an issuer with a path): the did:web DID
  document; each identity-signing key is an assertionMethod whose id is the kid of the
  coreIdentityJWT header (did:web:<host>#<kid>).
- `/.well-known/identity-jwks.json`: the same keys as a JWKS, kid = that DID URL, for
  libraries that read a JWKS.
- `/trustmark`: what the vot values mean here (the vtm of ID tokens and coreIdentityJWTs).

The ID-token JWKS (/jwks.json) never lists an identity key, nor these an ID-token key.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from idp.accounts.levels import NO_IDENTITY_CONFIDENCE, OFFERED_IDENTITY_LEVELS, VECTORS
from idp.oidc.identity_claims import did_controller, identity_key_id
from idp.oidc.keys import ensure_signing_keys, identity_public_keys
from idp.settings import current_settings

bp = Blueprint("did", __name__)

# The members of a public EC key (RFC 7517/7518); kid and use are given by the DID document.
_PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "alg")


def _published() -> list[dict[str, Any]]:
    keys = identity_public_keys()
    if not keys:
        ensure_signing_keys()
        keys = identity_public_keys()
    return keys


def _cacheable(body: dict[str, Any]) -> Response:
    response = jsonify(body)
    response.headers["Cache-Control"] = f"public, max-age={current_settings().jwks_max_age}"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/.well-known/did.json")
@bp.get("/did.json")
def did_document() -> Response:
    """The did:web DID document (W3C DID Core), in One Login's shape. did:web resolves an
    identifier without a path to /.well-known/did.json, and one with a path (an issuer such as
    https://host/idp is did:web:host:idp) to <path>/did.json: both are answered."""
    controller = did_controller()
    methods = [
        {
            "type": "JsonWebKey",
            "id": identity_key_id(key["kid"]),
            "controller": controller,
            "publicKeyJwk": {m: key[m] for m in _PUBLIC_MEMBERS if m in key},
        }
        for key in _published()
    ]
    return _cacheable(
        {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/jwk/v1"],
            "id": controller,
            "assertionMethod": methods,
        }
    )


@bp.get("/.well-known/identity-jwks.json")
def identity_jwks() -> Response:
    """The identity-signing keys as a JWKS (RFC 7517), each kid the DID URL in the header of
    a coreIdentityJWT."""
    keys = [
        {**{m: key[m] for m in _PUBLIC_MEMBERS if m in key}, "use": "sig"}
        | {"kid": identity_key_id(key["kid"])}
        for key in _published()
    ]
    return _cacheable({"keys": keys})


@bp.get("/trustmark")
def trustmark() -> Response:
    """The trustmark (One Login's vtm document): who issues the levels and which exist here."""
    issuer = current_settings().issuer
    response = jsonify(
        {
            "idp": f"{issuer}/",
            "trustmark_provider": f"{issuer}/",
            "C": list(VECTORS),
            "P": [NO_IDENTITY_CONFIDENCE, *OFFERED_IDENTITY_LEVELS],
        }
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response

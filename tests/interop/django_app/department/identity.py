"""The department's own code for a proved identity, as GOV.UK One Login's documentation tells a
service to write it: govuk-onelogin-django asks for the identity confidence and reads UserInfo;
the service validates the coreIdentityJWT itself before trusting the verified name and birth
date: the ES256 signature with the key its DID document publishes for the header's kid, iss,
aud (its client_id), sub (the citizen's sub in UserInfo), exp and nbf, and vot.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import PermissionDenied
from govuk_onelogin_django.backends import OneLoginBackend
from govuk_onelogin_django.utils import get_client, get_oidc_config, get_userinfo, has_valid_token
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

CORE_IDENTITY_JWT = "https://vocab.account.gov.uk/v1/coreIdentityJWT"
ADDRESS = "https://vocab.account.gov.uk/v1/address"


def identity_key(kid: str) -> ECKey:
    """The public key the DID document gives for kid (did:web:<host>#<key id>)."""
    document = requests.get(settings.DEPARTMENT_DID_URL, timeout=5).json()
    controller, _, _ = kid.partition("#")
    if controller != document["id"]:
        raise PermissionDenied(f"kid {kid} is not a key of {document['id']}")
    for method in document["assertionMethod"]:
        if method["id"] == kid:
            return ECKey.import_key(method["publicKeyJwk"])
    raise PermissionDenied(f"no key {kid} in the DID document")


def verified_identity(userinfo: dict[str, Any]) -> dict[str, Any]:
    """The coreIdentityJWT's claims once every check passes; PermissionDenied otherwise."""
    token = userinfo.get(CORE_IDENTITY_JWT)
    if not token:
        raise PermissionDenied("no coreIdentityJWT in UserInfo")
    try:
        header = jwt.decode(token, lambda obj: identity_key(obj.headers()["kid"]), ["ES256"])
        claims_requests = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": get_oidc_config().issuer},
            aud={"essential": True, "value": settings.GOV_UK_ONE_LOGIN_CLIENT_ID},
            sub={"essential": True, "value": userinfo["sub"]},
            vot={"essential": True, "value": str(settings.GOV_UK_ONE_LOGIN_CONFIDENCE_LEVEL)},
            exp={"essential": True},
            nbf={"essential": True},
        )
        claims_requests.validate(header.claims)
    except JoseError as error:
        raise PermissionDenied(f"the coreIdentityJWT is not valid: {error}") from None
    return header.claims


class VerifiedIdentityBackend(OneLoginBackend):
    """The package's backend, with the department's check of the coreIdentityJWT: a citizen
    whose identity JWT is not valid is not signed in."""

    def authenticate(self, request, **credentials):
        client = get_client(request)
        if not has_valid_token(client):
            return None
        userinfo = get_userinfo(client)
        claims = verified_identity(userinfo)
        subject = claims["vc"]["credentialSubject"]
        parts = subject["name"][0]["nameParts"]
        request.session["verified_name"] = " ".join(p["value"] for p in parts)
        request.session["verified_birth_date"] = subject["birthDate"][0]["value"]
        request.session["verified_postcode"] = (userinfo.get(ADDRESS) or [{}])[0].get("postalCode")
        user = self.get_or_create_user(userinfo)
        return user if self.user_can_authenticate(user) else None

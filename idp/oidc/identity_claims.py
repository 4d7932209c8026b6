"""Verified identity details for departments, asked for and given the GOV.UK One Login way.

A department asks for an identity confidence in `vtr` (["Cl.Cm.P2"]) and for the details in
the OIDC `claims` request parameter (OIDC Core 5.5), userinfo member, with One Login's names
(idp/accounts/identity/vocabulary.py). A department registered for identity claims that asks
P1 or P2 without a `claims` parameter (govuk-onelogin-django cannot send one) gets the claims
it registered for (OIDC Core 5.5 allows claims by registration). A claim it did not register
for is refused with invalid_request naming it.

What a code releases is decided at the authorization endpoint (step 5b) and stored with the
code, then with the tokens it issues, as an IdentityGrant: {"level": "P2", "claims": [...]} when
the identity met the level asked, or {"return_code": "D", "claims": [returnCode]} when the
citizen could not prove it and the department asked to be told why. Userinfo gives a detail
only when the grant names it, the citizen agreed to it on the consent page
(Consent.identity_claims), the department is still registered for it and the identity has not
expired since.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from flask_babel import lazy_gettext as _l
from joserfc import jwt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp import audit, clock
from idp.accounts.identity import vocabulary
from idp.accounts.identity.store import (
    UnreadableIdentity,
    VerifiedIdentity,
    current_identity,
    identity_level,
)
from idp.accounts.levels import (
    IDENTITY_ORDER,
    NO_IDENTITY_CONFIDENCE,
    identity_levels_accepted,
    meets_identity,
    requested_identity_level,
)
from idp.extensions import db
from idp.models import Client, Consent, IdentityCheck, IdentityDisclosure
from idp.models.timestamps import utcnow
from idp.oidc.keys import IDENTITY, signing_key
from idp.settings import current_settings

# A claims parameter naming every identity claim with options is far shorter than this.
MAX_CLAIMS_LENGTH = 2000
# What of a refused claim name the error names: error_description allows printable ASCII only.
_NOT_SHOWN = re.compile(r"[^A-Za-z0-9._:/-]")
# Verified details a citizen agrees to on the consent page; returnCode is not one: it says
# only why an identity could not be proved, to the department the citizen goes back to.
DETAIL_CLAIMS = tuple(c for c in vocabulary.IDENTITY_CLAIMS if c != vocabulary.RETURN_CODE)

# What the consent page tells the citizen each verified detail is.
DETAIL_DESCRIPTIONS = {
    vocabulary.CORE_IDENTITY_JWT: _l("your name and date of birth, as checked"),
    vocabulary.ADDRESS: _l("your address, as checked"),
    vocabulary.PASSPORT: _l("your passport details (number and expiry date)"),
    vocabulary.DRIVING_PERMIT: _l("your driving licence details (number, dates and address)"),
}
CREDENTIAL_TYPES = ["VerifiableCredential", "IdentityCheckCredential"]

log = logging.getLogger("idp.identity")


class InvalidClaimsRequest(ValueError):
    """The claims parameter cannot be honoured; the message says why (for error_description)."""


def _shown(name: str) -> str:
    return _NOT_SHOWN.sub("?", name[:80])


def parse_claims_parameter(value: str) -> tuple[str, ...]:
    """The identity claims a `claims` request parameter asks for in its userinfo member, in
    vocabulary order. Other claims (standard ones, which scopes release) are ignored as OIDC
    Core 5.5 allows; an identity claim in the id_token member or a One Login name this IdP does
    not know is refused."""
    if len(value) > MAX_CLAIMS_LENGTH:
        raise InvalidClaimsRequest(f"claims is too long ({MAX_CLAIMS_LENGTH} characters at most)")
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        raise InvalidClaimsRequest(
            "claims must be a JSON object, such as {'userinfo': {'"
            + vocabulary.CORE_IDENTITY_JWT
            + "': null}}"
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidClaimsRequest("claims must be a JSON object with a userinfo member")
    asked: list[str] = []
    for member in ("userinfo", "id_token"):
        requests = parsed.get(member)
        if requests is None:
            continue
        if not isinstance(requests, dict):
            raise InvalidClaimsRequest(f"claims: the {member} member must be a JSON object")
        for name, options in requests.items():
            if options is not None and not isinstance(options, dict):
                raise InvalidClaimsRequest(
                    f"claims: the request for {_shown(name)} must be null or a JSON object"
                )
            if not name.startswith(vocabulary.VOCAB):
                continue
            if name not in vocabulary.IDENTITY_CLAIMS:
                raise InvalidClaimsRequest(f"claims: {_shown(name)} is not a known claim")
            if member == "id_token":
                raise InvalidClaimsRequest(
                    f"claims: {name} is given by the userinfo endpoint only: ask for it in the"
                    " userinfo member"
                )
            asked.append(name)
    return tuple(c for c in vocabulary.IDENTITY_CLAIMS if c in asked)


def asked_identity_claims(client: Client, params: Mapping[str, str]) -> tuple[str, ...]:
    """The identity claims an authorization request asks for: those of its claims parameter,
    else (when it asks P1 or P2) every identity claim the department is registered for.
    Call after check_identity_claims has accepted the request."""
    named: tuple[str, ...] = ()
    if params.get("claims") is not None:
        try:
            named = parse_claims_parameter(params["claims"])
        except InvalidClaimsRequest:
            return ()
    if named:
        return named
    if requested_identity_level(params) == NO_IDENTITY_CONFIDENCE:
        return ()
    registered = client.reviewed_identity_claims
    return tuple(c for c in vocabulary.IDENTITY_CLAIMS if c in registered)


def check_identity_request(client: Client, params: Mapping[str, str]) -> None:
    """InvalidClaimsRequest unless the identity asked for is one the department may have: a
    well-formed claims parameter, claims it is registered for, and an identity confidence
    (P1 or P2) asked with them."""
    named: tuple[str, ...] = ()
    if params.get("claims") is not None:
        named = parse_claims_parameter(params["claims"])
    registered = client.reviewed_identity_claims
    for name in named:
        if name not in registered:
            raise InvalidClaimsRequest(
                f"claims: this service is not registered for {name}; ask the platform to add"
                " it to the service's identity claims"
            )
    level = requested_identity_level(params)
    if named and level == NO_IDENTITY_CONFIDENCE:
        raise InvalidClaimsRequest(
            f"claims: {named[0]} is a verified identity claim: ask for an identity confidence"
            " in vtr as well, such as ['Cl.Cm.P2']"
        )
    if level != NO_IDENTITY_CONFIDENCE and not registered:
        raise InvalidClaimsRequest(
            f"vtr asks for identity confidence {level}, but this service is not registered for"
            " any verified identity claims"
        )


def released_level(params: Mapping[str, str], held: str) -> str | None:
    """The identity level a request's vtr accepts that an identity held at `held` meets (the
    strongest such), or None when it meets none. P0 when no identity confidence is asked."""
    met = [level for level in identity_levels_accepted(params) if meets_identity(held, level)]
    return max(met, key=IDENTITY_ORDER.index) if met else None


def identity_short(citizen_id: int, params: Mapping[str, str]) -> bool:
    """Whether the citizen's current identity is short of what the request asks for (no
    query when it asks for none: most requests)."""
    asked = requested_identity_level(params)
    if asked == NO_IDENTITY_CONFIDENCE:
        return False
    return not meets_identity(identity_level(citizen_id), asked)


def finished_check_since(citizen_id: int, since) -> IdentityCheck | None:
    """The citizen's latest identity check that ended (proved or failed) after `since` (the
    journey's start): the journey came back from it, so the citizen is not sent round again."""
    return db.session.scalar(
        select(IdentityCheck)
        .where(
            IdentityCheck.citizen_id == citizen_id,
            IdentityCheck.outcome.is_not(None),
            IdentityCheck.started_at >= since,
        )
        .order_by(IdentityCheck.started_at.desc(), IdentityCheck.id.desc())
        .limit(1)
    )


def proved_grant(client: Client, params: Mapping[str, str], citizen_id: int) -> dict | None:
    """What a code releases of a proved identity that meets the request, or None when it asks
    for no identity."""
    if requested_identity_level(params) == NO_IDENTITY_CONFIDENCE:
        return None
    level = released_level(params, identity_level(citizen_id))
    if level in (None, NO_IDENTITY_CONFIDENCE):
        return None
    return {"level": level, "claims": list(asked_identity_claims(client, params))}


def return_code_grant(client: Client, params: Mapping[str, str], code: str) -> dict | None:
    """What a code releases when the citizen could not prove their identity: the returnCode
    claim, if the department asked for it (and is registered for it); else None."""
    if vocabulary.RETURN_CODE not in asked_identity_claims(client, params):
        return None
    return {"return_code": code, "claims": [vocabulary.RETURN_CODE]}


def details_to_consent(client: Client, params: Mapping[str, str], citizen_id: int) -> list[str]:
    """The verified details the citizen is asked to agree to share: those asked that their
    identity holds (a passport only if one was checked), when it meets the request (none
    otherwise: none will be given)."""
    asked = requested_identity_level(params)
    if asked == NO_IDENTITY_CONFIDENCE:
        return []
    # One read: the identity's own level says whether it meets the request.
    identity = readable_identity(citizen_id)
    if identity is None or not meets_identity(identity.level, asked):
        return []
    return [
        claim
        for claim in asked_identity_claims(client, params)
        if claim in DETAIL_CLAIMS
        and all(identity.details.get(d) for d in vocabulary.DETAILS_OF_CLAIM[claim])
    ]


def readable_identity(citizen_id: int) -> VerifiedIdentity | None:
    """The citizen's current identity, or None when there is none, it has expired, or its
    details cannot be decrypted (the identity encryption key changed: told to the operator,
    and nothing is given rather than an error)."""
    try:
        return current_identity(citizen_id)
    except UnreadableIdentity as exc:
        log.warning("citizen %s: %s", citizen_id, exc)
        return None


def describe_details(claims: list[str]) -> list[str]:
    """The consent page's words for each verified detail."""
    return [str(DETAIL_DESCRIPTIONS[c]) for c in claims if c in DETAIL_DESCRIPTIONS]


# -- The identity-signing key: did:web, the DID document, the coreIdentityJWT ------------------


def did_controller() -> str:
    """The IdP's did:web identifier (its host, a port's ":" percent-encoded, then any path of
    the issuer as ":"-separated segments), as One Login's did:web:identity.account.gov.uk."""
    parts = urlsplit(current_settings().issuer)
    segments = [quote(parts.netloc, safe="")]
    segments += [quote(p, safe="") for p in parts.path.split("/") if p]
    return "did:web:" + ":".join(segments)


def identity_key_id(kid: str) -> str:
    """The kid of the coreIdentityJWT header: the DID URL of the key (did:web:...#thumbprint)."""
    return f"{did_controller()}#{kid}"


def trustmark_url() -> str:
    """The vtm of ID tokens and coreIdentityJWTs: the trustmark document's URL."""
    return f"{current_settings().issuer}/trustmark"


def core_identity_jwt(identity: VerifiedIdentity, level: str, subject: str, client_id: str) -> str:
    """The coreIdentityJWT: the verified name and birth date, signed ES256 by the
    identity-signing key, for one department (aud) and its subject for the citizen (sub)."""
    now = int(clock.time())
    claims: dict[str, Any] = {
        "iss": current_settings().issuer,
        "sub": subject,
        "aud": client_id,
        "nbf": now,
        "iat": now,
        "exp": now + current_settings().identity_jwt_lifetime,
        "vot": level,
        "vtm": trustmark_url(),
        "vc": {
            "type": CREDENTIAL_TYPES,
            "credentialSubject": {
                "name": identity.details.get("name", []),
                "birthDate": identity.details.get("birthDate", []),
            },
        },
    }
    key = signing_key(IDENTITY)
    header = {"alg": "ES256", "kid": identity_key_id(key.kid), "typ": "JWT"}
    return jwt.encode(header, claims, key)


# -- Userinfo ----------------------------------------------------------------------------------


def _consented_details(citizen_id: int, client_id: str) -> list[str]:
    consented = db.session.scalar(
        select(Consent.identity_claims).where(
            Consent.citizen_id == citizen_id, Consent.client_id == client_id
        )
    )
    return list(consented or [])


def identity_userinfo(
    grant: dict | None, client: Client, citizen_id: int, subject: str
) -> dict[str, Any]:
    """The identity claims a token's grant releases now (see the module's docstring), with
    the disclosures recorded and audited; {} when it releases none."""
    if not grant:
        return {}
    registered = client.reviewed_identity_claims
    claims = [c for c in grant.get("claims", []) if c in registered]
    if "return_code" in grant:
        if vocabulary.RETURN_CODE not in claims:
            return {}
        return {vocabulary.RETURN_CODE: [{"code": grant["return_code"]}]}
    level = grant.get("level")
    identity = readable_identity(citizen_id)
    if level is None or identity is None or not meets_identity(identity.level, level):
        # Expired or erased since the code was issued: nothing is given.
        return {}
    consented = _consented_details(citizen_id, client.client_id)
    released: dict[str, Any] = {}
    for claim in claims:
        if claim == vocabulary.RETURN_CODE:
            released[claim] = []  # asked, and nothing to report: the identity was proved
        elif claim not in consented:
            continue
        elif claim == vocabulary.CORE_IDENTITY_JWT:
            released[claim] = core_identity_jwt(identity, level, subject, client.client_id)
        else:
            (detail,) = vocabulary.DETAILS_OF_CLAIM[claim]
            if identity.details.get(detail):
                released[claim] = identity.details[detail]
    shared = [c for c in released if c in DETAIL_CLAIMS]
    if shared:
        for attempt in range(2):
            record_disclosures(citizen_id, client.client_id, shared)
            try:
                db.session.commit()
                break
            except IntegrityError:
                # A concurrent userinfo request recorded the first disclosure: update it.
                db.session.rollback()
                if attempt:
                    raise
        audit.record(
            "identity.shared",
            citizen_id=citizen_id,
            client_id=client.client_id,
            claims=shared,
            level=level,
        )
    return released


def record_disclosures(citizen_id: int, client_id: str, claims: list[str]) -> None:
    """That the department received these details now (first and last time), not committed.
    The sharing helper's account page shows them."""
    now = utcnow()
    existing = {
        row.claim: row
        for row in db.session.scalars(
            select(IdentityDisclosure).where(
                IdentityDisclosure.citizen_id == citizen_id,
                IdentityDisclosure.client_id == client_id,
                IdentityDisclosure.claim.in_(claims),
            )
        )
    }
    for claim in claims:
        row = existing.get(claim)
        if row is None:
            db.session.add(
                IdentityDisclosure(
                    citizen_id=citizen_id,
                    client_id=client_id,
                    claim=claim,
                    first_shared_at=now,
                    last_shared_at=now,
                )
            )
        else:
            row.last_shared_at = now

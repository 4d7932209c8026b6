"""What a department learns about a citizen: the subject and the claims of each scope."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import scope_to_list
from flask import current_app
from flask_babel import lazy_gettext as _l

from idp.models import Citizen, Client

if TYPE_CHECKING:
    from idp.oidc.records import CitizenRecord

# OIDC Core 5.4: the claims each scope asks for.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "openid": ("sub",),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "profile": ("name", "given_name", "family_name"),
}

# OIDC Core 11: "I want a refresh token"; granted only to departments registered for the
# refresh_token grant (refresh tokens go to those alone), ignored for any other.
OFFLINE_ACCESS = "offline_access"

SCOPES_SUPPORTED = (*SCOPE_CLAIMS, OFFLINE_ACCESS)

# OIDC Core 8: a subject per department (pairwise, the default) or one for all (public).
SUBJECT_TYPES = ("pairwise", "public")

# What the consent page tells the citizen each claim is.
CLAIM_DESCRIPTIONS = {
    "email": _l("your email address"),
    "email_verified": _l("whether your email address is confirmed"),
    "phone_number": _l("your phone number"),
    "phone_number_verified": _l("whether your phone number is confirmed"),
    "name": _l("your full name"),
    "given_name": _l("your first name"),
    "family_name": _l("your last name"),
}


def pairwise_subject(citizen: Citizen, sector: str) -> str:
    """OIDC Core 8.1: a sub per sector, derived with a keyed hash so that departments cannot
    link citizens across sectors, and stable while the IdP's pairwise secret is."""
    message = f"{sector}\x00{citizen.subject}".encode()
    digest = hmac.new(current_app.config["IDP_PAIRWISE_SECRET"], message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def subject_for(citizen: Citizen, client: Client) -> str:
    """The sub a department sees: pairwise for its sector, or the public subject."""
    if client.subject_type == "public":
        return citizen.subject
    return pairwise_subject(citizen, client.sector_identifier or "")


def claims_for_scope(scope: str) -> list[str]:
    """Every claim the scopes release, in a stable order."""
    names: list[str] = []
    for s in scope_to_list(scope) or []:
        for claim in SCOPE_CLAIMS.get(s, ()):
            if claim not in names:
                names.append(claim)
    return names


def released_claims(client: Client, scope: str, citizen: Citizen | None = None) -> list[str]:
    """What the citizen is told the department will receive, beyond its identifier: only what
    the account holds (nothing promised that userinfo would leave out, such as a phone number
    the citizen never gave)."""
    allowed = claims_for_scope(client.get_allowed_scope(scope))
    if citizen is not None:
        held = user_info(citizen, client, scope)
        allowed = [c for c in allowed if c in held]
    return [str(CLAIM_DESCRIPTIONS[c]) for c in allowed if c != "sub"]


def user_info(citizen: Citizen | CitizenRecord, client: Client, scope: str) -> dict[str, Any]:
    """The UserInfo claims for a token's scope; claims the citizen never gave are left out.
    phone_number is the mobile number confirmed for codes by text message when there is one
    (the record's mobile_number), as GOV.UK One Login gives it."""
    mobile = getattr(citizen, "mobile_number", None)
    values: dict[str, Any] = {
        "sub": subject_for(citizen, client),
        "email": citizen.email,
        "email_verified": citizen.email_verified,
        # As GOV.UK One Login: the mobile number confirmed for codes by text message (so
        # verified), else a number the account holds from elsewhere, as it holds it.
        "phone_number": mobile or citizen.phone_number,
        "phone_number_verified": True
        if mobile
        else (citizen.phone_number_verified if citizen.phone_number else None),
        "name": citizen.name,
        "given_name": citizen.given_name,
        "family_name": citizen.family_name,
    }
    return {c: values[c] for c in claims_for_scope(scope) if values.get(c) is not None}

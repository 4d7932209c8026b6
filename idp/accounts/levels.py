"""Levels of assurance as GOV.UK One Login expresses them: vectors of trust (RFC 8485).

"Cl" is a password alone (low), one of at least 15 characters (shorter ones need the second
factor even for Cl); "Cl.Cm" is a password and a second factor (medium, NIST
SP 800-63B AAL2). A department asks with `vtr` (a JSON list of acceptable vectors, such as
["Cl.Cm"]) or with `acr_values`; with neither it gets "Cl.Cm". The ID token says which
vector the sign-in met in `vot` (and `acr`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

LOW = "Cl"
MEDIUM = "Cl.Cm"
VECTORS = (LOW, MEDIUM)
DEFAULT = (MEDIUM,)
# One Login's identity confidence component: P0 is none; P1 to P3 need identity checks.
NO_IDENTITY_CONFIDENCE = "P0"
IDENTITY_CONFIDENCE_LEVELS = ("P1", "P2", "P3")
# The levels this IdP's identity checks reach (P1 low, P2 medium), and the order of all.
OFFERED_IDENTITY_LEVELS = ("P1", "P2")
IDENTITY_ORDER = (NO_IDENTITY_CONFIDENCE, *IDENTITY_CONFIDENCE_LEVELS)
# RFC 8176 methods that are a second factor (or a phishing-resistant single one). "sms" (a code
# sent by text message) is a restricted authenticator in NIST SP 800-63B (3.1.3.3): it still
# meets Cm, as GOV.UK One Login counts it, and the pages say plainly that an app is safer.
SECOND_FACTOR_METHODS = frozenset({"otp", "sms", "hwk", "swk"})
# Five vectors need far less; a cap keeps deeply nested JSON from the parser (RecursionError).
MAX_VTR_LENGTH = 200
# What of a refused vector the error names: error_description allows printable ASCII only.
_NOT_SHOWN = re.compile(r"[^A-Za-z0-9._-]")


class InvalidVectorOfTrust(ValueError):
    """vtr is not a list of vectors this IdP offers; the message says what is wrong."""


def parse_vtr(value: str) -> tuple[str, ...]:
    """The acceptable vectors in a vtr parameter, e.g. '["Cl.Cm"]' or '["Cl.Cm.P0"]'.

    Each vector is read as GOV.UK One Login reads it: its components in any order, the
    credential ones ("Cl", "Cm") sorted into the vector the sign-in must meet ("Cl" or
    "Cl.Cm"), at most one identity confidence ("P0" to "P3"), other components ignored.
    "P0" asks for no identity confidence, so "Cl.Cm.P0" is "Cl.Cm"; P1 and P2 need a proved
    identity (requested_identity_level reads them) and, as in One Login, the medium credential
    level "Cl.Cm"; P3 is not offered. The result is credential vectors only: the identity
    confidence asked for is read by requested_identity_level.
    """
    if len(value) > MAX_VTR_LENGTH:
        raise InvalidVectorOfTrust(f"vtr is too long ({MAX_VTR_LENGTH} characters at most)")
    try:
        vectors = json.loads(value)
    except (ValueError, RecursionError):
        raise InvalidVectorOfTrust(
            'vtr must be a JSON list of vectors, such as ["Cl.Cm"]'
        ) from None
    if not isinstance(vectors, list) or not vectors or len(vectors) > 5:
        raise InvalidVectorOfTrust('vtr must be a JSON list of vectors, such as ["Cl.Cm"]')
    parsed = []
    for vector in vectors:
        if not isinstance(vector, str):
            raise InvalidVectorOfTrust('vtr must be a JSON list of vectors, such as ["Cl.Cm"]')
        parsed.append(_credential_vector(vector))
    return tuple(dict.fromkeys(parsed))


def _credential_vector(vector: str) -> str:
    """The credential part of one One Login vector ("P0.Cm.Cl" -> "Cl.Cm"), or why not."""
    shown = _NOT_SHOWN.sub("?", vector[:20])
    components = vector.split(".")
    credential = ".".join(sorted(c for c in components if c.startswith("C")))
    confidence = [c for c in components if c.startswith("P")]
    if credential not in VECTORS or len(confidence) > 1:
        raise InvalidVectorOfTrust(
            f"vtr: '{shown}' is not supported (supported: {', '.join(VECTORS)}, optionally with P0)"
        )
    if confidence and confidence[0] != NO_IDENTITY_CONFIDENCE:
        if confidence[0] not in IDENTITY_CONFIDENCE_LEVELS:
            raise InvalidVectorOfTrust(f"vtr: '{shown}' has an unknown identity confidence")
        if confidence[0] not in OFFERED_IDENTITY_LEVELS:
            raise InvalidVectorOfTrust(
                f"vtr: '{shown}' asks for identity confidence {confidence[0]}, which is not"
                f" offered (offered: {', '.join(OFFERED_IDENTITY_LEVELS)})"
            )
        if credential != MEDIUM:
            raise InvalidVectorOfTrust(
                f"vtr: '{shown}' asks for identity confidence {confidence[0]} with {credential}:"
                f" a proved identity needs {MEDIUM} (for example {MEDIUM}.{confidence[0]})"
            )
    return credential


def _identity_confidence(vector: str) -> str:
    """The identity confidence component of one vector, "P0" when it has none."""
    confidence = [c for c in vector.split(".") if c.startswith("P")]
    return confidence[0] if confidence else NO_IDENTITY_CONFIDENCE


def identity_levels_accepted(params: Mapping[str, str]) -> set[str]:
    """The identity confidences of the request's acceptable vectors ({"P0"} without a vtr,
    or with one parse_vtr refuses: the authorization checks refuse it first)."""
    raw = params.get("vtr")
    if raw is None:
        return {NO_IDENTITY_CONFIDENCE}
    try:
        parse_vtr(raw)
        vectors = json.loads(raw)
    except InvalidVectorOfTrust:
        return {NO_IDENTITY_CONFIDENCE}
    return {_identity_confidence(v) for v in vectors}


def requested_identity_level(params: Mapping[str, str]) -> str:
    """The identity confidence the request asks for: "P0" (none), "P1" or "P2".

    Of several acceptable vectors, the lowest identity confidence among them is enough.
    """
    return min(identity_levels_accepted(params), key=IDENTITY_ORDER.index)


def meets_identity(held: str, asked: str) -> bool:
    """Whether an identity proved at level held (or "P0": none) is enough for asked."""
    return IDENTITY_ORDER.index(held) >= IDENTITY_ORDER.index(asked)


def requested_vectors(params: Mapping[str, str]) -> tuple[str, ...]:
    """What the authorization request accepts: vtr, else acr_values, else Cl.Cm."""
    if params.get("vtr") is not None:
        return parse_vtr(params["vtr"])
    acr_values = [v for v in (params.get("acr_values") or "").split() if v in VECTORS]
    # OIDC Core 5.5.1.1: acr values are voluntary; unknown ones fall back to the default.
    return tuple(dict.fromkeys(acr_values)) or DEFAULT


def vector_met(amr: Iterable[str], password_enough_alone: bool = True) -> str | None:
    """The strongest vector a sign-in with these methods meets (None: not even Cl).

    A password alone meets Cl only when it is long enough to be a single factor (NIST SP
    800-63B rev 4 3.1.1.2: 15 characters; password_enough_alone, decided at sign-in).
    """
    if SECOND_FACTOR_METHODS.intersection(amr):
        return MEDIUM
    return LOW if password_enough_alone else None


def session_vector(session) -> str | None:
    """The strongest vector a browser session meets."""
    return vector_met(session.amr or [], bool(session.password_enough_alone))


def achieved_vector(
    amr: Iterable[str], acceptable: tuple[str, ...], password_enough_alone: bool = True
) -> str | None:
    """The acceptable vector the sign-in meets (the strongest it meets), or None."""
    met = vector_met(amr, password_enough_alone)
    if met is None:
        return None
    if met in acceptable:
        return met
    if met == MEDIUM and LOW in acceptable:
        return LOW
    return None

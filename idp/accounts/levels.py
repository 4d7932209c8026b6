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
# RFC 8176 methods that are a second factor (or a phishing-resistant single one).
SECOND_FACTOR_METHODS = frozenset({"otp", "hwk", "swk"})
# Five vectors need far less; a cap keeps deeply nested JSON from the parser (RecursionError).
MAX_VTR_LENGTH = 200
# What of a refused vector the error names: error_description allows printable ASCII only.
_NOT_SHOWN = re.compile(r"[^A-Za-z0-9._-]")


class InvalidVectorOfTrust(ValueError):
    """vtr is not a list of vectors this IdP offers; the message says what is wrong."""


def parse_vtr(value: str) -> tuple[str, ...]:
    """The acceptable vectors in a vtr parameter, e.g. '["Cl.Cm"]'."""
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
    for vector in vectors:
        if not isinstance(vector, str):
            raise InvalidVectorOfTrust('vtr must be a JSON list of vectors, such as ["Cl.Cm"]')
        if vector not in VECTORS:
            # Identity proofing levels (P1, P2...) are not offered by this IdP.
            raise InvalidVectorOfTrust(
                f"vtr: '{_NOT_SHOWN.sub('?', vector[:20])}' is not supported"
                f" (supported: {', '.join(VECTORS)})"
            )
    return tuple(dict.fromkeys(vectors))


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

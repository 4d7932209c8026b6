"""Password hashing with argon2id (argon2-cffi), parameters from settings."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import gettext as _

from idp.settings import current_settings

# Words a guesser tries first on this service (NIST SP 800-63B 3.1.1.2: context-specific
# words); compared after NFKC and case folding, with and without their spaces.
SERVICE_NAMES = ("government sign in", "gov.uk", "govuk")
# A local part this long or longer is refused inside a password; shorter ones are too common.
EMAIL_LOCAL_PART_MIN = 4
# Hashed in place of a password too long to be anyone's, so refusing it takes the usual time.
_OVERSIZED_STAND_IN = "an oversized password is never hashed"


class PasswordPolicyError(ValueError):
    """A proposed password breaks the policy; the message says why."""


@dataclass(frozen=True)
class PasswordCheck:
    """Outcome of checking a password: whether it matched, and a new hash when parameters moved."""

    ok: bool
    new_hash: str | None = None


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    """An argon2id hasher for the given parameters."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def password_hasher() -> PasswordHasher:
    """The hasher configured for this IdP."""
    s = current_settings()
    return _hasher(s.argon2_time_cost, s.argon2_memory_cost, s.argon2_parallelism)


def normalise_for_comparison(text: str) -> str:
    """NFKC, then case folded: the form passwords are compared in against lists and names."""
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 common and breached passwords shipped with zxcvbn, loaded on first use."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(normalise_for_comparison(p) for p in FREQUENCY_LISTS["passwords"])


def is_common_password(password: str) -> bool:
    """Whether the password, ignoring case, width and surrounding spaces, is on the list."""
    normalised = normalise_for_comparison(password)
    listed = common_passwords()
    return normalised in listed or normalised.strip() in listed


def _contains(haystack: str, needle: str) -> bool:
    """Whether needle occurs in haystack, as it is or written without its spaces."""
    return needle in haystack or "".join(needle.split()) in haystack


def check_password_policy(password: str, email: str | None = None) -> None:
    """Refuse a password a guesser would try first (NIST SP 800-63B 3.1.1.2).

    Length is counted in Unicode code points, with no composition rules: spaces and any
    character are welcome. Beyond length, the password must not be a common or breached one,
    nor contain the account's email address (or its local part) or the name of this service.
    """
    s = current_settings()
    if len(password) < s.password_min_length:
        raise PasswordPolicyError(
            _("Your password must be at least %(n)d characters long", n=s.password_min_length)
        )
    if len(password) > s.password_max_length:
        raise PasswordPolicyError(
            _("Your password must be %(n)d characters or fewer", n=s.password_max_length)
        )
    if is_common_password(password):
        raise PasswordPolicyError(
            _("This password is on a list of common or breached passwords. Choose another one.")
        )
    normalised = normalise_for_comparison(password)
    if email:
        address = normalise_for_comparison(email.strip())
        local_part = address.rpartition("@")[0]
        if address in normalised:
            raise PasswordPolicyError(_("Your password must not contain your email address"))
        if len(local_part) >= EMAIL_LOCAL_PART_MIN and _contains(normalised, local_part):
            raise PasswordPolicyError(
                _("Your password must not contain the part of your email address before the @")
            )
    if any(_contains(normalised, name) for name in SERVICE_NAMES):
        raise PasswordPolicyError(_("Your password must not contain the name of this service"))


def hash_password(password: str) -> str:
    """Hash a new password with argon2id."""
    return password_hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> PasswordCheck:
    """Check a password; with no hash, still spend the time of one check (no user enumeration)."""
    hasher = password_hasher()
    s = current_settings()
    if len(password) > s.password_max_length:
        # Never hash megabytes; an oversized password cannot be anyone's. Hash a fixed stand-in
        # instead, so the refusal takes as long as any other failed sign-in.
        hasher.hash(_OVERSIZED_STAND_IN)
        return PasswordCheck(ok=False)
    if password_hash is None:
        hasher.hash(password)
        return PasswordCheck(ok=False)
    try:
        hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return PasswordCheck(ok=False)
    if hasher.check_needs_rehash(password_hash):
        return PasswordCheck(ok=True, new_hash=hasher.hash(password))
    return PasswordCheck(ok=True)

"""Password hashing with argon2id (argon2-cffi), parameters from settings."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import gettext as _

from idp.extensions import db
from idp.models import Client, Department
from idp.settings import current_settings

# Words a guesser tries first on this service (NIST SP 800-63B 3.1.1.2: context-specific
# words); compared after NFKC and case folding, with and without their spaces.
SERVICE_NAMES = ("government sign in", "gov.uk", "govuk")
# A department or service name's word this long or longer is refused as a word of a password;
# these common words of names are not (they say nothing about the service).
SERVICE_WORD_MIN = 3
COMMON_NAME_WORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "your",
        "you",
        "our",
        "with",
        "from",
        "account",
        "accounts",
        "service",
        "services",
        "online",
        "digital",
        "department",
        "ministry",
        "office",
        "agency",
        "government",
        "gov",
    ]
)
_WORD = re.compile(r"\w+")
# A local part this long or longer is refused inside a password; shorter ones are too common.
EMAIL_LOCAL_PART_MIN = 4
# Hashed in place of a password too long to be anyone's, so refusing it takes the usual time.
_OVERSIZED_STAND_IN = "an oversized password is never hashed"
# NFKC shortens a password at most 4 times (a character and up to 3 combining marks make one
# character, as in Greek "ᾯ"): anything longer than this many times the maximum is too long
# without being normalised.
RAW_LENGTH_FACTOR = 4


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

    Length is counted in characters of the NFKC form that is hashed (password_length), with no
    composition rules: spaces and any character are welcome. Beyond length, the password must
    not be a common or breached one, nor contain the account's email address (or its local
    part), the name of this service, or the name (or a significant word of the name) of a
    department or service that uses it.
    """
    s = current_settings()
    if len(password) > RAW_LENGTH_FACTOR * s.password_max_length:
        # Far too long whatever NFKC makes of it: not normalised at all.
        raise PasswordPolicyError(
            _("Your password must be %(n)d characters or fewer", n=s.password_max_length)
        )
    length = password_length(password)
    if length < s.password_min_length:
        raise PasswordPolicyError(
            _("Your password must be at least %(n)d characters long", n=s.password_min_length)
        )
    if length > s.password_max_length:
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
    found = _service_word_in(normalised, service_names())
    if found:
        raise PasswordPolicyError(
            _(
                "Your password must not contain the name of a government department or service"
                " (“%(word)s”)",
                word=found,
            )
        )


def service_names() -> list[str]:
    """The names of the departments and of their services (registered clients): what a guesser
    tries on a government sign in (NIST SP 800-63B 3.1.1.2, context-specific words)."""

    names = list(db.session.scalars(db.select(Department.name)))
    names += [client.client_name for client in db.session.scalars(db.select(Client))]
    return names


def _words(text: str) -> list[str]:
    """The words of a normalised text: runs of letters and digits."""
    return _WORD.findall(text)


def _service_word_in(normalised: str, names: list[str]) -> str | None:
    """The department or service name, or significant word of one, the password contains.

    A whole name counts anywhere in the password (with or without its spaces and
    punctuation), as this
    service's own name does; a significant word of a name (three letters or more, not a
    common word such as "your" or "account") counts when it is a whole word of the password,
    so "tax" is refused in "my tax password" but not in "syntax".
    """
    password_words = _words(normalised)
    compact_password = "".join(password_words)
    for name in names:
        name = normalise_for_comparison(name).strip()
        compact_name = "".join(_words(name))
        if len(compact_name) < SERVICE_WORD_MIN:
            continue
        # The whole name, with or without its spaces and punctuation.
        if _contains(normalised, name) or compact_name in compact_password:
            return name
        for word in _words(name):
            significant = len(word) >= SERVICE_WORD_MIN and word not in COMMON_NAME_WORDS
            if significant and word in password_words:
                return word
    return None


def normalise_password(password: str) -> str:
    """NFKC (NIST SP 800-63B 3.1.1.2): the same password typed on another keyboard or device
    (composed or decomposed accents, full-width letters) is the same password."""
    return unicodedata.normalize("NFKC", password)


def password_length(password: str) -> int:
    """The length every rule counts: characters (code points) of the NFKC form, the form that
    is hashed. "e" and a combining accent are one character; "ﷺ" is the 18 it stands for."""
    return len(normalise_password(password))


def enough_alone(password: str) -> bool:
    """Whether the password is long enough to be a single factor ("Cl"): decided when it is
    checked at sign-in, so nothing about it is stored.

    Counted the stricter way, as typed or after NFKC, whichever is shorter: one character that
    NFKC expands into many ("ﷺ") is one keystroke to a guesser, not 18.
    """
    shorter = min(len(password), password_length(password))
    return shorter >= current_settings().password_single_factor_min_length


def hash_password(password: str) -> str:
    """Hash a new password with argon2id, after NFKC."""
    return password_hasher().hash(normalise_password(password))


def verify_password(password_hash: str | None, password: str) -> PasswordCheck:
    """Check a password; with no hash, still spend the time of one check (no user enumeration)."""
    hasher = password_hasher()
    s = current_settings()
    if _oversized(password, s.password_max_length):
        # Never hash megabytes; an oversized password cannot be anyone's. Hash a fixed stand-in
        # instead, so the refusal takes as long as any other failed sign-in.
        hasher.hash(_OVERSIZED_STAND_IN)
        return PasswordCheck(ok=False)
    if password_hash is None:
        hasher.hash(password)
        return PasswordCheck(ok=False)
    normalised = normalise_password(password)
    if _matches(hasher, password_hash, normalised):
        if hasher.check_needs_rehash(password_hash):
            return PasswordCheck(ok=True, new_hash=hasher.hash(normalised))
        return PasswordCheck(ok=True)
    # A hash from before passwords were normalised: the password as it was typed then. On a
    # match the hash is replaced by one of the normalised form.
    if normalised != password and _matches(hasher, password_hash, password):
        return PasswordCheck(ok=True, new_hash=hasher.hash(normalised))
    return PasswordCheck(ok=False)


def _oversized(password: str, max_length: int) -> bool:
    """Longer than any password ever accepted: the maximum is of the NFKC form now, and was of
    the password as typed before, so only a password over it both ways cannot be anyone's.
    Anything longer than RAW_LENGTH_FACTOR times the maximum is not even normalised."""
    if len(password) <= max_length:
        return False
    return len(password) > RAW_LENGTH_FACTOR * max_length or password_length(password) > max_length


def _matches(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False

"""Password hashing with argon2id (argon2-cffi), parameters from settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask_babel import gettext as _

from idp.settings import current_settings


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


def check_password_policy(password: str) -> None:
    """Refuse passwords that are too short or too long (NIST SP 800-63B 3.1.1.2)."""
    s = current_settings()
    if len(password) < s.password_min_length:
        raise PasswordPolicyError(
            _("Your password must be at least %(n)d characters long", n=s.password_min_length)
        )
    if len(password) > s.password_max_length:
        raise PasswordPolicyError(
            _("Your password must be %(n)d characters or fewer", n=s.password_max_length)
        )


def hash_password(password: str) -> str:
    """Hash a new password with argon2id."""
    return password_hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> PasswordCheck:
    """Check a password; with no hash, still spend the time of one check (no user enumeration)."""
    hasher = password_hasher()
    s = current_settings()
    if len(password) > s.password_max_length:
        # Never hash megabytes; an oversized password cannot be anyone's.
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

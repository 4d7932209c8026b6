"""One-time codes sent by email: proof that a citizen reads an address.

Four journeys use them: creating an account, resetting a forgotten password, changing the
account's email address, and proving the address again before a new authenticator app.
The browser that asked for a code keeps a random handle in its
(signed) Flask session; the database keeps only the handle's hash, the code's keyed hash, and
how many wrong codes were tried. So a code works only in the browser that asked for it, five
wrong codes spend it, and it expires after 15 minutes.

A journey that must not reveal whether an address has an account (sign-up with a taken
address, a reset for an unknown one) gets a row with no code: the pages look the same, and
no code works.
"""

from __future__ import annotations

from datetime import timedelta

from flask import session
from sqlalchemy import update

from idp.accounts.one_time_codes import (
    Outcome,
    check_code,
    keyed_hash,
    new_code,
    row_for_session,
)
from idp.extensions import db
from idp.models import EmailCode
from idp.models.timestamps import utcnow
from idp.security.secrets import hash_token, new_token

# "reverify": the account's own address again, before a new authenticator app.
PURPOSES = ("sign_up", "reset_password", "change_email", "reverify")
CODE_LIFETIME = timedelta(minutes=15)
# After the right code, the step it unlocks (a password, say) must be done within this.
VERIFIED_LIFETIME = timedelta(minutes=30)


def _session_key(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown email code purpose {purpose!r}")
    return f"email_code:{purpose}"


def _code_hash(handle_hash: str, code: str) -> str:
    return keyed_hash("", handle_hash, code)


def issue(
    purpose: str, email: str, *, citizen_id: int | None = None, deliverable: bool = True
) -> str | None:
    """Start a journey for an address in this browser; the code to send, or None (no code
    works: the journey must only look like a real one)."""
    handle = new_token(24)
    handle_hash = hash_token(handle)
    code = new_code() if deliverable else None
    now = utcnow()
    row = EmailCode(
        handle_hash=handle_hash,
        purpose=purpose,
        email=email,
        citizen_id=citizen_id,
        code_hash=_code_hash(handle_hash, code) if code else None,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    db.session.add(row)
    db.session.commit()
    session[_session_key(purpose)] = handle
    return code


def pending(purpose: str) -> EmailCode | None:
    """This browser's journey for the purpose, while it can still be finished."""
    row = row_for_session(EmailCode, _session_key(purpose), purpose)
    if row is None or row.used_at is not None:
        return None
    return row


def check(row: EmailCode, typed: str) -> Outcome:
    """Check a typed code (spaces and dashes ignored); a right one verifies the journey."""
    return check_code(
        row,
        typed,
        _code_hash,
        lambda model, now: (model.used_at.is_(None), model.verified_at.is_(None)),
        lambda now: {"verified_at": now, "expires_at": now + VERIFIED_LIFETIME},
    )


def verified(purpose: str) -> EmailCode | None:
    """This browser's journey for the purpose once its code was typed, until it expires."""
    row = pending(purpose)
    if row is None or row.verified_at is None or utcnow() >= row.expires_at:
        return None
    return row


def spend(row: EmailCode) -> bool:
    """Mark a verified journey as done, in the caller's transaction (not committed): True once
    only, so two tabs (or processes) cannot both use one verified code."""
    done = db.session.execute(
        update(EmailCode)
        .where(
            EmailCode.id == row.id,
            EmailCode.used_at.is_(None),
            EmailCode.verified_at.is_not(None),
            EmailCode.expires_at > utcnow(),
        )
        .values(used_at=utcnow())
    )
    return done.rowcount == 1


def forget(purpose: str) -> None:
    """Forget this browser's journey for the purpose."""
    session.pop(_session_key(purpose), None)


def forget_every_journey() -> None:
    """At sign-out: no half-finished journey (a code typed or texted, a reset past its second
    factor, a new app's key, a passkey ceremony) is left for the next person at this browser."""
    prefixes = ("email_code:", "sms_code:", "reset_password:", "manage:", "passkey")
    for key in [k for k in session if k.startswith(prefixes)]:
        session.pop(key, None)

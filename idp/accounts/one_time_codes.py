"""Six-digit codes sent to a citizen (by email or text message), as both kinds keep them.

The browser that asked keeps a random handle in its signed session; the database keeps only
the handle's hash and the code's keyed hash. A code is checked against its row: right once,
within its lifetime, before five wrong guesses spend it. Each kind says what a right code
does to its row (an email code is verified for a while, a text message code is used at once).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from flask import current_app, session
from sqlalchemy import update

from idp.extensions import db
from idp.models.timestamps import utcnow
from idp.security.secrets import hash_token

MAX_ATTEMPTS = 5
CODE_DIGITS = 6
# A handle in a session longer than this is nobody's: the database is not asked.
MAX_HANDLE_LENGTH = 64


class Outcome(enum.Enum):
    """What checking a typed code found."""

    VERIFIED = "verified"
    WRONG = "wrong"
    SPENT = "spent"  # too many wrong codes: ask for a new one
    EXPIRED = "expired"


def new_code() -> str:
    """A random code of CODE_DIGITS digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def keyed_hash(kind: str, handle_hash: str, code: str) -> str:
    """A keyed hash: six digits are guessable from a plain hash, not without the app's key.
    kind keeps one kind's hash from matching another's."""
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, f"{kind}{handle_hash}:{code}".encode(), hashlib.sha256).hexdigest()


def row_for_session(model: Any, session_key: str, purpose: str) -> Any | None:
    """The row of this browser's handle for the purpose (used or not), if any."""
    handle = session.get(session_key)
    if not isinstance(handle, str) or len(handle) > MAX_HANDLE_LENGTH:
        return None
    return db.session.scalar(
        db.select(model).filter_by(handle_hash=hash_token(handle), purpose=purpose)
    )


def check_code(
    row: Any,
    typed: str,
    code_hash: Callable[[str, str], str],
    right_when: Callable[[Any, datetime], Iterable[Any]],
    right_values: Callable[[datetime], dict[str, Any]],
) -> Outcome:
    """Check a typed code (spaces and dashes ignored) against its row.

    A right code updates the row with right_values, on the conditions right_when adds, in one
    conditional UPDATE, so a code spent by wrong guesses (or used) in another process cannot
    also succeed here; a wrong one counts an attempt.
    """
    model = type(row)
    now = utcnow()
    if now >= row.expires_at:
        return Outcome.EXPIRED
    if row.attempts >= MAX_ATTEMPTS:
        return Outcome.SPENT
    code = "".join(ch for ch in typed if ch not in " -")
    right = row.code_hash is not None and hmac.compare_digest(
        row.code_hash, code_hash(row.handle_hash, code)
    )
    if right:
        done = db.session.execute(
            update(model)
            .where(model.id == row.id, model.attempts < MAX_ATTEMPTS, *right_when(model, now))
            .values(**right_values(now))
        )
        db.session.commit()
        db.session.refresh(row)
        return Outcome.VERIFIED if done.rowcount == 1 else Outcome.SPENT
    db.session.execute(update(model).where(model.id == row.id).values(attempts=model.attempts + 1))
    db.session.commit()
    db.session.refresh(row)
    return Outcome.SPENT if row.attempts >= MAX_ATTEMPTS else Outcome.WRONG

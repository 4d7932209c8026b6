"""Staff sessions and the staff cookie.

Staff sign in at /staff/sign-in, separately from citizens: a separate table, a separate
cookie (SameSite=Strict, shorter lifetimes), so a citizen session never grants staff rights.
The password makes a session with amr ["pwd"] that opens only the second step; the code from
the staff member's authenticator app replaces it with a new session, amr ["pwd", "otp"].
"""

from __future__ import annotations

from datetime import timedelta

from flask import Response, g

from idp import audit
from idp.accounts.sessions import find_live_row, record_activity, timed_out
from idp.extensions import db
from idp.models import StaffMember, StaffSession
from idp.models.timestamps import utcnow
from idp.security.cookies import clear_session_cookie, read_cookie, set_session_cookie
from idp.security.secrets import hash_token, new_token
from idp.settings import current_settings

STAFF_COOKIE = "idp_staff"
# How sessions record the factors used (RFC 8176).
AMR_PASSWORD = "pwd"
AMR_OTP = "otp"


def start_staff_session(member: StaffMember, amr: list[str]) -> StaffSession:
    """A new staff session (new identifier at every step of sign-in); the old one ends."""
    previous = current_staff_session()
    if previous is not None:
        end_staff_session(previous)
    value = new_token(32)
    now = utcnow()
    session = StaffSession(
        token_hash=hash_token(value),
        staff_id=member.id,
        created_at=now,
        last_active_at=now,
        expires_at=now + timedelta(seconds=current_settings().staff_session_absolute_lifetime),
        amr=amr,
    )
    db.session.add(session)
    db.session.commit()
    g.staff_session = session
    g.new_staff_cookie = value
    return session


def current_staff_session() -> StaffSession | None:
    """This browser's live staff session, or None (absent, ended, idle, expired, disabled)."""
    if "staff_session" in g:
        return g.staff_session
    g.staff_session = None
    session = find_live_row(StaffSession, read_cookie(STAFF_COOKIE))
    if session is None:
        return None
    now = utcnow()
    idle_timeout = current_settings().staff_session_idle_timeout
    if timed_out(session, idle_timeout, now) or session.staff.disabled_at is not None:
        end_staff_session(session)
        return None
    record_activity(session, now)
    g.staff_session = session
    return session


def has_both_factors(session: StaffSession) -> bool:
    """Whether the session was signed in with the password and the authenticator app."""
    return AMR_OTP in (session.amr or []) and AMR_PASSWORD in (session.amr or [])


def current_staff() -> StaffMember | None:
    """The signed-in staff member (both factors), or None; a password alone is not enough."""
    session = current_staff_session()
    return session.staff if session is not None and has_both_factors(session) else None


def end_staff_session(session: StaffSession) -> None:
    """End a staff session for good."""
    if session.ended_at is None:
        session.ended_at = utcnow()
        db.session.commit()
    if g.get("staff_session") is session:
        g.staff_session = None
    g.clear_staff_cookie = True


def apply_staff_cookie(response: Response) -> Response:
    """Set or clear the staff cookie after a request that changed the staff session."""
    if g.get("new_staff_cookie"):
        # Never persistent: the browser forgets it when it closes (idp/security/cookies.py).
        set_session_cookie(response, STAFF_COOKIE, g.new_staff_cookie, samesite="Strict")
    elif g.get("clear_staff_cookie"):
        clear_session_cookie(response, STAFF_COOKIE, samesite="Strict")
    return response


def step_up_staff_session(session: StaffSession) -> StaffSession:
    """The second factor is done: a new session (new identifier) that records both factors."""
    amr = list(dict.fromkeys([*(session.amr or [AMR_PASSWORD]), AMR_OTP]))
    new = start_staff_session(session.staff, amr=amr)
    audit.record(
        "staff.second_factor.succeeded", methods=new.amr, staff_id=new.staff_id, role=new.staff.role
    )
    return new

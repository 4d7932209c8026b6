"""Staff accounts: platform administrators and department administrators, and their sessions.

Staff sign in at /staff/sign-in, separately from citizens: a separate table, a separate
cookie (SameSite=Strict, shorter lifetimes), so a citizen session never grants staff rights.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Response, g, request
from sqlalchemy.exc import IntegrityError

from idp import audit
from idp.accounts.services import normalise_email
from idp.accounts.sessions import find_live_row, record_activity, timed_out
from idp.extensions import db
from idp.models import Department, StaffMember, StaffSession
from idp.models.staff import ROLE_DEPARTMENT_ADMIN, STAFF_ROLES
from idp.models.timestamps import utcnow
from idp.security.passwords import (
    PasswordPolicyError,
    check_password_policy,
    hash_password,
    verify_password,
)
from idp.security.secrets import hash_token, new_token
from idp.settings import current_settings

STAFF_COOKIE = "idp_staff"
# NIST SP 800-63B rev 4: 15 characters for a password that is the only factor (staff have no
# second factor yet).
STAFF_PASSWORD_MIN_LENGTH = 15


class StaffError(ValueError):
    """A staff account cannot be created or used as asked; the message says why."""


def create_staff(
    email: str, password: str, role: str, department: Department | None = None
) -> StaffMember:
    """A new staff account; department administrators belong to exactly one department."""
    if role not in STAFF_ROLES:
        raise StaffError(f"role must be one of {', '.join(STAFF_ROLES)}")
    if role == ROLE_DEPARTMENT_ADMIN and department is None:
        raise StaffError("a department administrator needs a department")
    if role != ROLE_DEPARTMENT_ADMIN and department is not None:
        raise StaffError("only department administrators belong to a department")
    try:
        address = normalise_email(email)
    except ValueError as exc:
        raise StaffError(str(exc)) from None
    if len(password) < STAFF_PASSWORD_MIN_LENGTH:
        raise StaffError(
            f"a staff password must be at least {STAFF_PASSWORD_MIN_LENGTH} characters long"
        )
    try:
        check_password_policy(password, email=address)
    except PasswordPolicyError as exc:
        raise StaffError(str(exc)) from None
    member = StaffMember(
        email=address,
        password_hash=hash_password(password),
        role=role,
        department_id=department.id if department else None,
    )
    db.session.add(member)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise StaffError(f"a staff account for {address} already exists") from None
    audit.record(
        "staff.created",
        staff_id=member.id,
        role=role,
        department=department.name if department else None,
    )
    return member


def disable_staff(member: StaffMember, *, actor: str) -> None:
    """Switch a staff account off: it cannot sign in, and its sessions end now."""
    if member.disabled_at is None:
        now = utcnow()
        member.disabled_at = now
        db.session.execute(
            db.update(StaffSession)
            .where(StaffSession.staff_id == member.id, StaffSession.ended_at.is_(None))
            .values(ended_at=now)
        )
        db.session.commit()
        audit.record("staff.disabled", staff_id=member.id, actor=actor)


def authenticate_staff(email: str, password: str) -> StaffMember | None:
    """The staff member with this email and password; unknown emails cost one hash too."""
    try:
        address = normalise_email(email)
    except ValueError:
        address = None
    member = db.session.scalar(db.select(StaffMember).filter_by(email=address)) if address else None
    check = verify_password(member.password_hash if member else None, password)
    if member is None or not check.ok or member.disabled_at is not None:
        audit.record(
            "staff.sign_in",
            outcome="failure",
            reason="disabled" if member and check.ok else "bad credentials",
            staff_id=member.id if member else None,
        )
        return None
    if check.new_hash:
        member.password_hash = check.new_hash
        db.session.commit()
    audit.record("staff.sign_in", staff_id=member.id, role=member.role)
    return member


def start_staff_session(member: StaffMember) -> StaffSession:
    """A new staff session (new identifier at every sign-in); the old one ends."""
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
    session = find_live_row(StaffSession, request.cookies.get(STAFF_COOKIE))
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


def current_staff() -> StaffMember | None:
    """The signed-in staff member, or None."""
    session = current_staff_session()
    return session.staff if session else None


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
    secure = current_settings().cookies_secure
    if g.get("new_staff_cookie"):
        response.set_cookie(
            STAFF_COOKIE,
            g.new_staff_cookie,
            max_age=current_settings().staff_session_absolute_lifetime,
            httponly=True,
            samesite="Strict",
            secure=secure,
            path="/",
        )
    elif g.get("clear_staff_cookie"):
        response.delete_cookie(
            STAFF_COOKIE, path="/", httponly=True, samesite="Strict", secure=secure
        )
    return response

"""Staff accounts: platform administrators, department administrators and auditors. Auditors
read the audit record and change nothing; the administrators cannot read it
(can_read_audit_record): running the platform and auditing it are separate duties.

Every staff sign-in has two factors (NIST SP 800-63B AAL2): the password (authenticate_staff),
then a code from the staff member's authenticator app (set up at their first sign-in). The
app's secret is encrypted and each code accepted once, through the same functions as
citizens' apps. The sessions and the staff cookie are idp/staff/sessions.py.
"""

from __future__ import annotations

import pyotp
from sqlalchemy.exc import IntegrityError

from idp import audit, clock
from idp.accounts.citizens import normalise_email
from idp.accounts.second_factor.logic import (
    claim_totp_step,
    decrypt_totp_secret,
    encrypt_totp_secret,
    matching_totp_step,
    totp_uri,
)
from idp.extensions import db
from idp.models import Department, StaffMember, StaffSession
from idp.models.staff import ROLE_AUDITOR, ROLE_DEPARTMENT_ADMIN, STAFF_ROLES
from idp.models.timestamps import utcnow
from idp.security.passwords import (
    PasswordPolicyError,
    check_password_policy,
    hash_password,
    verify_password,
)
from idp.staff.sessions import AMR_PASSWORD

# NIST SP 800-63B rev 4: 15 characters for a password used alone. Staff also have a second
# factor now; the length stays, so no existing staff password becomes too short.
STAFF_PASSWORD_MIN_LENGTH = 15
# The name the authenticator app shows beside the code: apart from a citizen account with the
# same email address.
STAFF_TOTP_ISSUER = "Government sign in staff"


class StaffError(ValueError):
    """A staff account cannot be created or used as asked; the message says why."""


def create_staff(
    email: str, password: str, role: str, department: Department | None = None
) -> StaffMember:
    """A new staff account; department administrators belong to exactly one department,
    platform administrators and auditors to none."""
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


def can_read_audit_record(member: StaffMember | None) -> bool:
    """Whether this member may read the audit record: auditors only (who change nothing)."""
    return member is not None and member.role == ROLE_AUDITOR and member.disabled_at is None


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
            "staff.sign_in.failed",
            outcome="failure",
            reason=(
                "no_account" if member is None else "wrong_password" if not check.ok else "disabled"
            ),
            methods=[AMR_PASSWORD],
            staff_id=member.id if member else None,
        )
        return None
    if check.new_hash:
        member.password_hash = check.new_hash
        db.session.commit()
    # The password step only: "staff.second_factor.succeeded" follows once the second factor is.
    audit.record(
        "staff.sign_in.succeeded", methods=[AMR_PASSWORD], staff_id=member.id, role=member.role
    )
    return member


# -- The second factor: an authenticator app (RFC 6238) ----------------------------------------


def has_staff_second_factor(member: StaffMember) -> bool:
    """Whether the staff member has a confirmed authenticator app."""
    return member.totp_secret_encrypted is not None and member.totp_confirmed_at is not None


def begin_staff_totp_enrolment(member: StaffMember, secret: str | None = None) -> str:
    """A new unconfirmed secret for the member's app (replacing an unconfirmed one)."""
    if has_staff_second_factor(member):
        raise StaffError(f"{member.email} already has an authenticator app")
    secret = secret or pyotp.random_base32()
    member.totp_secret_encrypted = encrypt_totp_secret(secret)
    member.totp_confirmed_at = None
    db.session.commit()
    return secret


def staff_totp_secret(member: StaffMember) -> str | None:
    """The member's app secret (confirmed or not), decrypted; None when there is none."""
    if member.totp_secret_encrypted is None:
        return None
    return decrypt_totp_secret(member.totp_secret_encrypted)


def staff_totp_uri(member: StaffMember, secret: str) -> str:
    """The otpauth:// URI the member's app reads from the QR code."""
    return totp_uri(member.email, secret, issuer_name=STAFF_TOTP_ISSUER)


def check_staff_totp(member: StaffMember, code: str, *, confirming: bool = False) -> bool:
    """Whether code is a fresh code from the member's app; a used code never works again."""
    secret = staff_totp_secret(member)
    if secret is None or (member.totp_confirmed_at is None) != confirming:
        return False
    step = matching_totp_step(secret, code, clock.time())
    if step is None:
        return False
    if not claim_totp_step(StaffMember.totp_last_used_step, member.id, step):
        audit.record("staff.second_factor.replayed", outcome="failure", staff_id=member.id)
        return False
    return True


def confirm_staff_totp(member: StaffMember, code: str) -> bool:
    """Confirm the member's new app with a code from it."""
    if not check_staff_totp(member, code, confirming=True):
        return False
    member.totp_confirmed_at = utcnow()
    db.session.commit()
    audit.record("staff.second_factor.enrolled", staff_id=member.id, method="totp")
    return True


def reset_staff_second_factor(member: StaffMember, *, actor: str) -> int:
    """Forget the member's app (lost or replaced) and end their sessions; how many ended.

    At their next sign-in, after the password, they set up a new app.
    """
    now = utcnow()
    member.totp_secret_encrypted = None
    member.totp_confirmed_at = None
    # Steps used with the old secret mean nothing for a new one.
    member.totp_last_used_step = 0
    ended = db.session.execute(
        db.update(StaffSession)
        .where(StaffSession.staff_id == member.id, StaffSession.ended_at.is_(None))
        .values(ended_at=now)
    ).rowcount
    db.session.commit()
    audit.record("staff.second_factor.reset", staff_id=member.id, actor=actor, sessions_ended=ended)
    return ended

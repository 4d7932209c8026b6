"""Citizen account services: create, authenticate. Views call these; these touch the models."""

from __future__ import annotations

from email_validator import EmailNotValidError
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from idp import audit
from idp.accounts.email_codes import logic as email_codes
from idp.extensions import db
from idp.models import Citizen, EmailCode
from idp.models.citizen import canonical_email
from idp.security.passwords import (
    PasswordPolicyError,
    check_password_policy,
    hash_password,
    verify_password,
)


class AccountError(ValueError):
    """An account cannot be created or changed; the message says why, for the citizen."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def normalise_email(email: str) -> str:
    """The canonical form of an email address (domain lower-cased), or AccountError."""
    try:
        return canonical_email(email)
    except EmailNotValidError:
        raise AccountError(
            _("Enter an email address in the correct format, like name@example.com"), "email"
        ) from None


def find_citizen_by_email(email: str) -> Citizen | None:
    """The citizen with this email, if any."""
    try:
        canonical = normalise_email(email)
    except AccountError:
        return None
    return db.session.scalar(db.select(Citizen).filter_by(email=canonical))


def create_citizen(
    email: str,
    password: str,
    *,
    given_name: str | None = None,
    family_name: str | None = None,
    email_verified: bool = False,
    email_code: EmailCode | None = None,
) -> Citizen:
    """Create an account; AccountError names the problem.

    With email_code (a verified sign-up journey), the account is created with its address
    verified, and the code is spent in the same transaction: one code, one account.
    """
    canonical = normalise_email(email)
    try:
        check_password_policy(password, email=canonical)
    except PasswordPolicyError as exc:
        raise AccountError(str(exc), "password") from None
    citizen = Citizen(
        email=canonical,
        email_verified=email_verified,
        password_hash=hash_password(password),
        given_name=(given_name or "").strip() or None,
        family_name=(family_name or "").strip() or None,
    )
    if email_code is not None:
        if email_code.email != canonical or not email_codes.spend(email_code):
            db.session.rollback()
            raise AccountError(
                _("Your email code has expired or was used. Start again to get a new one."),
                "email",
            )
        citizen.email_verified = True
    db.session.add(citizen)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AccountError(
            _("An account already exists with this email address"), "email"
        ) from None
    audit.record("citizen.signed_up", citizen_id=citizen.id)
    return citizen


def authenticate_citizen(email: str, password: str) -> Citizen | None:
    """The citizen if the password is right; the same work is done for an unknown email."""
    citizen = find_citizen_by_email(email)
    check = verify_password(citizen.password_hash if citizen else None, password)
    if citizen is None or not check.ok:
        # The citizen is told the same either way; the record says which (never the address
        # typed, nor the password), and names a citizen only when the account exists.
        audit.record(
            "sign_in.failed",
            outcome="failure",
            reason="no_account" if citizen is None else "wrong_password",
            citizen_id=citizen.id if citizen else None,
            methods=["pwd"],
        )
        return None
    if check.new_hash:
        # argon2 parameters moved since this password was set: upgrade the stored hash.
        citizen.password_hash = check.new_hash
        db.session.commit()
    return citizen

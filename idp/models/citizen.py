"""A citizen: one account for every department."""

import secrets
from datetime import datetime

from email_validator import validate_email
from sqlalchemy import String, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


def canonical_email(email: str) -> str:
    """The form an email address is stored and looked up in (domain lower-cased); raises
    email_validator's EmailNotValidError (a ValueError) for an address that is not one."""
    return validate_email(email.strip(), check_deliverability=False).normalized.lower()


def new_subject() -> str:
    """A random, stable public subject identifier (never the database id or the email)."""
    return secrets.token_urlsafe(24)


class Citizen(db.Model):
    """A person with one login for every department."""

    __tablename__ = "citizen"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(default=False)
    password_hash: Mapped[str] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    phone_number: Mapped[str | None] = mapped_column(String(32))
    phone_number_verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A department's CI account (`idp citizens create --test-citizen`): its authenticator codes
    # may be reused within their time step, only while IDP_ALLOW_TEST_CITIZENS is on.
    test_citizen: Mapped[bool] = mapped_column(default=False, server_default=false())

    def get_user_id(self) -> int:
        """Authlib's hook: the internal id of the resource owner."""
        return self.id

    @property
    def name(self) -> str | None:
        """The full name, when the citizen gave one."""
        parts = [p for p in (self.given_name, self.family_name) if p]
        return " ".join(parts) or None

"""A citizen's proved identity, the checks that prove it, and what departments received.

Verified details (names, birth date, address, document numbers) are stored encrypted
(idp/accounts/identity/store.py); what a department received is recorded by claim name only.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class IdentityRecord(db.Model):
    """The identity a citizen proved, at a level of confidence, until it expires."""

    __tablename__ = "identity_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), unique=True
    )
    # GOV.UK One Login's identity confidence: "P1" (low) or "P2" (medium).
    level: Mapped[str] = mapped_column(String(4))
    # The verified details in One Login's shapes (name, birthDate, address, passport,
    # drivingPermit), as encrypted JSON.
    details_encrypted: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The check that proved it (IdentityCheck.reference), named in the audit record.
    reference: Mapped[str] = mapped_column(String(64))


class IdentityCheck(db.Model):
    """An identity check in progress: the credentials the evidence services issued so far."""

    __tablename__ = "identity_check"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random; the evidence services' credentials name it as their subject.
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An encrypted JSON object: the verifiable credentials (JWTs) received, by kind of check,
    # and anything the next step needs (such as the knowledge questions asked).
    state_encrypted: Mapped[str] = mapped_column(Text)
    # None while in progress; "proved" or "failed" at the end.
    outcome: Mapped[str | None] = mapped_column(String(16))
    # Why it failed, as One Login's returnCode letter a department can act on.
    return_code: Mapped[str | None] = mapped_column(String(8))


class IdentityDisclosure(db.Model):
    """That a department received one verified detail of a citizen (a claim), and when."""

    __tablename__ = "identity_disclosure"
    __table_args__ = (UniqueConstraint("citizen_id", "client_id", "claim"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    claim: Mapped[str] = mapped_column(String(100))
    first_shared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_shared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

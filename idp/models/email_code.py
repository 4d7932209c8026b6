"""One-time codes sent by email: proof that a citizen reads an address."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class EmailCode(db.Model):
    """A code sent to an address for one purpose: sign up, reset a password, change email.

    The browser that asked keeps a random handle (only its hash is stored), so a code works
    only in the browser it was asked from. A row without a code_hash accepts no code: it
    stands for a request that must look the same as a real one (an address that already has
    an account at sign-up, or none at password reset) without saying so.
    """

    __tablename__ = "email_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320))
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the right code was typed; the step it unlocks must follow within the expiry.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When what it unlocked was done (account created, password reset): never twice.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

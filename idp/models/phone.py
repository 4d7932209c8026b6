"""Text-message codes: a citizen's confirmed mobile number, and the codes sent to one."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow

# E.164: a plus and at most 15 digits (ITU-T E.164 6.1).
E164_LENGTH = 16


class PhoneNumber(db.Model):
    """A citizen's mobile number for codes by text message (RFC 8176 "sms"), in E.164.

    A row exists only once a code sent to the number was typed back: a number waiting for its
    code lives in its SmsCode row, so an unconfirmed number never counts as a second factor.
    """

    __tablename__ = "phone_number"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), unique=True
    )
    number: Mapped[str] = mapped_column(String(E164_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SmsCode(db.Model):
    """A code sent by text message for one purpose: signing in, or confirming a number.

    As with EmailCode, the browser that asked keeps a random handle (only its hash is stored),
    so a code works only in that browser; the code is stored as a keyed hash. It works once,
    until it expires, and a few wrong codes spend it.
    """

    __tablename__ = "sms_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(16))
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(E164_LENGTH))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the right code was typed: it never works again.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

"""Counters of failed attempts, for throttling sign-in (the database store; Redis is the other).

Keys are SHA-256 digests of a normalised email address or an IP address: the table never holds
an email address, and never a password.
"""

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime


class ThrottleCounter(db.Model):
    """Failures of one kind for one account (consecutive) or one IP address (in a window)."""

    __tablename__ = "throttle_counter"
    __table_args__ = (UniqueConstraint("kind", "scope", "key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # A kind of secret ("password", "second_factor"...), or "endpoint" (machine-facing endpoints).
    kind: Mapped[str] = mapped_column(String(32))
    # "account" or "device" (consecutive failures), "total" or "device_total" (failures across
    # lockouts, for the cap), "ip" or "client" (failures in a fixed window), "notice" (when the
    # owner was last told of a lock).
    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Accounts: when the failures are forgotten; IP addresses: the end of the window.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

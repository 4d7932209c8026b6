"""Back-channel logout: which departments took part in a session, and the logout tokens owed
to them, stored so that any IdP process can deliver them, after a restart too."""

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class SessionClient(db.Model):
    """A department that received tokens in a single sign-on session (OIDC Back-Channel
    Logout 2.7: the RPs to notify when it ends), with the sid it was told. When the citizen
    signs in again in the same browser (prompt=login, step-up), the session gets a new sid and
    these rows move to it: the department keeps its sid until the session really ends."""

    __tablename__ = "session_client"
    __table_args__ = (UniqueConstraint("session_id", "client_id", "sid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("browser_session.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(String(128))
    sid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogoutDelivery(db.Model):
    """A logout token owed to one department for one ended session, until it is delivered
    or every attempt has failed. Holds the department's sub, so it outlives the account."""

    __tablename__ = "logout_delivery"
    __table_args__ = (UniqueConstraint("sid", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    sid: Mapped[str] = mapped_column(String(64))
    sub: Mapped[str] = mapped_column(String(255))
    # Kept without a foreign key: the delivery must survive the account's deletion.
    citizen_id: Mapped[int | None] = mapped_column(Integer)
    # Why the session ended (signed_out, expired, administrator, account_deleted...).
    reason: Mapped[str] = mapped_column(String(32))
    # pending, delivered or failed.
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # A worker holds the delivery until then, so two processes never send it at once.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LogoutAttempt(db.Model):
    """One attempt to deliver a logout token, and what came of it."""

    __tablename__ = "logout_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("logout_delivery.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # delivered, rejected (the department answered 4xx), error (5xx), unreachable, timeout,
    # refused (the IdP would not send to that address).
    outcome: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)

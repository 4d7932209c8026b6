"""The single sign-on session: server side, found by the hash of a random cookie value."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.citizen import Citizen
from idp.models.timestamps import UTCDateTime, utcnow


class BrowserSession(db.Model):
    """One browser's signed-in state; the cookie holds only a random identifier."""

    __tablename__ = "browser_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Whether the password typed at this sign-in was long enough to be a single factor ("Cl",
    # NIST SP 800-63B rev 4: 15 characters); decided when it was checked, never stored itself.
    password_enough_alone: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    user_agent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_active_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(32))
    # The session that took over when the same citizen signed in again in this browser: its
    # departments (and codes issued here but not yet redeemed) belong to that one now.
    replaced_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("browser_session.id", ondelete="SET NULL")
    )

    citizen: Mapped[Citizen] = relationship(lazy="joined", foreign_keys=[citizen_id])

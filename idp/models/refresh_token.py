"""Refresh tokens: rotated at every use, in families that share one absolute lifetime."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.citizen import Citizen
from idp.models.timestamps import UTCDateTime, utcnow


class RefreshToken(db.Model):
    """One refresh token, stored by its hash. Each use replaces it with a new one in the same
    family; using a replaced one again revokes the whole family (RFC 9700 4.14.2)."""

    __tablename__ = "refresh_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    # The sign-in the family comes from: its session, when and how (for refreshed ID tokens).
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    vot: Mapped[str | None] = mapped_column(String(16))
    # What the family releases of a proved identity, copied from its code.
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The family's absolute end: rotation never moves it.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    citizen: Mapped[Citizen] = relationship(lazy="joined")

    def check_client(self, client) -> bool:
        """Whether the token was issued to this client."""
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        """The scopes granted."""
        return self.scope

    def get_auth_time(self) -> int:
        """When the citizen signed in, as seconds since the epoch."""
        return int(self.auth_time.timestamp())

    def is_expired(self) -> bool:
        """Past the family's absolute lifetime."""
        return self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        """Revoked, or already used (rotated away)."""
        return self.revoked_at is not None or self.used_at is not None

"""Initial access tokens: a platform administrator's permission to register a client
through the RFC 7591 API."""

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.department import Department
from idp.models.timestamps import UTCDateTime, utcnow


class InitialAccessToken(db.Model):
    """A bearer token allowing a limited number of registrations until it expires."""

    __tablename__ = "initial_access_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="CASCADE")
    )
    # Registrations made with a pre-approved token are active at once; otherwise pending.
    pre_approved: Mapped[bool] = mapped_column(default=False)
    max_uses: Mapped[int] = mapped_column(default=1)
    uses: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department | None] = relationship(lazy="joined")

    def is_usable(self, now: datetime) -> bool:
        """Not revoked, not expired, and registrations left."""
        return self.revoked_at is None and now < self.expires_at and self.uses < self.max_uses

"""A citizen's remembered consent to share claims with a department."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class Consent(db.Model):
    """The scopes a citizen agreed to share with one client."""

    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("citizen_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    scope: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The verified identity details (One Login claim names) agreed to, or None for none.
    identity_claims: Mapped[list[Any] | None] = mapped_column(JSON)

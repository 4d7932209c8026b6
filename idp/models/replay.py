"""Client assertion identifiers already seen, so a jti is never accepted twice."""

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime


class UsedClientAssertion(db.Model):
    """A (client, jti) pair, kept until the assertion could no longer be valid."""

    __tablename__ = "used_client_assertion"
    __table_args__ = (UniqueConstraint("client_id", "jti_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    jti_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

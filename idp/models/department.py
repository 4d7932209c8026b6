"""A government department (an organisation) that owns services and staff."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class Department(db.Model):
    """An organisation whose administrators register and manage its services."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # The name in Welsh, shown on the citizen's pages when they read them in Welsh.
    name_cy: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def name_in(self, language: str) -> str:
        """The name in a language the department gave one for (Welsh), else its name."""
        return (self.name_cy if language == "cy" else None) or self.name

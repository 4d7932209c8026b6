"""A sign-in journey in progress: the authorization request waiting for sign-in or consent."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class Interaction(db.Model):
    """Stored authorization request parameters, so a journey can finish on any IdP process."""

    __tablename__ = "interaction"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The hash of the browser's journey cookie: only the browser that started it may continue.
    browser_hash: Mapped[str] = mapped_column(String(64))
    # The session (sid) in which the citizen agreed on the consent page, if they did.
    consented_sid: Mapped[str | None] = mapped_column(String(64))

"""Time helpers shared by the models: every stored time is UTC."""

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

from idp import clock


def utcnow() -> datetime:
    """The current time in UTC, timezone-aware (idp.clock, which tests move)."""
    return clock.now()


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Store aware datetimes converted to UTC."""
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        """Read back an aware UTC datetime."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

"""Reading the audit record in tests: the stored entries, and the JSON lines on the logger."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from idp.extensions import db
from idp.models import AuditEntry

# Every column of an entry, for dumping the whole table as text.
COLUMNS = [column.name for column in AuditEntry.__table__.columns]


def flat(event: dict[str, Any]) -> dict[str, Any]:
    """An audit line's fields with its details beside them (a detail never hides a field)."""
    return {**(event.get("details") or {}), **event}


def logged_events(text: str) -> list[dict[str, Any]]:
    """The audit events among logged lines, flattened."""
    return [flat(json.loads(line)) for line in text.splitlines() if line.startswith("{")]


def stored_entries(idp, **filters: Any) -> list[dict[str, Any]]:
    """The entries in the audit table (oldest first) as dictionaries of every column, with
    the details beside them; filters are exact column values, e.g. event="sign_in.failed"."""
    with idp.app.app_context():
        rows = db.session.scalars(
            db.select(AuditEntry).filter_by(**filters).order_by(AuditEntry.seq)
        ).all()
        return [flat({name: getattr(row, name) for name in COLUMNS}) for row in rows]


def table_text(idp) -> str:
    """Every column of every entry of the audit table, as one text."""
    with idp.app.app_context():
        rows = db.session.execute(db.select(AuditEntry.__table__)).all()
    return "\n".join("\t".join(str(value) for value in row) for row in rows)


@contextmanager
def captured_log(
    name: str = "idp", level: int = logging.INFO, *, as_stdout: bool = False
) -> Iterator[io.StringIO]:
    """What the named logger writes while the block runs; as_stdout: formatted as standard
    output shows it (with the formatter of the IdP's own handler)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger(name)
    if as_stdout and logger.handlers and logger.handlers[0].formatter is not None:
        handler.setFormatter(logger.handlers[0].formatter)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)

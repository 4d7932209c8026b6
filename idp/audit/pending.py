"""Writing an event as a waiting entry (audit_pending), without touching the chain's head: one
INSERT, committed exactly when what it records is (idp/audit/linker.py chains it later).

Where the INSERT goes:

- A success, while the caller's transaction holds writes of its own: into that transaction.
  It commits with the work it records, and a caller that rolls back loses both, as it should.
- A success after the caller's work was committed (the usual ``commit()`` then ``record()``),
  or with no work at all (a page read): on a connection of its own, committed at once. It
  never joins a transaction that holds only reads, since a caller that reads and never commits
  would lose it.
- A failure: on a connection of its own, committed at once, so a refused request that rolls
  back its work keeps the record of the refusal. On SQLite a caller holding the database's
  write lock would make that connection wait for the caller, so the entry is held in memory
  and written when the caller's transaction ends: into it when it commits, on its own right
  after it rolls back (or is closed).

Which transactions hold writes is tracked on the session (``session.info``) by the listeners
below: every flush and every INSERT, UPDATE or DELETE executed through the session.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from idp.audit.linker import log_line
from idp.extensions import db
from idp.models import AuditPending

failures = logging.getLogger("idp.audit.store")

# session.info keys: the current transaction holds writes; failures held for its end (SQLite).
WROTE = "audit_transaction_wrote"
HELD = "audit_held_entries"
# Text statements that write.
WRITING_TEXT = re.compile(r"\s*(insert|update|delete|merge|upsert)\b", re.IGNORECASE)
# Built once, its values passed as parameters: building `.values(**entry)` for every event
# cost a third of a journey's time in SQLAlchemy's statement construction.
INSERT_PENDING = insert(AuditPending.__table__)


def store(entry: dict[str, Any], outcome: str) -> None:
    """Write the entry as waiting, where its outcome says (see the module's docstring)."""
    session = db.session()
    writes = holds_writes(session)
    if outcome == "success" and writes:
        session.connection().execute(INSERT_PENDING, entry)
        return
    if writes and session.get_bind().dialect.name == "sqlite":
        session.info.setdefault(HELD, []).append(entry)
        return
    with db.engine.begin() as connection:
        connection.execute(INSERT_PENDING, entry)


def note_writes() -> None:
    """The request's transaction holds writes the listeners cannot see (Core statements run on
    the session's connection directly, as the protocol's hot path does): a success recorded
    before its commit rides in it, one INSERT, instead of a transaction of its own."""
    db.session().info[WROTE] = True


def holds_writes(session: Session) -> bool:
    """Whether the session's transaction has written (or is about to flush) anything."""
    return bool(
        session.info.get(WROTE)
        or session.new
        or session.deleted
        or any(session.is_modified(row) for row in session.dirty)
    )


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush_context: Any) -> None:
    """A flush wrote rows: the transaction holds writes."""
    session.info[WROTE] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    """An INSERT, UPDATE or DELETE through session.execute: the transaction holds writes."""
    text = getattr(state.statement, "text", None)  # a text() statement's SQL
    if (
        state.is_insert
        or state.is_update
        or state.is_delete
        or (isinstance(text, str) and WRITING_TEXT.match(text))
    ):
        state.session.info[WROTE] = True


@event.listens_for(Session, "before_commit")
def _commit_held(session: Session) -> None:
    """Failures held while the caller had SQLite's write lock commit with its work."""
    held = session.info.get(HELD)
    if held and not session.in_nested_transaction():
        session.connection().execute(INSERT_PENDING, held)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    """The held failures committed with the caller's work."""
    session.info.pop(HELD, None)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    """The caller's transaction is over: a new one starts with no writes, and failures still
    held (it rolled back, or was closed) are written on their own now that the lock is free."""
    if transaction.parent is not None:
        return
    session.info.pop(WROTE, None)
    held = session.info.pop(HELD, None)
    if not held:
        return
    try:
        with db.engine.begin() as connection:
            connection.execute(INSERT_PENDING, held)
    except Exception:  # noqa: BLE001 - raised here it would break the caller's rollback
        for entry in held:
            log_line(entry, None)
        failures.error("%d held audit entries could not be stored", len(held), exc_info=True)

"""The linker: chains the entries audit.record left waiting (audit_pending) into the hash chain,
a batch at a time, so no request ever waits for the chain's head.

How it stays linear and loses nothing, with any number of processes:

- One linker at a time. On PostgreSQL each batch's transaction first takes an advisory lock
  (LINK_LOCK_KEY): the background workers try it and skip their turn when another process
  holds it (``wait=False``); commands that need the whole chain (verify, export, a checkpoint)
  wait for it. On SQLite the database's single write lock does the same.
- One transaction per batch: it deletes the batch from audit_pending (taking the write lock on
  SQLite before anything is read), reads the head under its row lock, inserts the chained
  entries and moves the head once. A process killed at any moment leaves either the whole
  batch chained or none of it, still waiting: nothing lost, nothing twice.
- Entries are chained in the order the linker finds them (their pending id), which is close
  to, but need not be, the order their transactions committed in; each entry keeps the time
  it was recorded.

Each chained entry also goes to standard output as one JSON line (the ``idp.audit`` logger)
with its seq and entry_hash, once its batch has committed, so a copy kept off-host matches
the chain line for line.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from datetime import UTC
from typing import Any

from flask import Flask, g
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from idp.audit.chain import GENESIS, content_hash, entry_hash, personal_digest
from idp.extensions import db, discard_session
from idp.models import AuditEntry, AuditHead, AuditPending
from idp.models.audit import EVENT_FIELDS

log = logging.getLogger("idp.audit")
failures = logging.getLogger("idp.audit.store")

# Entries chained per transaction: one head update each.
BATCH = 500
# The PostgreSQL advisory lock held by the one process linking (checkpoints use 0x1DA0D17).
LINK_LOCK_KEY = 0x1DA0D18
# flask.g flag: this app context recorded an event (audit.record sets it).
RECORDED = "audit_recorded"

_linking = threading.Lock()


def log_line(entry: dict[str, Any], stored: tuple[int, str] | None) -> None:
    """One JSON object per line, with the entry's seq and hash once chained (so a copy kept
    off-host can be compared with the chain). json.dumps escapes control characters, so
    user-controlled text (a user agent, a reason) cannot forge a line."""
    line = {name: entry[name] for name in EVENT_FIELDS}
    line["time"] = entry["time"].astimezone(UTC).isoformat()  # as read back: any zone
    if stored is not None:
        line["seq"], line["entry_hash"] = stored
    log.info(json.dumps(line, default=str, sort_keys=True))


def recreate_head(connection) -> None:
    """The head row is gone (it is made by the migration): put it back from the newest
    entry, and say so loudly; truncation before that is for the signed checkpoints to show."""

    table = AuditEntry.__table__
    newest = connection.execute(
        select(table.c.seq, table.c.entry_hash).order_by(table.c.seq.desc()).limit(1)
    ).first()
    seq, head_hash = newest if newest is not None else (0, GENESIS)
    if newest is not None:
        failures.error("the audit chain's head row was missing: rebuilt at entry %d", seq)
    dialect_insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        dialect_insert(AuditHead.__table__)
        .values(id=1, seq=seq, head_hash=head_hash)
        .on_conflict_do_nothing()
    )


def link_pending(*, wait: bool = True, batch: int = BATCH) -> int:
    """Chain the waiting entries, a batch per transaction, until none is left; how many were
    chained. wait=False (the background workers): give up at once, chaining nothing, when
    another thread or process is linking. Call it with no write of your own pending in
    db.session: it uses a connection of its own (on SQLite it would wait for your write lock)."""
    # One thread of this process at a time, so its lines come out in chain order too.
    if not _linking.acquire(blocking=wait):
        return 0
    try:
        linked = 0
        while True:
            with db.engine.begin() as connection:
                chained = _link_batch(connection, wait=wait, batch=batch)
            if chained is None:
                return linked
            for entry in chained:
                log_line(entry, (entry["seq"], entry["entry_hash"]))
            linked += len(chained)
            if len(chained) < batch:
                return linked
    finally:
        _linking.release()


def _link_batch(connection, *, wait: bool, batch: int) -> list[dict[str, Any]] | None:
    """Chain up to batch waiting entries in the connection's transaction; the entries as
    chained, or None when another process holds the linker's lock (wait=False only)."""
    if connection.dialect.name == "postgresql":
        if wait:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LINK_LOCK_KEY})
        elif not connection.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LINK_LOCK_KEY}
        ):
            return None
    waiting = _claim(connection, batch)
    if not waiting:
        return []
    seq, prev = _lock_head(connection)
    chained = []
    for row in waiting:
        seq += 1
        chained.append(_chained(row, seq, prev))
        prev = chained[-1]["entry_hash"]
    connection.execute(insert(AuditEntry.__table__), chained)
    head = AuditHead.__table__
    connection.execute(update(head).where(head.c.id == 1).values(seq=seq, head_hash=prev))
    return chained


def _claim(connection, batch: int) -> list[Any]:
    """Take the oldest waiting entries out of audit_pending (a write first: on SQLite it takes
    the database's write lock before anything is read), oldest first."""
    pending = AuditPending.__table__
    oldest = select(pending.c.id).order_by(pending.c.id).limit(batch)
    claim = delete(pending).where(pending.c.id.in_(oldest.scalar_subquery())).returning(*pending.c)
    return sorted(connection.execute(claim).all(), key=lambda row: row.id)


def _lock_head(connection) -> tuple[int, str]:
    """The head's seq and hash, under its row lock (rebuilt if its row is missing)."""
    head = AuditHead.__table__
    read = select(head.c.seq, head.c.head_hash).where(head.c.id == 1).with_for_update()
    row = connection.execute(read).first()
    if row is None:
        recreate_head(connection)
        row = connection.execute(read).first()
    return row[0], row[1]


def _chained(row: Any, seq: int, prev_hash: str) -> dict[str, Any]:
    """A waiting entry as the chain stores it at seq, linked to prev_hash: a fresh salt for
    its personal fields' digest, its content hash and its link (idp/audit/chain.py)."""
    fields = {name: getattr(row, name) for name in EVENT_FIELDS}
    salt = secrets.token_hex(16)
    digest = personal_digest(salt, fields["citizen_id"], fields["ip"], fields["user_agent"])
    link = entry_hash(prev_hash, content_hash({**fields, "seq": seq}, digest))
    return {
        **fields,
        "seq": seq,
        "personal_salt": salt,
        "personal_digest": digest,
        "prev_hash": prev_hash,
        "entry_hash": link,
    }


def pending_count() -> int:
    """How many entries are recorded but not yet chained."""
    return db.session.scalar(select(func.count()).select_from(AuditPending)) or 0


def not_yet_chained(count: int) -> str:
    """The words verify and the auditor pages use for entries still waiting."""
    return f"{count} {'entry is' if count == 1 else 'entries are'} not yet chained"


def link_after_each_context(app: Flask) -> None:
    """Chain what each request (or command) recorded as it ends, besides the background
    worker's batches: the audit_link_each_request setting (the tests' choice, so every page
    shows the entries of the requests before it)."""

    @app.teardown_appcontext
    def link_recorded_entries(_error: BaseException | None) -> None:
        """Runs before Flask-SQLAlchemy's own teardown (teardowns run last first)."""
        if not g.pop(RECORDED, False):
            return
        discard_session()  # ends the request's transaction (and SQLite's write lock) first
        try:
            link_pending()
        except Exception:  # noqa: BLE001 - the entries wait for the worker; the page is served
            failures.error("the audit entries could not be chained yet", exc_info=True)

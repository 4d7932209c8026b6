"""Walking the stored chain entry by entry: checking each link. Shared by `idp audit verify`
(idp/audit/verify.py, the whole chain) and the checkpoint's check of the entries it is about to
sign (idp/audit/checkpoints.py), so neither imports the other.

The chain is walked in segments (runs of consecutive seqs): walk_segment checks every entry of a
segment against its own hashes and against the entry before it in the segment, and ChainWalk
joins the segments in order, checking where each one meets the last. One segment is the whole
chain for a small one; a long chain is split across processes (idp/audit/parallel.py), since
each entry stores its prev_hash and can be checked without the entries before it.

Entries are read as plain rows of the columns the checks need, a server-side cursor streaming
them (no ORM objects: at ten million entries building them cost more than the hashing), and
hashed by the fast forms of idp/audit/chain.py. A fast hash that does not match is computed
again by the reference functions before an entry is called edited, so a difference between
the two forms could only slow the walk, never change its verdict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from idp.audit.chain import (
    CONTENT_FIELDS,
    content_hash,
    entry_hash,
    fields_of,
    in_key_order,
    personal_digest,
    stored_entry_hash,
    stored_personal_digest,
)
from idp.extensions import db
from idp.models import AuditEntry

# Rows fetched from the server at a time.
BATCH = 20000
# Different details texts whose canonical form is kept (most entries share a few shapes).
DETAILS_KEPT = 50000

# What the checks read of an entry, in this order: CONTENT_FIELDS, then the chain's columns.
COLUMNS = (
    *CONTENT_FIELDS,
    "personal_digest",
    "personal_salt",
    "citizen_id",
    "ip",
    "user_agent",
    "erased_at",
    "prev_hash",
    "entry_hash",
)


@dataclass
class Report:
    """What verification found: ok, or the first problem and where."""

    entries: int = 0
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problem: str | None = None
    bad_seq: int | None = None
    # Entries recorded but not yet chained (verify_chain counts them).
    pending: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No problem found."""
        return self.problem is None

    def fail(self, message: str, seq: int | None = None) -> Report:
        """Record the first problem (later ones are consequences of it)."""
        if self.problem is None:
            self.problem = message
            self.bad_seq = seq
        return self


@dataclass
class Segment:
    """What walking a run of consecutive entries found: where it starts (its first entry and
    the prev_hash that entry stores, for ChainWalk to link to the segment before), where it
    ends, the entries without personal fields, the erasures recorded, and its first problem."""

    entries: int = 0
    first_seq: int | None = None
    first_prev: str | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    erased: list[int] = field(default_factory=list)
    recorded_erasures: set[int] = field(default_factory=set)
    problem: str | None = None
    bad_seq: int | None = None


def entry_rows(connection: Connection, first: int, stop: int | None = None) -> Iterator[Any]:
    """The rows (COLUMNS) of the entries from seq first on, below stop if given, in seq order,
    streamed from a server-side cursor BATCH rows at a time."""
    table = AuditEntry.__table__
    columns = [table.c[name] for name in COLUMNS]
    # details as its stored JSON text: walk_rows keeps each text it has parsed.
    columns[COLUMNS.index("details")] = db.cast(table.c.details, db.Text)
    postgresql = connection.dialect.name == "postgresql"
    if postgresql:
        # The time as format_time writes it, by the server (years 1000 to 9999 alike).
        utc = db.func.timezone("UTC", table.c.time)
        columns[COLUMNS.index("time")] = db.func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    query = select(*columns).where(table.c.seq >= first).order_by(table.c.seq)
    if stop is not None:
        query = query.where(table.c.seq < stop)
    if postgresql:
        yield from _driver_rows(connection, query)
        return
    result = connection.execution_options(yield_per=BATCH).execute(query)
    for rows in result.partitions():
        yield from rows


def _driver_rows(connection: Connection, query: Any) -> Iterator[tuple]:
    """PostgreSQL: the rows as psycopg's named (server-side) cursor gives them, in binary, as
    plain tuples: SQLAlchemy's rows cost as much again as the checks. No column needs what
    SQLAlchemy's types add (the time is text and details its JSON text already)."""
    compiled = query.compile(dialect=connection.dialect)
    driver = connection.connection.driver_connection
    with driver.cursor(name="idp_audit_walk", binary=True) as cursor:
        cursor.itersize = BATCH
        cursor.execute(str(compiled), compiled.params)
        yield from cursor


def gap_problem(expected: int, seq: int) -> str:
    """The entries before seq are missing."""
    missing = f"entry {expected}" if seq == expected + 1 else f"entries {expected} to {seq - 1}"
    return f"{missing} deleted: the chain jumps from {expected - 1} to {seq}"


def link_problem(seq: int) -> str:
    """Entry seq does not link to the entry before it."""
    return (
        f"entry {seq} does not follow entry {seq - 1}: an entry was inserted, deleted or "
        "reordered there (its prev_hash is not the previous entry's hash)"
    )


def checkpoint_problem(signed_before: int, seq: int, checkpoint_id: int) -> str:
    """The chain up to seq is not what the checkpoint of seq signed."""
    return (
        f"an entry from {signed_before + 1} to {seq} differs from what checkpoint "
        f"{checkpoint_id} signed (it was edited and the hashes after it recomputed)"
    )


def walk_segment(
    connection: Connection,
    first: int,
    stop: int | None = None,
    heads: dict[int, tuple[int, str]] | None = None,
    signed_before: int = 0,
) -> Segment:
    """Check the entries from seq first to before stop (to the end if None): each entry's
    personal digest, content hash and entry hash, each link to the entry before it in the
    segment (the first entry's link is ChainWalk's to check), and each checkpoint among them
    (heads: seq -> (checkpoint id, signed head hash); signed_before: the newest checkpointed
    seq before the segment)."""
    return walk_rows(connection, entry_rows(connection, first, stop), heads or {}, signed_before)


def walk_rows(
    connection: Connection,
    rows: Iterable[Any],
    heads: dict[int, tuple[int, str]],
    signed_before: int,
) -> Segment:
    """walk_segment, over rows read already."""
    segment = Segment()
    details_texts: dict[str, Any] = {}
    expected, prev = None, None
    for row in rows:
        # (Positions in COLUMNS: seq, event, personal_salt, prev_hash, entry_hash.)
        seq, event, salt, prev_hash, stored_hash = row[0], row[2], row[14], row[19], row[20]
        if expected is None:
            segment.first_seq, segment.first_prev = seq, prev_hash
        elif seq > expected:
            return _failed(segment, gap_problem(expected, seq), seq)
        elif prev_hash != prev:
            return _failed(segment, link_problem(seq), seq)
        problem = _entry_problem(connection, row, details_texts)
        if problem is not None:
            return _failed(segment, problem, seq)
        if salt is None:
            segment.erased.append(seq)
        if event == "audit.erased":
            details = json.loads(row[11])
            segment.recorded_erasures.update((details or {}).get("erased_seqs") or [])
        checkpoint = heads.get(seq)
        if checkpoint is not None and checkpoint[1] != stored_hash:
            before = max((head for head in heads if head < seq), default=signed_before)
            return _failed(segment, checkpoint_problem(before, seq, checkpoint[0]), seq)
        expected, prev = seq + 1, stored_hash
        segment.entries += 1
        segment.last_seq, segment.last_hash = seq, stored_hash
    return segment


def _failed(segment: Segment, problem: str, seq: int) -> Segment:
    segment.problem, segment.bad_seq = problem, seq
    return segment


def _entry_problem(connection: Connection, row: Any, details_texts: dict[str, Any]) -> str | None:
    """Whether one entry's own hashes hold (with the prev_hash it stores); the problem or None.
    details_texts keeps each details text seen, parsed with its keys in order."""
    (
        seq, time, event, outcome, reason, client_id, session_ref, request_id, level, methods,
        instance, details, software_version, digest, salt, citizen_id, ip, agent, erased_at,
        prev_hash, stored_hash,
    ) = row  # fmt: skip
    if salt is not None:
        if stored_personal_digest(salt, citizen_id, ip, agent) != digest and (
            personal_digest(salt, citizen_id, ip, agent) != digest
        ):
            return f"entry {seq} was edited: its citizen, IP or user agent changed"
    elif erased_at is None or any((citizen_id, ip, agent)):
        return f"entry {seq} was edited: its personal fields lost their salt"
    ordered = details_texts.get(details)
    if ordered is None:
        if len(details_texts) >= DETAILS_KEPT:
            details_texts.clear()
        ordered = details_texts[details] = in_key_order(json.loads(details))
    linked = stored_entry_hash(
        prev_hash, seq, time, event, outcome, reason, client_id, session_ref, request_id,
        level, methods, instance, ordered, software_version, digest,
    )  # fmt: skip
    if linked != stored_hash and not _matches_reference(connection, seq):
        return f"entry {seq} was edited: its content no longer matches its hash"
    return None


def _matches_reference(connection: Connection, seq: int) -> bool:
    """Whether entry seq, read again with SQLAlchemy's types (as the ORM reads it), hashes to
    its entry_hash by the reference functions of idp/audit/chain.py (the writer's)."""
    table = AuditEntry.__table__
    row = connection.execute(
        select(*table.c[CONTENT_FIELDS], table.c.personal_digest, table.c.prev_hash)
        .add_columns(table.c.entry_hash)
        .where(table.c.seq == seq)
    ).one()
    content = content_hash(fields_of(row), row.personal_digest)
    return entry_hash(row.prev_hash, content) == row.entry_hash


class ChainWalk:
    """Segments joined in seq order into one walk from (start, the hash it links to): where
    each meets the last, the first entry must be the next seq and link to the last hash."""

    def __init__(self, start: int, prev: str, report: Report | None = None):
        self.start = start
        self.expected, self.prev = start, prev
        self.report = report if report is not None else Report()
        self.erased: list[int] = []
        self.recorded_erasures: set[int] = set()

    def add(self, segment: Segment) -> bool:
        """Follow the chain through one segment; False once a problem is found."""
        report = self.report
        if segment.first_seq is None:
            return True
        seq = segment.first_seq
        if report.first_seq is None:
            report.first_seq = seq
            if seq < self.start:
                report.fail(f"entry {seq} appears before the chain's start", seq)
                return False
        if seq > self.expected:
            report.fail(gap_problem(self.expected, seq), seq)
            return False
        if segment.first_prev != self.prev:
            report.fail(link_problem(seq), seq)
            return False
        report.entries += segment.entries
        if segment.problem is not None:
            report.fail(segment.problem, segment.bad_seq)
            return False
        self.erased.extend(segment.erased)
        self.recorded_erasures.update(segment.recorded_erasures)
        report.last_seq = segment.last_seq
        self.expected, self.prev = segment.last_seq + 1, segment.last_hash
        return True


def check_since(start: tuple[int, str], head_seq: int, head_hash: str) -> str | None:
    """Whether the entries from start (seq, the hash it links to) up to the head link up and
    end at head_hash; the problem in words, or None."""
    walk = ChainWalk(*start)
    if not walk.add(walk_segment(db.session.connection(), start[0], head_seq + 1)):
        return walk.report.problem
    if walk.expected != head_seq + 1 or walk.prev != head_hash:
        return f"the entries up to {head_seq} do not end at the chain's head"
    return None

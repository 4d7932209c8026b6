"""`idp audit verify`: check the whole chain and its checkpoints, and name the first entry that
was edited, inserted, deleted or reordered, or the point where the chain was cut short."""

from __future__ import annotations

from dataclasses import dataclass, field

from idp.audit.chain import GENESIS, content_hash, entry_hash, fields_of, personal_digest
from idp.audit.checkpoints import (
    CheckpointError,
    check_checkpoint,
    latest_anchor,
    public_keys,
)
from idp.extensions import db
from idp.models import AuditCheckpoint, AuditEntry, AuditHead

BATCH = 5000


@dataclass
class Report:
    """What verification found: ok, or the first problem and where."""

    entries: int = 0
    checkpoints: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    problem: str | None = None
    bad_seq: int | None = None
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


def _entries(start: int):
    """Every entry from seq start on, in seq order, a batch at a time."""
    after = start - 1
    while True:
        batch = db.session.scalars(
            db.select(AuditEntry)
            .where(AuditEntry.seq > after)
            .order_by(AuditEntry.seq)
            .limit(BATCH)
        ).all()
        if not batch:
            return
        yield from batch
        after = batch[-1].seq
        db.session.expunge_all()


def _check_entry(entry: AuditEntry, expected_seq: int, prev: str, report: Report) -> str | None:
    """Check one entry against the chain so far; the hash to link the next one to, or None."""
    seq = entry.seq
    if seq > expected_seq:
        missing = (
            f"entry {expected_seq}"
            if seq == expected_seq + 1
            else (f"entries {expected_seq} to {seq - 1}")
        )
        report.fail(f"{missing} deleted: the chain jumps from {expected_seq - 1} to {seq}", seq)
        return None
    if entry.prev_hash != prev:
        report.fail(
            f"entry {seq} does not follow entry {seq - 1}: an entry was inserted, deleted or "
            "reordered there (its prev_hash is not the previous entry's hash)",
            seq,
        )
        return None
    if entry.personal_salt is not None:
        digest = personal_digest(entry.personal_salt, entry.citizen_id, entry.ip, entry.user_agent)
        if digest != entry.personal_digest:
            report.fail(f"entry {seq} was edited: its citizen, IP or user agent changed", seq)
            return None
    elif entry.erased_at is None or any((entry.citizen_id, entry.ip, entry.user_agent)):
        report.fail(f"entry {seq} was edited: its personal fields lost their salt", seq)
        return None
    fields = fields_of(entry)
    if entry_hash(prev, content_hash(fields, entry.personal_digest)) != entry.entry_hash:
        report.fail(f"entry {seq} was edited: its content no longer matches its hash", seq)
        return None
    return entry.entry_hash


def verify_chain(pinned_keys: dict[str, dict] | None = None) -> Report:
    """Walk the chain from its start (seq 1, or the signed anchor left by pruning) to its end,
    checking each link, every checkpoint's signature and position, and the head."""
    report = Report()
    keys = pinned_keys if pinned_keys is not None else public_keys()
    if pinned_keys is None:
        report.notes.append(
            "checkpoints were checked with the audit keys stored in the database; pass the "
            "published key (--key) to rule out a replaced key"
        )
    checkpoints = db.session.scalars(
        db.select(AuditCheckpoint).order_by(AuditCheckpoint.seq, AuditCheckpoint.id)
    ).all()
    anchor = None
    for row in checkpoints:
        try:
            check_checkpoint(row, keys)
        except CheckpointError as exc:
            return report.fail(str(exc), row.seq)
        if row.kind == "anchor" and (anchor is None or row.seq > anchor.seq):
            anchor = row
    heads = {row.seq: row for row in checkpoints if row.kind == "checkpoint"}
    report.checkpoints = len(heads)
    start, prev = (anchor.seq, anchor.head_hash) if anchor else (1, GENESIS)
    expected = start
    erased: set[int] = set()
    recorded_erasures: set[int] = set()
    for entry in _entries(start):
        if report.first_seq is None:
            report.first_seq = entry.seq
            if entry.seq < start:
                return report.fail(f"entry {entry.seq} appears before the chain's start", entry.seq)
        linked = _check_entry(entry, expected, prev, report)
        if linked is None:
            return report
        if entry.personal_salt is None:
            erased.add(entry.seq)
        if entry.event == "audit.erased":
            recorded_erasures.update((entry.details or {}).get("erased_seqs") or [])
        checkpoint = heads.get(entry.seq)
        if checkpoint is not None and checkpoint.head_hash != linked:
            signed_before = max((seq for seq in heads if seq < entry.seq), default=start - 1)
            return report.fail(
                f"an entry from {signed_before + 1} to {entry.seq} differs from what checkpoint "
                f"{checkpoint.id} signed (it was edited and the hashes after it recomputed)",
                entry.seq,
            )
        prev, expected = linked, entry.seq + 1
        report.entries += 1
        report.last_seq = entry.seq
    unrecorded = sorted(erased - recorded_erasures)
    if unrecorded:
        return report.fail(
            f"entry {unrecorded[0]} lost its personal fields without a recorded erasure "
            "(no audit.erased entry lists it)",
            unrecorded[0],
        )
    last = report.last_seq if report.last_seq is not None else start - 1
    newest = max(heads, default=0)
    if newest > last:
        return report.fail(
            f"the chain was cut short: it ends at entry {last} but checkpoint of entry {newest} "
            "was signed (newer entries were deleted)",
            last + 1,
        )
    head = db.session.get(AuditHead, 1)
    if head is not None and head.seq > last:
        return report.fail(
            f"the chain was cut short: it ends at entry {last} but {head.seq} were written",
            last + 1,
        )
    if head is not None and report.entries and head.head_hash != prev:
        return report.fail("the chain's head does not match its last entry", last)
    if last > newest:
        report.notes.append(
            f"entries {newest + 1} to {last} are newer than the last checkpoint: they are "
            "linked but not yet signed"
        )
    return report


def check_since(start: tuple[int, str] | None, head_seq: int, head_hash: str) -> str | None:
    """Whether the entries from start (seq, the hash it links to; None: the chain's start) up
    to the head link up and end at head_hash; the problem in words, or None."""
    if start is None:
        anchor = latest_anchor()
        start = (anchor.seq, anchor.head_hash) if anchor else (1, GENESIS)
    seq, prev = start
    report = Report()
    for entry in _entries(seq):
        if entry.seq > head_seq:
            break
        linked = _check_entry(entry, seq, prev, report)
        if linked is None:
            return report.problem
        seq, prev = entry.seq + 1, linked
    if seq != head_seq + 1 or prev != head_hash:
        return f"the entries up to {head_seq} do not end at the chain's head"
    return None

"""Walking the stored chain entry by entry: checking each link. Shared by `idp audit verify`
(idp/audit/verify.py, the whole chain) and the checkpoint's check of the entries it is about to
sign (idp/audit/checkpoints.py), so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field

from idp.audit.chain import content_hash, entry_hash, fields_of, personal_digest
from idp.extensions import db
from idp.models import AuditEntry

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


def stored_entries(start: int):
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


def check_entry(entry: AuditEntry, expected_seq: int, prev: str, report: Report) -> str | None:
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


def check_since(start: tuple[int, str], head_seq: int, head_hash: str) -> str | None:
    """Whether the entries from start (seq, the hash it links to) up to the head link up and
    end at head_hash; the problem in words, or None."""
    seq, prev = start
    report = Report()
    for entry in stored_entries(seq):
        if entry.seq > head_seq:
            break
        linked = check_entry(entry, seq, prev, report)
        if linked is None:
            return report.problem
        seq, prev = entry.seq + 1, linked
    if seq != head_seq + 1 or prev != head_hash:
        return f"the entries up to {head_seq} do not end at the chain's head"
    return None

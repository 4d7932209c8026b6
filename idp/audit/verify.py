"""`idp audit verify`: check the whole chain and its checkpoints, and name the first entry that
was edited, inserted, deleted or reordered, or the point where the chain was cut short."""

from __future__ import annotations

from idp.audit.chain import GENESIS
from idp.audit.checkpoints import CheckpointError, check_checkpoint, public_keys
from idp.audit.linker import not_yet_chained, pending_count
from idp.audit.parallel import walk_segments
from idp.audit.walk import ChainWalk, Report
from idp.extensions import db
from idp.models import AuditCheckpoint, AuditHead


def verify_chain(pinned_keys: dict[str, dict] | None = None) -> Report:
    """Walk the chain from its start (seq 1, or the signed anchor left by pruning) to its end,
    checking each link, every checkpoint's signature and position, and the head. Entries not
    yet chained are counted, not checked (`idp audit verify` chains them first)."""
    report = Report(pending=pending_count())
    if report.pending:
        report.notes.append(
            f"{not_yet_chained(report.pending)}: they are recorded, and checked once the "
            "linker chains them (`idp audit link`)"
        )
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
    walk = ChainWalk(start, prev, report)
    signed = {seq: (row.id, row.head_hash) for seq, row in heads.items()}
    for segment in walk_segments(start, signed):
        if not walk.add(segment):
            break
    if not report.ok:
        return report
    prev = walk.prev
    unrecorded = sorted(set(walk.erased) - walk.recorded_erasures)
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

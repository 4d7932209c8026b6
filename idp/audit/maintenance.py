"""Keeping the audit record: pruning past the retention period and erasing a citizen's personal
fields, both leaving what remains verifiable."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, update

from idp import audit
from idp.audit.checkpoints import make_anchor, make_checkpoint
from idp.audit.linker import link_pending
from idp.audit.verify import verify_chain
from idp.extensions import db
from idp.models import AuditEntry
from idp.models.timestamps import utcnow
from idp.settings import current_settings


class MaintenanceError(Exception):
    """The record could not be pruned or erased; the message says why."""


@dataclass(frozen=True)
class Pruned:
    """What a pruning did."""

    deleted: int
    first_kept: int | None


def prune(before: datetime | None = None, *, force: bool = False) -> Pruned:
    """Delete the entries written before `before` (default: the retention period ago).

    The chain is verified first (pruning must not destroy the evidence of tampering), then a
    signed anchor records where the chain now starts and the hash it links to, so the rest
    verifies as before.
    """
    link_pending()  # the chain as complete as it can be, before it is checked and cut
    if before is None:
        days = current_settings().audit_retention_days
        if days <= 0:
            return Pruned(0, None)
        before = utcnow() - timedelta(days=days)
    last_old = db.session.scalar(
        db.select(func.max(AuditEntry.seq)).where(AuditEntry.time < before)
    )
    if last_old is None:
        return Pruned(0, None)
    if not force:
        report = verify_chain()
        if not report.ok:
            raise MaintenanceError(
                f"the audit chain does not verify ({report.problem}); prune refused, so the "
                "evidence stays (use --force to prune anyway)"
            )
    boundary = db.session.get(AuditEntry, last_old)
    make_checkpoint()  # the head, signed, before anything goes
    make_anchor(last_old + 1, boundary.entry_hash)
    deleted = db.session.execute(
        delete(AuditEntry)
        .where(AuditEntry.seq <= last_old)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    audit.record("audit.pruned", reason="retention", deleted=deleted, first_kept=last_old + 1)
    return Pruned(deleted, last_old + 1)


def erase_citizen(citizen_id: int, reason: str) -> int:
    """Erase a citizen's personal fields (id, IP address, user agent) from every entry that
    names them (a data protection request); how many entries. The chain still verifies: each
    entry's hash covers a salted digest of those fields, and the salt goes with them."""
    if not reason or len(reason.strip()) < 5:
        raise MaintenanceError("say why the citizen's personal fields are erased (--reason)")
    link_pending()  # entries still waiting are erased too, once chained
    seqs = list(
        db.session.scalars(
            db.select(AuditEntry.seq)
            .where(AuditEntry.citizen_id == citizen_id)
            .order_by(AuditEntry.seq)
        )
    )
    if seqs:
        db.session.execute(
            update(AuditEntry)
            .where(AuditEntry.seq.in_(seqs))
            .values(
                citizen_id=None, ip=None, user_agent=None, personal_salt=None, erased_at=utcnow()
            )
            .execution_options(synchronize_session=False)
        )
    db.session.commit()
    # The record of the erasure lists the entries (so `verify` can tell an erasure from an
    # attacker stripping fields) but not the citizen: that would undo it.
    audit.record(
        "audit.erased",
        citizen_id=None,
        reason=reason.strip()[:200],
        erased_entries=len(seqs),
        erased_seqs=seqs,
    )
    return len(seqs)

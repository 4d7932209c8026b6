"""The audit record: entries waiting to be chained, a hash chain of entries, signed checkpoints
of its head, and the key that signs them. idp/audit/ writes, links, verifies, exports and prunes
it."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class AuditEventFields:
    """What an event says, as audit.record writes it: shared by an entry waiting to be chained
    (AuditPending) and a chained one (AuditEntry), so the linker copies it field for field."""

    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(200))
    client_id: Mapped[str | None] = mapped_column(String(128))
    # SHA-256 of the single sign-on session id: one sign-in journey's events share it.
    session_ref: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Level of assurance met (vot, e.g. Cl.Cm) and the methods used (amr, space separated).
    level: Mapped[str | None] = mapped_column(String(16))
    methods: Mapped[str | None] = mapped_column(String(100))
    # Which IdP instance (host and process) wrote it.
    instance: Mapped[str] = mapped_column(String(100))
    # Which release of the IdP wrote it (the package version, and the git commit when known);
    # None on entries written before it was recorded.
    software_version: Mapped[str | None] = mapped_column(String(64))
    # Everything else the event carries (never credentials: audit.record refuses them).
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Personal fields: erasable on a data protection request.
    citizen_id: Mapped[int | None] = mapped_column(Integer)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)


# The columns of AuditEventFields, in order: what the linker copies from pending to chained.
EVENT_FIELDS = (
    "time",
    "event",
    "outcome",
    "reason",
    "client_id",
    "session_ref",
    "request_id",
    "level",
    "methods",
    "instance",
    "software_version",
    "details",
    "citizen_id",
    "ip",
    "user_agent",
)


class AuditPending(AuditEventFields, db.Model):
    """An event recorded but not yet chained: audit.record inserts it (in the caller's
    transaction, or on its own for a failure) without touching the chain's head, and the
    linker (idp/audit/linker.py) moves it into audit_entry, in id order, a batch at a time."""

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )


class AuditEntry(AuditEventFields, db.Model):
    """One security event, chained. entry_hash = SHA-256(prev_hash, content_hash), where the
    content hash covers every field except the personal ones, which it covers through
    personal_digest (a salted digest): erasing a citizen's personal fields leaves the chain
    verifiable."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        # Keyset pagination (newest first) under each filter the auditor pages offer.
        Index("ix_audit_entry_time_seq", "time", "seq"),
        Index("ix_audit_entry_citizen_seq", "citizen_id", "seq"),
        Index("ix_audit_entry_client_seq", "client_id", "seq"),
        Index("ix_audit_entry_event_seq", "event", "seq"),
        Index("ix_audit_entry_outcome_seq", "outcome", "seq"),
        Index("ix_audit_entry_ip_seq", "ip", "seq"),
        Index("ix_audit_entry_session_seq", "session_ref", "seq"),
    )

    # Position in the chain: 1, 2, 3... with no gaps (assigned by the linker under the head's
    # lock).
    # (sort_order keeps the columns in the table's order: seq, the event's fields, the chain's.)
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
        sort_order=-1,
    )
    # Random per entry; erased with the personal fields so the digest cannot be brute-forced.
    personal_salt: Mapped[str | None] = mapped_column(String(32), sort_order=1)
    personal_digest: Mapped[str] = mapped_column(String(64), sort_order=1)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime, sort_order=1)
    prev_hash: Mapped[str] = mapped_column(String(64), sort_order=1)
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True, sort_order=1)


class AuditHead(db.Model):
    """The chain's head (one row): the linker takes its row lock, so batches are chained one
    at a time across every process, on SQLite and PostgreSQL alike."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    head_hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(db.Model):
    """A signed statement of the chain's head at a moment (kind "checkpoint"), or of where the
    chain starts after pruning (kind "anchor": the first kept entry and its prev_hash)."""

    __tablename__ = "audit_checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="checkpoint")
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    key_id: Mapped[str] = mapped_column(String(64))
    # A compact JWS (ES256) over {kind, seq, head_hash, created_at, iss} by the audit key.
    signature: Mapped[str] = mapped_column(Text)


class AuditKey(db.Model):
    """The key that signs checkpoints, used for nothing else; private part encrypted."""

    __tablename__ = "audit_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

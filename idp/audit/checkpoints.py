"""Signed checkpoints of the audit chain's head, by a key used for nothing else.

A checkpoint says "at this time the chain had seq entries and its head was this hash", signed
(ES256, compact JWS) by the audit key. Someone who deletes the newest entries cannot hide it
from a checkpoint they cannot re-sign; an anchor says where the chain starts after pruning.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from flask import current_app
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, import_key
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from idp.audit.chain import GENESIS, canonical, format_time
from idp.audit.linker import link_pending
from idp.audit.walk import check_since
from idp.extensions import db
from idp.models import AuditCheckpoint, AuditHead, AuditKey
from idp.models.timestamps import utcnow
from idp.security.secrets import decrypt
from idp.settings import current_settings

ALG = "ES256"
# The advisory lock (PostgreSQL) that lets one process at a time sign the periodic checkpoint.
LOCK_KEY = 0x1DA0D17

log = logging.getLogger("idp.audit")


class CheckpointError(Exception):
    """A checkpoint's signature or content does not hold."""


def audit_key() -> AuditKey:
    """The current audit key, created at first use."""
    row = db.session.scalar(
        db.select(AuditKey).filter_by(retired_at=None).order_by(AuditKey.id.desc()).limit(1)
    )
    if row is not None:
        return row
    key = ECKey.generate_key("P-256", auto_kid=True)
    fernet = current_app.config["IDP_KEY_FERNET"]
    row = AuditKey(
        kid=key.kid,
        public_jwk={**key.as_dict(private=False), "use": "sig", "alg": ALG},
        private_jwk_encrypted=fernet.encrypt(
            json.dumps(key.as_dict(private=True)).encode()
        ).decode(),
    )
    db.session.add(row)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return audit_key()
    return row


def public_keys() -> dict[str, dict[str, Any]]:
    """Every audit key's public part (retired ones too: old checkpoints stay checkable)."""
    return {row.kid: dict(row.public_jwk) for row in db.session.scalars(db.select(AuditKey))}


def _sign(payload: dict[str, Any]) -> tuple[str, str]:
    """(compact JWS, kid) over the canonical payload."""
    row = audit_key()
    fernet = current_app.config["IDP_KEY_FERNET"]
    key = import_key(json.loads(decrypt(fernet, row.private_jwk_encrypted)))
    token = jws.serialize_compact({"alg": ALG, "kid": row.kid}, canonical(payload), key)
    return token, row.kid


def checkpoint_payload(kind: str, seq: int, head_hash: str, created_at) -> dict[str, Any]:
    """What a checkpoint signs."""
    return {
        "iss": current_settings().issuer,
        "kind": kind,
        "seq": seq,
        "head_hash": head_hash,
        "created_at": format_time(created_at),
    }


def _insert(kind: str, seq: int, head_hash: str) -> AuditCheckpoint:
    """Sign and store one checkpoint or anchor (committed)."""
    now = utcnow()
    signature, kid = _sign(checkpoint_payload(kind, seq, head_hash, now))
    row = AuditCheckpoint(
        kind=kind, seq=seq, head_hash=head_hash, created_at=now, key_id=kid, signature=signature
    )
    db.session.add(row)
    db.session.commit()
    return row


def make_checkpoint() -> AuditCheckpoint | None:
    """Chain the waiting entries, then sign the chain's head, unless the newest checkpoint
    already covers it. The entries since the last checkpoint are checked first: a chain broken
    there is never signed. Each checkpoint also goes to standard output, so a copy kept
    off-host can be compared."""
    link_pending()
    head = db.session.get(AuditHead, 1, populate_existing=True)
    if head is None or head.seq == 0:
        return None
    latest = latest_checkpoint()
    if latest is not None and latest.seq >= head.seq:
        return latest
    if latest is not None:
        start = (latest.seq + 1, latest.head_hash)
    else:
        anchor = latest_anchor()
        start = (anchor.seq, anchor.head_hash) if anchor else (1, GENESIS)
    problem = check_since(start, head.seq, head.head_hash)
    if problem is not None:
        raise CheckpointError(f"the audit chain is not signed: {problem}")
    return sign_checkpoint(head.seq, head.head_hash)


def sign_checkpoint(seq: int, head_hash: str) -> AuditCheckpoint:
    """Sign and store the checkpoint of entry seq, and log it: only for a chain already
    checked up to there (make_checkpoint checks; `idp seed` computed every link itself)."""
    row = _insert("checkpoint", seq, head_hash)
    log.info(
        json.dumps(
            {
                "event": "audit.checkpoint",
                "seq": row.seq,
                "head_hash": row.head_hash,
                "key_id": row.key_id,
                "signature": row.signature,
                "time": row.created_at.isoformat(),
            },
            sort_keys=True,
        )
    )
    return row


def checkpoint_if_due(interval: int) -> AuditCheckpoint | None:
    """The background workers' periodic signing. Every IdP process runs a worker, but one
    checkpoint per interval is enough, and checking the new entries in every process at once
    would multiply that work: so one process at a time (a PostgreSQL advisory lock; others
    skip this round), and nothing when another process signed less than an interval ago."""
    if db.session.get_bind().dialect.name == "postgresql":
        taken = db.session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        if not taken:
            db.session.rollback()
            return None
    latest = latest_checkpoint()
    if latest is not None and utcnow() - latest.created_at < timedelta(seconds=interval * 0.9):
        db.session.rollback()  # ends the transaction, and so the advisory lock
        return latest
    try:
        return make_checkpoint()
    finally:
        db.session.rollback()  # a no-op after make_checkpoint's commit; frees the lock if it raised


def make_anchor(first_seq: int, prev_hash: str) -> AuditCheckpoint:
    """Record (signed) that the chain now starts at first_seq, linked to prev_hash."""
    return _insert("anchor", first_seq, prev_hash)


def latest_checkpoint() -> AuditCheckpoint | None:
    """The newest checkpoint of the head."""
    return db.session.scalar(
        db.select(AuditCheckpoint)
        .filter_by(kind="checkpoint")
        .order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc())
        .limit(1)
    )


def latest_anchor() -> AuditCheckpoint | None:
    """Where the chain starts since the last pruning, or None (it starts at seq 1)."""
    return db.session.scalar(
        db.select(AuditCheckpoint)
        .filter_by(kind="anchor")
        .order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc())
        .limit(1)
    )


def verify_signature(signature: str, public_jwk: dict[str, Any]) -> dict[str, Any]:
    """The signed payload, if the signature is the audit key's; CheckpointError otherwise.
    Pure: an export's verifier calls it with the key printed in the manifest."""
    try:
        key = import_key(public_jwk)
        token = jws.deserialize_compact(signature, key, algorithms=[ALG])
        return json.loads(token.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint signature does not verify: {exc}") from None


def check_checkpoint(row: AuditCheckpoint, keys: dict[str, dict[str, Any]]) -> None:
    """The stored checkpoint's signature verifies and says what the row says."""
    if row.key_id not in keys:
        raise CheckpointError(f"checkpoint {row.id} is signed by an unknown audit key {row.key_id}")
    payload = verify_signature(row.signature, keys[row.key_id])
    expected = {
        "kind": row.kind,
        "seq": row.seq,
        "head_hash": row.head_hash,
        "created_at": format_time(row.created_at),
    }
    if any(payload.get(name) != value for name, value in expected.items()):
        raise CheckpointError(f"checkpoint {row.id} was altered after it was signed")

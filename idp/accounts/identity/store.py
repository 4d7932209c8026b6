"""A citizen's proved identity, stored encrypted, read back only while it has not expired.

The verified details are kept in One Login's shapes (see vocabulary.py):
{"name": [...], "birthDate": [...], "address": [...], "passport": [...], "drivingPermit": [...]}.
They are encrypted with the identity encryption key (IDP_IDENTITY_ENCRYPTION_KEY), a key of
their own, so a copy of the database alone reveals no one's name, birth date or documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import delete, select

from idp.extensions import db
from idp.models import IdentityCheck, IdentityDisclosure, IdentityRecord
from idp.models.timestamps import utcnow
from idp.settings import current_settings

NO_IDENTITY = "P0"


class UnreadableIdentity(Exception):
    """Stored identity details cannot be decrypted: the key is not the one they were stored with."""


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a citizen proved, at which level, and until when."""

    level: str
    details: dict[str, Any]
    checked_at: datetime
    expires_at: datetime
    reference: str


def _fernet() -> Fernet:
    return current_app.config["IDP_IDENTITY_FERNET"]


def encrypt_json(value: Any) -> str:
    """value as JSON, encrypted with the identity encryption key."""
    return _fernet().encrypt(json.dumps(value, separators=(",", ":")).encode()).decode()


def decrypt_json(token: str) -> Any:
    """What encrypt_json encrypted; UnreadableIdentity when the key is not the one used."""
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise UnreadableIdentity(
            "identity details cannot be decrypted: IDP_IDENTITY_ENCRYPTION_KEY is not the key "
            "they were encrypted with"
        ) from None


def save_identity(
    citizen_id: int, level: str, details: dict[str, Any], reference: str
) -> VerifiedIdentity:
    """Store what a check proved, replacing any earlier identity (in the caller's transaction)."""
    checked_at = utcnow()
    expires_at = checked_at + timedelta(days=current_settings().identity_valid_days)
    record = db.session.scalar(
        select(IdentityRecord).where(IdentityRecord.citizen_id == citizen_id)
    )
    if record is None:
        record = IdentityRecord(citizen_id=citizen_id)
        db.session.add(record)
    record.level = level
    record.details_encrypted = encrypt_json(details)
    record.checked_at = checked_at
    record.expires_at = expires_at
    record.reference = reference
    db.session.flush()
    return VerifiedIdentity(level, details, checked_at, expires_at, reference)


def current_identity(citizen_id: int) -> VerifiedIdentity | None:
    """The citizen's proved identity, or None when there is none or it has expired."""
    record = db.session.scalar(
        select(IdentityRecord).where(IdentityRecord.citizen_id == citizen_id)
    )
    if record is None or record.expires_at <= utcnow():
        return None
    return VerifiedIdentity(
        record.level,
        decrypt_json(record.details_encrypted),
        record.checked_at,
        record.expires_at,
        record.reference,
    )


def identity_level(citizen_id: int) -> str:
    """The level of the citizen's current proved identity: "P1", "P2", or "P0" for none."""
    level = db.session.scalar(
        select(IdentityRecord.level).where(
            IdentityRecord.citizen_id == citizen_id, IdentityRecord.expires_at > utcnow()
        )
    )
    return level or NO_IDENTITY


def erase_identity(citizen_id: int) -> None:
    """Forget the citizen's proved identity, checks in progress and what was shared."""
    for model in (IdentityRecord, IdentityCheck, IdentityDisclosure):
        db.session.execute(delete(model).where(model.citizen_id == citizen_id))

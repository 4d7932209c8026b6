"""How an audit entry is hashed: pure functions, shared by the writer, `idp audit verify` and
the offline check of an export (which has no database).

    personal_digest = SHA-256(canonical({salt, citizen_id, ip, user_agent}))
    content_hash    = SHA-256(canonical(every other field, and personal_digest))
    entry_hash      = SHA-256(prev_hash ":" content_hash)

The canonical form is JSON with sorted keys, no whitespace, UTF-8, times as ISO 8601 UTC with
microseconds. The first entry's prev_hash is GENESIS. Fields added to the entry later
(ADDED_FIELDS) are hashed only when they have a value, so entries written before they existed
keep the hash they were written with, and a chain of old and new entries verifies.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# Fields that identify a person, erasable on request; the chain commits to their digest only.
PERSONAL_FIELDS = ("citizen_id", "ip", "user_agent")

# Fields covered by content_hash (besides personal_digest), in the order exports list them.
CONTENT_FIELDS = (
    "seq",
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
    "details",
    "software_version",
)
# Fields added after the chain's first release: left out of content_hash when None.
ADDED_FIELDS = frozenset({"software_version"})


def canonical(value: Any) -> bytes:
    """Deterministic bytes for a JSON-able value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode("utf-8")


def sha256(data: bytes | str) -> str:
    """Hex SHA-256."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def format_time(moment: datetime) -> str:
    """A time as the chain hashes it: ISO 8601 in UTC with microseconds."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def personal_digest(
    salt: str, citizen_id: int | None, ip: str | None, user_agent: str | None
) -> str:
    """The salted digest of an entry's personal fields."""
    return sha256(
        canonical({"salt": salt, "citizen_id": citizen_id, "ip": ip, "user_agent": user_agent})
    )


def fields_of(row: Any) -> dict[str, Any]:
    """The CONTENT_FIELDS of a stored entry (any object with those attributes)."""
    return {name: getattr(row, name) for name in CONTENT_FIELDS}


def content_hash(fields: dict[str, Any], digest: str) -> str:
    """The hash of an entry's content: CONTENT_FIELDS (time formatted) and personal_digest."""
    content = {
        name: fields.get(name)
        for name in CONTENT_FIELDS
        if name not in ADDED_FIELDS or fields.get(name) is not None
    }
    if isinstance(content["time"], datetime):
        content["time"] = format_time(content["time"])
    content["personal_digest"] = digest
    return sha256(canonical(content))


def entry_hash(prev_hash: str, content: str) -> str:
    """The chain link."""
    return sha256(f"{prev_hash}:{content}")

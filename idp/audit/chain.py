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
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
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


# json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str),
# made once: json.dumps builds an encoder on every call with these arguments.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical(value: Any) -> bytes:
    """Deterministic bytes for a JSON-able value."""
    return _ENCODER.encode(value).encode("utf-8")


# The same encoder without sorting, for objects built with their keys in order already, called
# without JSONEncoder.encode's checks where the C encoder is there (it does the work of both).
_IN_ORDER = json.JSONEncoder(
    sort_keys=False, separators=(",", ":"), ensure_ascii=False, default=str
)
if c_make_encoder is not None:
    _write_in_order = c_make_encoder(
        None, str, encode_basestring, None, ":", ",", False, False, True
    )

    def _in_order(value: Any) -> str:
        return "".join(_write_in_order(value, 0))

else:  # pragma: no cover (Python without its C accelerator)
    _in_order = _IN_ORDER.encode


def in_key_order(value: Any) -> Any:
    """value with the keys of every object in it inserted in sorted order: _IN_ORDER writes
    it as canonical() writes value (json sorts an object's items by key the same way)."""
    if isinstance(value, dict):
        return {key: in_key_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [in_key_order(item) for item in value]
    return value


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


def stored_personal_digest(
    salt: str, citizen_id: int | None, ip: str | None, user_agent: str | None
) -> str:
    """personal_digest, its object built with the keys in order: the same bytes, sooner, for
    walking millions of entries (tests/audit/test_chain.py compares the two)."""
    personal = {"citizen_id": citizen_id, "ip": ip, "salt": salt, "user_agent": user_agent}
    return hashlib.sha256(_in_order(personal).encode("utf-8")).hexdigest()


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


def stored_entry_hash(
    prev_hash: str,
    seq: int,
    time: datetime,
    event: str,
    outcome: str,
    reason: str | None,
    client_id: str | None,
    session_ref: str | None,
    request_id: str | None,
    level: str | None,
    methods: str | None,
    instance: str,
    details: Any,
    software_version: str | None,
    digest: str,
) -> str:
    """entry_hash(prev_hash, content_hash(...)) of a stored entry's CONTENT_FIELDS (in that
    order), the content's object built with its keys in order: the same bytes, sooner, for
    walking millions of entries. details comes through in_key_order already (the caller keeps
    the shapes that recur). tests/audit/test_chain.py compares this with the reference."""
    moment = _time_text(time) if isinstance(time, datetime) else time
    # Keys in sorted order, as canonical() writes them; software_version only where recorded.
    content = {
        "client_id": client_id,
        "details": details,
        "event": event,
        "instance": instance,
        "level": level,
        "methods": methods,
        "outcome": outcome,
        "personal_digest": digest,
        "reason": reason,
        "request_id": request_id,
        "seq": seq,
        "session_ref": session_ref,
    }
    if software_version is not None:
        content["software_version"] = software_version
    content["time"] = moment
    content_digest = hashlib.sha256(_in_order(content).encode("utf-8")).hexdigest()
    return hashlib.sha256(f"{prev_hash}:{content_digest}".encode()).hexdigest()


def _time_text(moment: datetime) -> str:
    """format_time, sooner: isoformat writes the same text from the year 1000 on (strftime
    writes earlier years without leading zeros; a hash that then differs is recomputed)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def entry_hash(prev_hash: str, content: str) -> str:
    """The chain link."""
    return sha256(f"{prev_hash}:{content}")

"""The audit record. Every event worth auditing goes through ``record``.

Today an event becomes one JSON line on the ``idp.audit`` logger; the tamper-evident,
hash-chained store arrives with its own change and keeps this signature.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import has_request_context, request

from idp.models.timestamps import utcnow

log = logging.getLogger("idp.audit")

# Fields that may carry credentials are refused outright, so a careless caller fails loudly.
FORBIDDEN_FIELDS = frozenset(
    {
        "password",
        "code",
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "client_assertion",
        "cookie",
        "token",
    }
)


def record(
    event: str,
    outcome: str = "success",
    *,
    reason: str | None = None,
    citizen_id: int | None = None,
    client_id: str | None = None,
    **details: Any,
) -> None:
    """Record one security event."""
    leaked = FORBIDDEN_FIELDS.intersection(details)
    if leaked:
        raise ValueError(f"audit events never hold credentials: {sorted(leaked)}")
    entry: dict[str, Any] = {
        "time": utcnow().isoformat(),
        "event": event,
        "outcome": outcome,
        "reason": reason,
        "citizen_id": citizen_id,
        "client_id": client_id,
    }
    if has_request_context():
        entry["ip"] = request.remote_addr
        entry["user_agent"] = request.user_agent.string[:300]
    entry.update(details)
    # json.dumps escapes control characters, so user-controlled text cannot forge a line.
    log.info(json.dumps(entry, default=str, sort_keys=True))

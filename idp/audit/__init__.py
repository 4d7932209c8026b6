"""The audit record. Every event worth auditing goes through ``record``.

Each event becomes an entry in a hash chain in the database (idp/audit/chain.py says how it is
hashed; idp/audit/checkpoints.py signs the head; idp/audit/verify.py checks it all) and one
JSON line on standard output (the ``idp.audit`` logger), for shipping off-host.

``record`` never touches the chain's head, which would make every request in every process
wait its turn: it inserts the entry as waiting (audit_pending), in the caller's transaction for
a success that commits with the caller's work, on its own for a failure, which must outlive a
rollback (idp/audit/pending.py says exactly where). The linker (idp/audit/linker.py) chains the
waiting entries in batches, one process at a time, from the background worker and before
anything that reads the whole chain (verify, export, a checkpoint); it writes the JSON lines,
each with its place in the chain.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from typing import Any

from flask import g, has_app_context, has_request_context, request

from idp.audit import events, pending
from idp.audit.chain import sha256
from idp.audit.linker import RECORDED, log_line
from idp.models.timestamps import utcnow
from idp.operations import metrics
from idp.settings import current_settings

log = logging.getLogger("idp.audit")
failures = logging.getLogger("idp.audit.store")

# Fields that may carry credentials are refused outright, so a careless caller fails loudly.
FORBIDDEN_FIELDS = frozenset(
    {
        "password",
        "code",
        "access_token",
        "refresh_token",
        "id_token",
        "logout_token",
        "client_secret",
        "client_assertion",
        "cookie",
        "token",
        "otp",
        "secret",
        "authorization",
    }
)
# ...and so are names that contain these.
FORBIDDEN_PARTS = ("password", "secret", "assertion", "cookie", "passcode")

REQUEST_ID_HEADER = "X-Request-Id"

# citizen_id not given: the citizen of the browser's current session, if any.
_FROM_SESSION: Any = object()


def _refuse_credentials(details: dict[str, Any]) -> None:
    """A field named like a credential is a programming error, never stored."""
    leaked = sorted(
        name
        for name in details
        if name.lower() in FORBIDDEN_FIELDS or any(p in name.lower() for p in FORBIDDEN_PARTS)
    )
    if leaked:
        raise ValueError(f"audit events never hold credentials: {leaked}")


def _check_event(event: str, outcome: str) -> None:
    """An event and outcome from the catalogue (idp/audit/events.py). Anything else is a
    programming error: raised outside an app and where the audit_strict_events setting says
    (by default on a developer's machine, the issuer on loopback, as in every test); elsewhere
    logged, and the entry still recorded as given, since refusing would lose a security event
    over its name."""
    try:
        events.check(event, outcome)
    except events.UnknownEvent as problem:
        if not has_app_context() or current_settings().strict_audit_events:
            raise
        failures.error("%s; recorded anyway", problem)


def _storable(value: Any) -> Any:
    """Text as the database can keep it: NUL (which PostgreSQL refuses, and which only an
    attacker sends) becomes U+FFFD, in strings and inside details alike."""
    if isinstance(value, str):
        # Lone surrogates (which UTF-8 cannot hold) become "?" too.
        return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value


def session_ref(sid: str | None) -> str | None:
    """What the record keeps of a session id: its hash (the sid itself goes to departments)."""
    return sha256(f"session:{sid}")[:32] if sid else None


def request_id() -> str | None:
    """This request's id (also sent back in the X-Request-Id header)."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        g.request_id = uuid.uuid4().hex
    return g.request_id


def instance_name() -> str:
    """Which IdP instance writes: the configured name, else host and process id."""

    configured = current_settings().instance_name if has_app_context() else ""
    return (configured or f"{socket.gethostname()}/{os.getpid()}")[:100]


def software_version() -> str:
    """Which release of the IdP is running: the installed package's version, and the git
    commit when the build wrote one into IDP_GIT_COMMIT (optional; nothing is run to find it)."""
    return _SOFTWARE_VERSION


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("citizen-idp")
    except PackageNotFoundError:
        release = "unknown"
    commit = os.environ.get("IDP_GIT_COMMIT", "").strip()[:12]
    return (f"{release}+{commit}" if commit else release)[:64]


_SOFTWARE_VERSION = _package_version()


def record(
    event: str,
    outcome: str = "success",
    *,
    reason: str | None = None,
    citizen_id: int | None | object = _FROM_SESSION,
    client_id: str | None = None,
    sid: str | None = None,
    level: str | None = None,
    methods: list[str] | str | None = None,
    **details: Any,
) -> None:
    """Record one security event.

    citizen_id: the internal id; when not given, the current session's citizen (pass None for
    "no citizen"). sid: the single sign-on session's id (stored hashed); defaults to the
    browser's current session. level: the level of assurance met (vot). methods: how the
    citizen authenticated (amr); defaults to the current session's.
    """
    _refuse_credentials(details)
    _check_event(event, outcome)
    metrics.count_event(event, outcome)
    browser_session = g.get("browser_session") if has_request_context() else None
    if browser_session is not None:
        sid = sid or browser_session.sid
        if methods is None:
            methods = list(browser_session.amr or [])
        if citizen_id is _FROM_SESSION:
            citizen_id = browser_session.citizen_id
    if citizen_id is _FROM_SESSION:
        citizen_id = None
    if isinstance(methods, list | tuple):
        methods = " ".join(str(m) for m in methods) or None
    # Normalise details through JSON once, so what is stored is exactly what is hashed.
    clean_details = json.loads(json.dumps(details, default=str, sort_keys=True))
    entry: dict[str, Any] = {
        "time": utcnow(),
        "event": event[:64],
        "outcome": outcome[:16],
        "reason": None if reason is None else str(reason)[:200],
        "client_id": None if client_id is None else str(client_id)[:128],
        "session_ref": session_ref(sid),
        "request_id": request_id(),
        "level": None if level is None else str(level)[:16],
        "methods": methods[:100] if methods else None,
        "instance": instance_name(),
        "software_version": software_version(),
        "details": clean_details,
        "citizen_id": citizen_id,
        "ip": (request.remote_addr or "")[:64] or None if has_request_context() else None,
        "user_agent": request.user_agent.string[:300] if has_request_context() else None,
    }
    entry = {name: _storable(value) for name, value in entry.items()}
    if not has_app_context():
        log_line(entry, None)
        return
    g.setdefault(RECORDED, True)
    try:
        pending.store(entry, entry["outcome"])
    except Exception:  # noqa: BLE001 - the event still goes to standard output, then fails
        log_line(entry, None)
        failures.error(
            "audit entry %s (%s) could not be stored",
            entry["event"],
            entry["request_id"],
            exc_info=True,
        )
        raise

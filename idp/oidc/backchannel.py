"""OpenID Connect Back-Channel Logout 1.0: when a single sign-on session ends, every department
that received tokens in it and registered a backchannel_logout_uri is sent a signed logout
token, from the background, with retries, and every attempt is recorded. Only the URI of the
approved version of the department's settings is used (a change waiting for approval is
not), so a logout token never goes to an address nobody reviewed.

The deliveries owed are rows in the database, queued in the same transaction that ends the
session, so a sign-out never waits for a department, and a delivery survives a restart: any
IdP process's worker (idp/operations/worker.py) claims due rows with a conditional UPDATE and
sends them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask
from joserfc import jwt
from sqlalchemy import bindparam, delete, event, func, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idp import audit, clock
from idp.accounts.sessions import session_hooks
from idp.extensions import db
from idp.models import BrowserSession, Client, LogoutAttempt, LogoutDelivery, SessionClient
from idp.models.timestamps import utcnow
from idp.oidc.claims import subject_for
from idp.oidc.keys import signing_key
from idp.security.outbound import AddressRefused, FetchError, post_form
from idp.security.secrets import new_token
from idp.settings import current_settings

log = logging.getLogger("idp.backchannel")

EVENT = "http://schemas.openid.net/event/backchannel-logout"

# Statuses a department may answer that mean "try again later" rather than "no".
RETRYABLE_STATUSES = frozenset({408, 425, 429})

# How many deliveries one pass of the worker claims.
BATCH_SIZE = 20


def _insert_ignoring_duplicates(model, **values) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike (not committed)."""
    insert = (
        postgresql_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    )
    db.session.execute(insert(model).values(**values).on_conflict_do_nothing())


# Every code redemption records its department, once per session: built once per dialect.
_PARTICIPATION = {
    dialect: dialect_insert(SessionClient.__table__)
    .values(
        session_id=bindparam("session"),
        client_id=bindparam("client"),
        sid=bindparam("known_as"),
        created_at=bindparam("now"),
    )
    .on_conflict_do_nothing()
    for dialect, dialect_insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
}


def record_participation(session_id: int, sid: str, client_id: str) -> None:
    """The department received tokens in the live session session_id, which it knows as sid
    (not committed): it is signed out when that session ends. The caller found the session
    live and holds its row lock (code redemption)."""
    connection = db.session.connection()
    connection.execute(
        _PARTICIPATION[connection.dialect.name],
        {"session": session_id, "client": client_id, "known_as": sid, "now": utcnow()},
    )


def init_app(app: Flask) -> None:
    """Hook back-channel logout into the single sign-on session: a session replaced hands its
    departments on, a session ended owes each of them a logout token (OIDC Back-Channel
    Logout 1.0 section 2.6). The session layer calls these without importing the protocol."""
    hooks = session_hooks(app)
    hooks.on_replaced.append(carry_over)
    hooks.sids_of.append(sids_known_to_departments)
    hooks.on_end.append(queue_logouts)
    hooks.on_department_left.append(leave_sessions)


def carry_over(previous: BrowserSession, successor: BrowserSession) -> None:
    """The citizen signed in again in the same browser: the departments of the old session
    belong to the new one, keeping the sid each was told (not committed)."""
    db.session.execute(
        update(SessionClient)
        .where(SessionClient.session_id == previous.id)
        .values(session_id=successor.id)
        .execution_options(synchronize_session=False)
    )


def sids_known_to_departments(session_id: int) -> list[str]:
    """Every sid departments were told for this session (refresh tokens carry them)."""
    return list(
        db.session.scalars(db.select(SessionClient.sid).filter_by(session_id=session_id).distinct())
    )


def leave_sessions(session_ids: Iterable[int], client_id: str, reason: str) -> int:
    """The citizen stopped sharing with a department: it is owed a logout token for each of
    these live sessions it took part in (Back-Channel Logout 2.7: an RP is told when the
    citizen is logged out of it, not only when the whole session ends), and takes part in them
    no more, so the session's end does not tell it twice. Signing in there again makes it a
    participant again (record_participation). Not committed; how many were queued."""
    ids = list(session_ids)
    queued = queue_logouts(ids, reason, only_client=client_id)
    db.session.execute(
        delete(SessionClient)
        .where(SessionClient.session_id.in_(ids), SessionClient.client_id == client_id)
        .execution_options(synchronize_session=False)
    )
    return queued


def queue_logouts(session_ids: Iterable[int], reason: str, only_client: str | None = None) -> int:
    """Owe a logout token to every department with a backchannel_logout_uri that took part in
    these sessions; in the caller's transaction (not committed). How many were queued."""
    ids = list(session_ids)
    if not ids:
        return 0
    query = (
        db.select(SessionClient, BrowserSession, Client)
        .join(BrowserSession, BrowserSession.id == SessionClient.session_id)
        .join(Client, Client.client_id == SessionClient.client_id)
        .where(SessionClient.session_id.in_(ids))
    )
    if only_client is not None:
        query = query.where(SessionClient.client_id == only_client)
    queued = 0
    now = utcnow()
    for participant, session, client in db.session.execute(query).all():
        if not client.reviewed_backchannel_logout_uri:
            if client.client_metadata.get("backchannel_logout_uri"):
                _skip_unreviewed(client, participant.sid, session.citizen_id)
            continue
        _owe_logout(
            client_id=client.client_id,
            sid=participant.sid,
            sub=subject_for(session.citizen, client),
            citizen_id=session.citizen_id,
            reason=reason[:32],
            now=now,
        )
        queued += 1
    if queued:
        db.session.info["logouts_queued"] = True
    return queued


def _owe_logout(*, client_id: str, sid: str, sub: str, citizen_id: int, reason: str, now) -> None:
    """Queue one logout token (not committed). One delivery per sid and department: a second
    queuing while the first is pending changes nothing (two processes ending one session),
    but once it is finished the row is armed again, for a department told once (the citizen
    stopped sharing with it) that the citizen then signed in to again in the same session."""
    values = {
        "client_id": client_id,
        "sid": sid,
        "sub": sub,
        "citizen_id": citizen_id,
        "reason": reason,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    insert = (
        postgresql_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    )
    statement = insert(LogoutDelivery).values(**values)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[LogoutDelivery.sid, LogoutDelivery.client_id],
            set_={
                **{name: statement.excluded[name] for name in values if name != "created_at"},
                "claimed_until": None,
                "finished_at": None,
                "last_error": None,
            },
            where=LogoutDelivery.status != "pending",
        )
    )


def _skip_unreviewed(client: Client, sid: str, citizen_id: int) -> None:
    """A backchannel_logout_uri no administrator approved yet is never sent a logout token;
    recorded, so the department can be told why it heard nothing."""
    audit.record(
        "logout.backchannel",
        "failure",
        reason="backchannel_logout_uri_not_approved",
        citizen_id=citizen_id,
        client_id=client.client_id,
        sid=sid,
        client_status=client.status,
    )


def logout_token(client: Client, sub: str, sid: str) -> str:
    """A logout token (Back-Channel Logout 2.4) for the department, signed with its ID token
    algorithm: typ logout+jwt; iss, aud, iat, exp, jti, sub, sid, events; never a nonce."""
    settings = current_settings()
    alg = client.id_token_signed_response_alg or settings.default_id_token_alg
    key = signing_key(alg)
    now = int(clock.time())
    claims = {
        "iss": settings.issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + settings.logout_token_lifetime,
        "jti": new_token(16),
        "sub": sub,
        "sid": sid,
        "events": {EVENT: {}},
    }
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "logout+jwt"}, claims, key)


# --- delivery -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    outcome: str  # delivered, rejected, error, timeout, unreachable, refused
    final: bool
    http_status: int | None = None
    detail: str | None = None


def due_deliveries(limit: int = BATCH_SIZE) -> list[int]:
    """Ids of pending deliveries whose time has come and that no worker holds."""
    now = utcnow()
    return list(
        db.session.scalars(
            db.select(LogoutDelivery.id)
            .where(
                LogoutDelivery.status == "pending",
                LogoutDelivery.next_attempt_at <= now,
                or_(LogoutDelivery.claimed_until.is_(None), LogoutDelivery.claimed_until < now),
            )
            .order_by(LogoutDelivery.next_attempt_at, LogoutDelivery.id)
            .limit(limit)
        )
    )


def seconds_until_next_due() -> float:
    """Seconds until the earliest pending delivery that no worker holds falls due (infinity
    when none waits; one held by a crashed worker is found by the next poll)."""
    earliest = db.session.scalar(
        db.select(func.min(LogoutDelivery.next_attempt_at)).where(
            LogoutDelivery.status == "pending", LogoutDelivery.claimed_until.is_(None)
        )
    )
    if earliest is None:
        return float("inf")
    return max((earliest - utcnow()).total_seconds(), 0.0)


def claim(delivery_id: int) -> datetime | None:
    """Hold the delivery for one attempt: the lease (the time the hold ends), or None when
    another worker got it first. The lease outlasts the attempt's deadline."""
    settings = current_settings()
    now = utcnow()
    lease = now + timedelta(seconds=settings.backchannel_timeout + 30)
    claimed = db.session.execute(
        update(LogoutDelivery)
        .where(
            LogoutDelivery.id == delivery_id,
            LogoutDelivery.status == "pending",
            LogoutDelivery.next_attempt_at <= now,
            LogoutDelivery.attempts < settings.backchannel_max_attempts,
            or_(LogoutDelivery.claimed_until.is_(None), LogoutDelivery.claimed_until < now),
        )
        .values(claimed_until=lease, attempts=LogoutDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return lease if claimed == 1 else None


def _send(delivery: LogoutDelivery) -> Outcome:
    """POST the logout token once, and judge the answer."""
    client = db.session.scalar(db.select(Client).filter_by(client_id=delivery.client_id))
    # Only the approved version's URI: a change waiting for approval is not trusted with tokens.
    uri = client.reviewed_backchannel_logout_uri if client else None
    if not uri:
        return Outcome("refused", True, detail="the service has no approved backchannel_logout_uri")
    token = logout_token(client, delivery.sub, delivery.sid)
    try:
        status = post_form(
            uri,
            "backchannel_logout_uri",
            {"logout_token": token},
            current_settings().backchannel_timeout,
        )
    except TimeoutError as exc:
        return Outcome("timeout", False, detail=str(exc))
    except AddressRefused as exc:
        return Outcome("refused", True, detail=str(exc))
    except FetchError as exc:
        return Outcome("unreachable", False, detail=str(exc))
    if status in (200, 204):
        return Outcome("delivered", True, status)
    if status >= 500 or status in RETRYABLE_STATUSES:
        return Outcome("error", False, status, f"the service answered HTTP {status}")
    return Outcome("rejected", True, status, f"the service answered HTTP {status}")


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt: doubling from the first delay, capped, with jitter so
    departments that were down together are not all retried at the same instant."""
    settings = current_settings()
    delay = min(
        settings.backchannel_retry_delay * 2 ** max(attempts - 1, 0),
        settings.backchannel_retry_max_delay,
    )
    return delay * random.uniform(0.9, 1.1)


def attempt(delivery_id: int, lease: datetime) -> Outcome | None:
    """One attempt at a delivery this worker claimed: send, then record the attempt and what
    comes next, unless the claim lapsed meanwhile (another worker then owns the delivery)."""
    delivery = db.session.get(LogoutDelivery, delivery_id)
    if delivery is None:
        return None
    # Elapsed real time (the delivery's duration), not idp.clock.
    started = time.monotonic()
    try:
        result = _send(delivery)
    except Exception as exc:  # noqa: BLE001 - one department's delivery must not stop others
        log.exception("back-channel logout to %s failed unexpectedly", delivery.client_id)
        result = Outcome("error", False, detail=f"the IdP failed to send: {type(exc).__name__}")
    elapsed = int((time.monotonic() - started) * 1000)
    now = utcnow()
    settings = current_settings()
    final = result.final or delivery.attempts >= settings.backchannel_max_attempts
    db.session.add(
        LogoutAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            outcome=result.outcome,
            http_status=result.http_status,
            detail=result.detail,
            duration_ms=elapsed,
        )
    )
    if result.outcome == "delivered":
        changes = {"status": "delivered", "finished_at": now}
    elif final:
        changes = {"status": "failed", "finished_at": now}
    else:
        changes = {"next_attempt_at": now + timedelta(seconds=retry_delay(delivery.attempts))}
    still_ours = db.session.execute(
        update(LogoutDelivery)
        .where(LogoutDelivery.id == delivery.id, LogoutDelivery.claimed_until == lease)
        .values(
            claimed_until=None,
            last_error=None if result.outcome == "delivered" else result.detail,
            **changes,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    status = changes.get("status", "pending")
    audit.record(
        "logout.backchannel",
        "success" if result.outcome == "delivered" else "failure",
        reason=None if result.outcome == "delivered" else result.outcome,
        citizen_id=delivery.citizen_id,
        client_id=delivery.client_id,
        sid=delivery.sid,
        attempt=delivery.attempts,
        http_status=result.http_status,
        will_retry=bool(still_ours) and status == "pending",
        session_ended=delivery.reason,
    )
    return result


# --- waking the worker at once when a transaction queued deliveries -------------------------

_listeners: list = []


def on_queued(callback) -> None:
    """Call callback() after every commit that queued deliveries (the worker's wake-up)."""
    _listeners.append(callback)


def off_queued(callback) -> None:
    """Stop calling callback after commits."""
    if callback in _listeners:
        _listeners.remove(callback)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """Wake the worker once deliveries are committed, so they go out within the second."""
    if session.info.pop("logouts_queued", False):
        for callback in _listeners:
            callback()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    """Deliveries rolled back are not owed."""
    session.info.pop("logouts_queued", None)

"""The single sign-on session: create, find, end. The cookie holds only a random value."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import Flask, Response, current_app, g, has_request_context, request
from sqlalchemy import bindparam, or_, select, update

from idp.extensions import db
from idp.models import BrowserSession, Citizen, RefreshToken, Token
from idp.models.grant import revoke_live
from idp.models.timestamps import utcnow
from idp.security.cookies import clear_session_cookie, read_cookie, set_session_cookie
from idp.security.secrets import hash_token, new_token
from idp.settings import current_settings

# Refresh last_active_at at most this often, so every page view is not a database write.
ACTIVITY_WRITE_INTERVAL = timedelta(seconds=60)


@dataclass
class SessionHooks:
    """What a higher layer does when sessions are replaced or end, registered at app creation
    (the protocol's back-channel logout: oidc.backchannel.init_app), so that this module never
    imports the protocol. Each runs in the caller's transaction (not committed)."""

    # (previous, successor): the citizen signed in again in the same browser.
    on_replaced: list[Callable[[BrowserSession, BrowserSession], None]] = field(
        default_factory=list
    )
    # session id -> further sids under which tokens were issued in that session.
    sids_of: list[Callable[[int], Iterable[str]]] = field(default_factory=list)
    # (session ids, reason): the sessions ended.
    on_end: list[Callable[[list[int], str], None]] = field(default_factory=list)
    # (session ids, client_id, reason): the sessions go on, without that department (the
    # citizen stopped sharing with it).
    on_department_left: list[Callable[[list[int], str, str], None]] = field(default_factory=list)


def session_hooks(app: Flask | None = None) -> SessionHooks:
    """The app's session hooks (current_app's when no app is given)."""
    app = app if app is not None else current_app
    return app.extensions.setdefault("idp.session_hooks", SessionHooks())


def start_session(
    citizen: Citizen, amr: list[str], *, password_enough_alone: bool = False
) -> BrowserSession:
    """Open a new session (a new identifier at every sign-in) and end the browser's old one.

    When the same citizen signs in again (prompt=login, max_age, step-up), the departments of
    the old session stay signed in: they move to the new session, keeping the sid they were
    told, and are signed out when it ends. Someone else signing in ends the old one for good.
    password_enough_alone: the password just typed may be a single factor (levels.py).
    """
    previous = current_session()
    if previous is not None:
        db.session.refresh(previous)  # another request may have ended it meanwhile
        if previous.ended_at is not None:
            previous = None
    if previous is not None and previous.citizen_id != citizen.id:
        end_session(previous, reason="replaced")
        previous = None
    cookie_value = new_token(32)
    now = utcnow()
    session = BrowserSession(
        token_hash=hash_token(cookie_value),
        sid=new_token(24),
        citizen_id=citizen.id,
        auth_time=now,
        amr=amr,
        password_enough_alone=password_enough_alone,
        user_agent=request.user_agent.string[:300] if request else None,
        created_at=now,
        last_active_at=now,
        expires_at=now + timedelta(seconds=current_settings().session_absolute_lifetime),
    )
    db.session.add(session)
    if previous is not None:
        db.session.flush()
        for replaced in session_hooks().on_replaced:
            replaced(previous, session)
        previous.ended_at = now
        previous.replaced_by_id = session.id
        previous.ended_reason = "signed in again"
    db.session.commit()
    g.browser_session = session
    g.new_session_cookie = cookie_value
    return session


_SESSIONS = BrowserSession.__table__
# Built once: every redemption and refresh follows a sid to its live session. The locking
# form holds the row until the transaction ends (FOR UPDATE; SQLite locks the whole database
# at the first write anyway).
_SESSION_BY_SID = select(_SESSIONS.c.id, _SESSIONS.c.ended_at, _SESSIONS.c.replaced_by_id).where(
    _SESSIONS.c.sid == bindparam("sid")
)
_SESSION_BY_ID = select(_SESSIONS.c.id, _SESSIONS.c.ended_at, _SESSIONS.c.replaced_by_id).where(
    _SESSIONS.c.id == bindparam("session_id")
)
_LOCKED_BY_SID = _SESSION_BY_SID.with_for_update()
_LOCKED_BY_ID = _SESSION_BY_ID.with_for_update()


def live_session_id(sid: str, *, lock: bool = False) -> int | None:
    """The id of the live session a sid belongs to: its own, or the one that took over when
    the citizen signed in again in that browser; None once it has ended. With lock, the row
    stays locked until the transaction ends, so the session cannot end half-way through
    issuing tokens. Each step reads the row afresh (never an ORM copy loaded earlier)."""
    connection = db.session.connection()
    statement, parameters = (_LOCKED_BY_SID if lock else _SESSION_BY_SID), {"sid": sid}
    for _ in range(50):  # each sign-in again adds one step; a browser cannot make many
        row = connection.execute(statement, parameters).first()
        if row is None:
            return None
        session_id, ended_at, replaced_by_id = row
        if ended_at is None:
            return session_id
        if replaced_by_id is None:
            return None
        statement = _LOCKED_BY_ID if lock else _SESSION_BY_ID
        parameters = {"session_id": replaced_by_id}
    return None


@functools.cache
def _live_row_query(model):
    # Built once per model: every page and every authorization request runs it.
    return db.select(model).where(model.token_hash == bindparam("hash"), model.ended_at.is_(None))


def find_live_row(model, cookie_value: str | None):
    """The not-yet-ended session row (citizen or staff) whose cookie this is, or None."""
    if not cookie_value or len(cookie_value) > 128:
        return None
    return db.session.scalar(_live_row_query(model), {"hash": hash_token(cookie_value)})


def timed_out(row, idle_timeout: int, now) -> bool:
    """Past its absolute lifetime, or idle for longer than idle_timeout seconds."""
    return now >= row.expires_at or now >= row.last_active_at + timedelta(seconds=idle_timeout)


def record_activity(row, now) -> None:
    """Move the idle clock on, writing at most once a minute."""
    if now - row.last_active_at >= ACTIVITY_WRITE_INTERVAL:
        row.last_active_at = now
        db.session.commit()


@dataclass(slots=True, frozen=True)
class SignIn:
    """What the protocol reads of the browser's live session at every authorization request:
    one row's columns, loaded by a statement built once, not an ORM instance with its citizen.
    Its attributes are BrowserSession's, so code (and the audit record) that only reads a
    session takes either; ``current_session`` turns it into the row when a page needs that."""

    id: int
    sid: str
    citizen_id: int
    auth_time: datetime
    amr: list[str] | None
    password_enough_alone: bool
    created_at: datetime
    last_active_at: datetime
    expires_at: datetime


_LIVE_SIGN_IN = select(*(_SESSIONS.c[name] for name in SignIn.__dataclass_fields__)).where(
    _SESSIONS.c.token_hash == bindparam("hash"), _SESSIONS.c.ended_at.is_(None)
)
_MARK_ACTIVE = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("session_id"))
    .values(last_active_at=bindparam("now"))
)


def current_sign_in() -> BrowserSession | SignIn | None:
    """The live session of this browser, or None when absent, ended, idle or expired, as
    ``current_session`` decides, but read as a SignIn when no page of this request loaded
    the row: the authorization endpoint's hot path needs only these columns."""
    if "browser_session" in g:
        return g.browser_session
    g.browser_session = None
    cookie_value = read_cookie(current_settings().session_cookie_name)
    if not cookie_value or len(cookie_value) > 128:
        return None
    connection = db.session.connection()
    row = connection.execute(_LIVE_SIGN_IN, {"hash": hash_token(cookie_value)}).first()
    if row is None:
        return None
    sign_in = SignIn(*row)
    now = utcnow()
    if timed_out(sign_in, current_settings().session_idle_timeout, now):
        session = db.session.get(BrowserSession, sign_in.id)
        if session is not None:
            end_session(session, reason="expired")
        return None
    if now - sign_in.last_active_at >= ACTIVITY_WRITE_INTERVAL:
        # As record_activity: the idle clock moves on, written at most once a minute.
        connection.execute(_MARK_ACTIVE, {"session_id": sign_in.id, "now": now})
        db.session.commit()
    g.browser_session = sign_in
    return sign_in


def current_session() -> BrowserSession | None:
    """The live session of this browser, or None when absent, ended, idle or expired."""
    if "browser_session" in g:
        if isinstance(g.browser_session, SignIn):
            # Read as a SignIn earlier in this request: the page wants the row itself.
            g.browser_session = db.session.get(BrowserSession, g.browser_session.id)
        return g.browser_session
    g.browser_session = None
    session = find_live_row(BrowserSession, read_cookie(current_settings().session_cookie_name))
    if session is None:
        return None
    now = utcnow()
    if timed_out(session, current_settings().session_idle_timeout, now):
        end_session(session, reason="expired")
        return None
    record_activity(session, now)
    g.browser_session = session
    return session


def end_session(session: BrowserSession, reason: str) -> None:
    """End a session for good: the refresh tokens departments received in it end, and each
    department registered for back-channel logout is owed a logout token."""
    if session.ended_at is None:
        # One conditional UPDATE: if another process ended it since this one read the row,
        # it is not ended (or announced to departments) a second time.
        now = utcnow()
        _end_sessions([BrowserSession.id == session.id], reason, now)
        db.session.commit()
        db.session.refresh(session)
    if g.get("browser_session") is session:
        g.browser_session = None


def _after_ending(session_ids: list[int], reason: str, now) -> None:
    """What follows the end of sessions (not committed): access and refresh tokens issued
    under any sid of theirs are revoked, and the session-end hooks run (back-channel logouts
    are queued)."""
    hooks = session_hooks()
    sids = set(
        db.session.scalars(db.select(BrowserSession.sid).where(BrowserSession.id.in_(session_ids)))
    )
    for session_id in session_ids:
        for sids_of in hooks.sids_of:
            sids.update(sids_of(session_id))
    revoke_live(RefreshToken, RefreshToken.sid.in_(sids), now=now)
    revoke_live(Token, Token.sid.in_(sids), now=now)
    for ended in hooks.on_end:
        ended(session_ids, reason)
    current = g.get("browser_session") if has_request_context() else None
    if current is not None and current.id in session_ids:
        g.browser_session = None


def _end_sessions(conditions, reason: str, now) -> list[int]:
    """End every live session matching the conditions, each by one conditional UPDATE so that
    two processes never both end (and announce) one; the ids this call ended (not committed)."""
    candidates = list(
        db.session.scalars(
            db.select(BrowserSession.id)
            .where(*conditions, BrowserSession.ended_at.is_(None))
            .order_by(BrowserSession.id)  # one lock order, so two enders cannot deadlock
        )
    )
    ended = []
    for session_id in candidates:
        done = db.session.execute(
            update(BrowserSession)
            .where(BrowserSession.id == session_id, BrowserSession.ended_at.is_(None))
            .values(ended_at=now, ended_reason=reason[:32])
            .execution_options(synchronize_session=False)
        ).rowcount
        if done:
            ended.append(session_id)
    if ended:
        _after_ending(ended, reason, now)
    return ended


def end_every_session(citizen_id: int, reason: str, *, keep: BrowserSession | None = None) -> int:
    """Sign the citizen out of every browser (but keep, if given), and end every access and
    refresh token the departments hold for them; in the caller's transaction (not committed)."""
    now = utcnow()
    ended = _end_sessions(
        [
            BrowserSession.citizen_id == citizen_id,
            BrowserSession.id != (keep.id if keep is not None else -1),
        ],
        reason,
        now,
    )
    revoke_live(Token, Token.citizen_id == citizen_id, now=now)
    revoke_live(RefreshToken, RefreshToken.citizen_id == citizen_id, now=now)
    return len(ended)


def sign_out_of_department(citizen_id: int, client_id: str, reason: str) -> None:
    """Sign the citizen out of one department in every browser, the sessions going on: the
    department is told (back-channel logout, by the hooks) so it no longer shows them signed
    in; in the caller's transaction (not committed)."""
    now = utcnow()
    live = list(
        db.session.scalars(
            db.select(BrowserSession.id).where(
                BrowserSession.citizen_id == citizen_id,
                BrowserSession.ended_at.is_(None),
                BrowserSession.expires_at > now,
            )
        )
    )
    if live:
        for left in session_hooks().on_department_left:
            left(live, client_id, reason)


def end_expired_sessions(limit: int = 500) -> int:
    """End sessions past their absolute lifetime or idle timeout that no browser came back
    to, so their departments hear of it (the background worker calls this); committed."""
    now = utcnow()
    idle_since = now - timedelta(seconds=current_settings().session_idle_timeout)
    expired = db.session.scalars(
        db.select(BrowserSession.id)
        .where(
            BrowserSession.ended_at.is_(None),
            or_(BrowserSession.expires_at <= now, BrowserSession.last_active_at <= idle_since),
        )
        .limit(limit)
    ).all()
    ended = _end_sessions([BrowserSession.id.in_(expired)], "expired", now) if expired else []
    db.session.commit()
    return len(ended)


def apply_session_cookie(response: Response) -> Response:
    """Set or clear the session cookie after a request that changed the session."""
    name = current_settings().session_cookie_name
    if g.get("new_session_cookie"):
        # Never persistent: the browser forgets it when it closes (idp/security/cookies.py).
        set_session_cookie(response, name, g.new_session_cookie, samesite="Lax")
    elif g.get("clear_session_cookie"):
        clear_session_cookie(response, name, samesite="Lax")
    return response

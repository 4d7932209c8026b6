"""The IdP sessions that back-channel logout has ended, kept on the server.

A department's sign-in lives in a signed cookie, which the server cannot delete when the IdP
says the citizen's single sign-on session has ended. So the service remembers the ended
sessions instead (by sid, or by sub and time for a logout token without a sid), and every page
load checks the browser's sign-in against them. The record is an SQLite database in the
service's instance folder, so that it survives a restart, or an in-memory one without a folder.
It also remembers the jti of each logout token until the token expires, so that none is
accepted twice.
"""

import contextlib
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The IdP's single sign-on sessions last at most 12 hours. The service keeps each ended session
# for twice that, and refuses any remembered sign-in older than this (relying_parties.account),
# so a sign-in never outlives the record that ends it.
RETENTION_SECONDS = 24 * 60 * 60
SQLITE_BUSY_TIMEOUT_SECONDS = 5.0
IN_MEMORY = ":memory:"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ended_sessions (sid TEXT PRIMARY KEY, ended_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ended_subjects (sub TEXT PRIMARY KEY, ended_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS seen_logout_tokens "
    "(jti TEXT PRIMARY KEY, expires_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ended_sessions_by_time ON ended_sessions (ended_at)",
    "CREATE INDEX IF NOT EXISTS ended_subjects_by_time ON ended_subjects (ended_at)",
    "CREATE INDEX IF NOT EXISTS seen_logout_tokens_by_time ON seen_logout_tokens (expires_at)",
)

ENDED_SESSION = "SELECT ended_at FROM ended_sessions WHERE sid = ?"
ENDED_SUBJECT = "SELECT ended_at FROM ended_subjects WHERE sub = ?"


class ReplayedLogoutToken(Exception):
    """A logout token whose jti the service has already accepted."""


class EndedSessionsUnavailable(Exception):
    """The record of ended sessions could not be read or written."""


@dataclass(frozen=True)
class Logout:
    """What one valid logout token ends: the IdP session sid, or every earlier sign-in of sub."""

    jti: str
    # When the token stops being accepted (its exp plus the clock leeway): its jti is kept
    # until then.
    expires_at: float
    sid: str | None
    sub: str | None


def store_path(instance_path: str | None, client_id: str) -> Path | None:
    """The service's database file in its instance folder, or None to keep it in memory."""
    if not instance_path:
        return None
    safe_client_id = re.sub(r"[^A-Za-z0-9_-]", "_", client_id)
    return Path(instance_path) / f"ended-sessions-{safe_client_id}.sqlite3"


class EndedSessions:
    """The ended IdP sessions and the logout tokens seen, safe to share between threads."""

    def __init__(self, path: Path | None) -> None:
        """Open (creating, owner-only) the database at path, or an in-memory one for None."""
        if path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Create it readable by this user only before SQLite opens it.
            path.touch(mode=0o600, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            IN_MEMORY if path is None else str(path),
            timeout=SQLITE_BUSY_TIMEOUT_SECONDS,
            check_same_thread=False,
            isolation_level=None,
        )
        weakref.finalize(self, self._connection.close)
        with self._lock, self._transaction():
            for statement in SCHEMA:
                self._connection.execute(statement)

    def end(self, logout: Logout, now: float | None = None) -> None:
        """Record the logout; ReplayedLogoutToken if its jti was accepted before."""
        now = time.time() if now is None else now
        with self._lock, self._transaction():
            self._prune(now)
            try:
                self._connection.execute(
                    "INSERT INTO seen_logout_tokens (jti, expires_at) VALUES (?, ?)",
                    (logout.jti, logout.expires_at),
                )
            except sqlite3.IntegrityError:
                raise ReplayedLogoutToken(logout.jti) from None
            if logout.sid is not None:
                self._connection.execute(
                    "INSERT OR REPLACE INTO ended_sessions (sid, ended_at) VALUES (?, ?)",
                    (logout.sid, now),
                )
            else:
                # OIDC Back-Channel Logout 2.7: without a sid, every session of sub so far.
                self._connection.execute(
                    "INSERT INTO ended_subjects (sub, ended_at) VALUES (?, ?) "
                    "ON CONFLICT (sub) DO UPDATE SET "
                    "ended_at = max(ended_at, excluded.ended_at)",
                    (logout.sub, now),
                )

    def has_ended(self, sid: str | None, sub: str | None, signed_in_at: float) -> bool:
        """Whether a sign-in (its sid and sub, when it happened) belongs to an ended session."""
        with self._lock:
            if sid is not None and self._ended_at(ENDED_SESSION, sid) is not None:
                return True
            ended_at = None if sub is None else self._ended_at(ENDED_SUBJECT, sub)
        return ended_at is not None and signed_in_at <= ended_at

    def _ended_at(self, query: str, value: str) -> float | None:
        """When the session (or subject) that query looks up ended, if it has."""
        try:
            row = self._connection.execute(query, (value,)).fetchone()
        except sqlite3.Error as error:
            raise EndedSessionsUnavailable(str(error)) from error
        return None if row is None else row[0]

    def _prune(self, now: float) -> None:
        """Forget logouts older than the retention and logout tokens that have expired."""
        cutoff = now - RETENTION_SECONDS
        self._connection.execute("DELETE FROM ended_sessions WHERE ended_at < ?", (cutoff,))
        self._connection.execute("DELETE FROM ended_subjects WHERE ended_at < ?", (cutoff,))
        self._connection.execute("DELETE FROM seen_logout_tokens WHERE expires_at < ?", (now,))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (other processes sharing the file wait for it), rolled
        back if the block fails; SQLite's errors become EndedSessionsUnavailable."""
        connection = self._connection
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise EndedSessionsUnavailable(str(error)) from error
        try:
            yield
            connection.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            if isinstance(error, sqlite3.Error):
                raise EndedSessionsUnavailable(str(error)) from error
            raise

"""Generations: how each process knows that its cached registrations or signing keys are stale.

The protocol's hot path reads every request's client registration and the signing key; both
change only when an administrator changes them. Each process keeps them in memory
(``ProcessCache``) and, at most once every ``check_seconds``, reads one small table of
counters: one row per kind of cached thing, bumped in the same transaction as any change to
it, by whichever process makes the change (the web pages, the registration API, `idp clients`,
`idp keys`). A process that sees a counter move drops what it cached of that kind. The
process that made the change drops its own copy at once.

So a change shows everywhere within ``check_seconds`` (``IDP_CACHE_CHECK_SECONDS``, 1 s by
default; 0 checks at every request), and a request costs one tiny read a second per process
instead of two row loads each time.

The counters are bumped by SQLAlchemy session hooks, so no call site has to remember: any
flush that adds, changes or deletes a watched model, and any ORM ``update()``/``delete()`` of
one, bumps its counter in the same transaction. A rollback undoes the bump with the change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import BigInteger, String, event, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from idp import clock
from idp.extensions import db

REGISTRATIONS = "registrations"
SIGNING_KEYS = "signing_keys"
KINDS = (REGISTRATIONS, SIGNING_KEYS)

# Which tables feed which cache (by table name, so this module needs no other model).
WATCHED_TABLES = {"client": REGISTRATIONS, "department": REGISTRATIONS, "signing_key": SIGNING_KEYS}

_BUMP = text("UPDATE cache_generation SET value = value + 1 WHERE name = :name")
_READ = text("SELECT name, value FROM cache_generation")


class CacheGeneration(db.Model):
    """One counter per kind of thing processes cache; bumped with every change to it."""

    __tablename__ = "cache_generation"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


# Kinds this process changed itself: its caches drop them at the next read, not a second later.
_changed_here: set[str] = set()
_changed_lock = threading.Lock()


def _kinds_touched(objects) -> set[str]:
    tables = {getattr(obj, "__tablename__", None) for obj in objects}
    return {WATCHED_TABLES[name] for name in tables if name in WATCHED_TABLES}


def _bump(session: Session, kinds: set[str]) -> None:
    connection = session.connection()
    for kind in sorted(kinds):
        connection.execute(_BUMP, {"name": kind})
    session.info.setdefault("cache_kinds_changed", set()).update(kinds)


@event.listens_for(Session, "before_flush")
def _bump_on_flush(session: Session, flush_context, instances) -> None:  # noqa: ARG001
    dirty = [obj for obj in session.dirty if session.is_modified(obj, include_collections=False)]
    kinds = _kinds_touched([*session.new, *dirty, *session.deleted])
    if kinds:
        _bump(session, kinds)


@event.listens_for(Session, "do_orm_execute")
def _bump_on_bulk_change(state) -> None:
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    table = getattr(state.bind_mapper.class_, "__tablename__", None)
    if table in WATCHED_TABLES:
        _bump(state.session, {WATCHED_TABLES[table]})


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget_here(session: Session) -> None:
    """Once the change is committed (or undone), this process's caches reload it at their next
    read: a value read meanwhile in the changing transaction is never kept."""
    kinds = session.info.pop("cache_kinds_changed", None)
    if kinds:
        with _changed_lock:
            _changed_here.update(kinds)


def read_generations() -> dict[str, int]:
    """Every counter, in one small statement."""
    return {name: value for name, value in db.session.execute(_READ)}


class ProcessCache:
    """Values of one kind kept in this process until its counter moves (or this process
    changes it). ``load(key)`` reads one from the database; None is cached too (an unknown
    client_id asked again costs nothing until a registration changes)."""

    def __init__(self, kind: str, load: Callable[[Any], Any], check_seconds: Callable[[], float]):
        self.kind = kind
        self._load = load
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Any], Any] = {}
        self._seen: dict[str, tuple[float, int | None]] = {}  # database -> (checked, value)

    def get(self, database: str, key: Any) -> Any:
        self._revalidate(database)
        with self._lock:
            if (database, key) in self._values:
                return self._values[(database, key)]
        value = self._load(key)
        with self._lock:
            self._values[(database, key)] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._seen.clear()

    def _revalidate(self, database: str) -> None:
        now = clock.time()
        with _changed_lock:
            changed_here = self.kind in _changed_here
            _changed_here.discard(self.kind)
        with self._lock:
            checked, seen = self._seen.get(database, (float("-inf"), None))
        if not changed_here and 0 <= now - checked < self._check_seconds():
            return
        value = read_generations().get(self.kind)
        with self._lock:
            if changed_here or value != seen:
                for cached in [k for k in self._values if k[0] == database]:
                    del self._values[cached]
            self._seen[database] = (now, value)

"""Throttling of failed attempts at a secret (NIST SP 800-63B 5.2.2), as GOV.UK One Login does.

A view asks before it checks a secret, and reports the outcome afterwards::

    decision = throttle.check("password", account_key, ip)  # cheap: before argon2
    if not decision.allowed:
        ...  # 429 with Retry-After: decision.retry_after
    throttle.record_failure("password", account_key, ip)  # or record_success(...)

An account key (a normalised email address, whether an account has it or not, so a known and
an unknown address are throttled alike) gets growing delays after a few consecutive failures
and is locked after ``max_failures`` of them; an IP address gets 429 after ``ip_max_failures``
failures in a window. Limits come from the throttle_* settings, per kind of secret.

Nobody can lock a citizen out by guessing from elsewhere (OWASP "Slow Down Online Guessing
Attacks with Device Cookies"): a browser that signed in to the account before presents a device
cookie (idp/security/devices.py) and is judged by its own counters (scope "device"), so the
lock that failures from untrusted clients set stops only untrusted clients. A device that locks
or reaches the cap is untrusted from then on. Consecutive failures are also counted across
lockouts (scope "total", forgotten ``throttle_cap_memory_seconds`` after the last one): at
``throttle_cap_failures`` (100, NIST SP 800-63B 5.2.2) the account stays locked for untrusted
clients until a password reset opens it (``reopen``). The owner hears of a lock at most once
per ``throttle_lockout_email_interval`` (``claim_lockout_email``).

Machine-facing endpoints (/token, /introspect, /revoke, /register, /userinfo) count failed
requests per IP address and per authenticated client in windows (``check_endpoint``,
``record_endpoint_failure``); successful requests are never counted.

Counters live in Redis when ``redis_url`` is set (shared by every process, expired by Redis),
otherwise in the database (shared through it, changed by atomic upserts). If Redis cannot be
reached the counters fall back to the database, with one warning. Keys are SHA-256 digests:
neither store holds an email address, an IP address or a password.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
from flask import current_app
from flask_babel import gettext as _
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import and_, case, literal, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from idp import audit, clock
from idp.extensions import db
from idp.models.citizen import canonical_email
from idp.models.throttle import ThrottleCounter
from idp.models.timestamps import UTCDateTime
from idp.settings import THROTTLE_KINDS, ThrottleLimits, current_settings

log = logging.getLogger("idp.throttle")

EXTENSION = "idp_throttle_store"
ACCOUNT = "account"
IP = "ip"
# A trusted device's consecutive failures (keyed by account and the device cookie's nonce).
DEVICE = "device"
# Consecutive failures across lockouts, for the cap: untrusted clients, and each device.
TOTAL = "total"
DEVICE_TOTAL = "device_total"
# When the owner was last told of a lock.
NOTICE = "notice"
# Failed requests of one authenticated client at the machine-facing endpoints.
CLIENT = "client"
ENDPOINT_KIND = "endpoint"
# Uses of something costly (a text message sent to one number) in a window, whatever happened.
QUOTA = "quota"
# Kinds of secret a password reset opens, so the only ones with a cap that holds until then.
CAPPED_KINDS = ("password",)
# A capped count is kept until a reset deletes it (the housekeeping purge leaves it alone).
FOREVER = datetime(3000, 1, 1, tzinfo=UTC)
# The unique key of a counter row, for ON CONFLICT.
COUNTER_KEY = ["kind", "scope", "key_hash"]
# Redis answers on the sign-in path: connect and reply quickly, or fall back to the database.
REDIS_TIMEOUT_SECONDS = 1.0
_choosing = threading.Lock()


@dataclass(frozen=True)
class Decision:
    """Whether an attempt may go ahead; when not, how long to wait and why."""

    allowed: bool
    # Seconds until an attempt is allowed again (the Retry-After header); 0 when allowed.
    retry_after: int = 0
    # The account is locked (as opposed to a short delay or the IP address limit).
    locked: bool = False
    # This very failure locked the account: tell its owner, once.
    newly_locked: bool = False
    # Too many failures across lockouts: only a password reset opens the account.
    capped: bool = False
    # "locked", "capped", "delay" or "ip" when not allowed.
    reason: str = ""


ALLOWED = Decision(allowed=True)


@dataclass(frozen=True)
class AccountCount:
    """Consecutive failures on one account key."""

    failures: int = 0
    # Epoch seconds of the last failure (0 when none).
    last_failure: float = 0.0
    # Epoch seconds when the lock ends, or None when not locked.
    locked_until: float | None = None


@dataclass(frozen=True)
class WindowCount:
    """Failures from one IP address in the current window."""

    failures: int = 0
    # Epoch seconds when the window ends.
    ends: float = 0.0


class Store(Protocol):
    """Where counters live: the database or Redis."""

    name: str

    def account(self, kind: str, digest: str, now: float, scope: str = ACCOUNT) -> AccountCount: ...

    def window(self, kind: str, digest: str, now: float, scope: str = IP) -> WindowCount: ...

    def fail_account(
        self, kind: str, digest: str, limits: ThrottleLimits, now: float, scope: str = ACCOUNT
    ) -> tuple[AccountCount, bool]: ...

    def fail_window(
        self, kind: str, digest: str, seconds: int, now: float, scope: str = IP
    ) -> WindowCount: ...

    def total(self, kind: str, digest: str, now: float, scope: str) -> int: ...

    def fail_total(
        self, kind: str, digest: str, cap: int, memory: int, now: float, scope: str
    ) -> int: ...

    def claim(self, kind: str, digest: str, seconds: int, now: float) -> bool: ...

    def clear(self, kind: str, digest: str, scope: str = ACCOUNT) -> None: ...


# -- The API views use ------------------------------------------------------------------------


def email_key(email: str, realm: str = "citizen") -> str:
    """The account key for an email address typed into a sign-in form, known or not.

    Citizens and staff are separate realms: failures on one never lock the other's account.
    """
    try:
        address = canonical_email(email)
    except ValueError:
        address = email.strip().lower()
    return address if realm == "citizen" else f"{realm}:{address}"


def digest(value: str) -> str:
    """SHA-256 of an account key or IP address: what the stores and the audit record keep."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def check(
    kind: str, account_key: str, ip: str, *, device: str | None = None, now: float | None = None
) -> Decision:
    """May someone try a secret of this kind for this account, from this IP address, now?

    device is the nonce of a device cookie this account was given (devices.presented): a
    trusted device is judged by its own counters only, so nobody elsewhere can lock it out.
    """
    limits = _limits(kind)
    now = clock.time() if now is None else now
    if device and _trusted(kind, account_key, device, now):
        count = _run("account", kind, _device_digest(account_key, device), now, DEVICE)
        return decide(limits, count, WindowCount(), now)
    if _capped(kind, digest(account_key), now, TOTAL):
        return _capped_decision(limits)
    account = _run("account", kind, digest(account_key), now)
    window = _run("window", kind, digest(ip), now)
    return decide(limits, account, window, now)


def record_failure(
    kind: str, account_key: str, ip: str, *, device: str | None = None, now: float | None = None
) -> Decision:
    """Count a failed attempt; the decision says what the next attempt may do."""
    limits = _limits(kind)
    now = clock.time() if now is None else now
    window = _run("fail_window", kind, digest(ip), limits.ip_window_seconds, now)
    if device and _trusted(kind, account_key, device, now):
        subject, scope, total_scope, window = (
            _device_digest(account_key, device),
            DEVICE,
            DEVICE_TOTAL,
            WindowCount(),
        )
    else:
        subject, scope, total_scope = digest(account_key), ACCOUNT, TOTAL
    account, newly_locked = _run("fail_account", kind, subject, limits, now, scope)
    if kind in CAPPED_KINDS:
        settings = current_settings()
        cap = settings.throttle_cap_failures
        total = _run(
            "fail_total", kind, subject, cap, settings.throttle_cap_memory_seconds, now, total_scope
        )
        if total >= cap and scope == ACCOUNT:
            return replace(_capped_decision(limits), newly_locked=total == cap or newly_locked)
    decision = decide(limits, account, window, now)
    return replace(decision, newly_locked=True) if newly_locked else decision


def record_success(kind: str, account_key: str, *, device: str | None = None) -> None:
    """The secret was right: the consecutive failures of whoever tried (this trusted device,
    or untrusted clients) start again from nought."""
    _limits(kind)
    if device and _trusted(kind, account_key, device, clock.time()):
        subject = _device_digest(account_key, device)
        _run("clear", kind, subject, DEVICE)
        _run("clear", kind, subject, DEVICE_TOTAL)
        return
    _run("clear", kind, digest(account_key), ACCOUNT)
    _run("clear", kind, digest(account_key), TOTAL)


def reopen(account_key: str) -> None:
    """A password reset by email proved the owner: the password lock and the cap go."""
    for kind in CAPPED_KINDS:
        _run("clear", kind, digest(account_key), ACCOUNT)
        _run("clear", kind, digest(account_key), TOTAL)


def claim_lockout_email(kind: str, account_key: str, *, now: float | None = None) -> bool:
    """True for the one caller that may tell the owner of a lock now: at most once per
    throttle_lockout_email_interval, however often the account locks."""
    _limits(kind)
    now = clock.time() if now is None else now
    seconds = current_settings().throttle_lockout_email_interval
    return bool(_run("claim", kind, digest(account_key), seconds, now))


def _device_digest(account_key: str, device: str) -> str:
    return digest(f"{account_key}\n{device}")


def _capped(kind: str, subject: str, now: float, scope: str) -> bool:
    if kind not in CAPPED_KINDS:
        return False
    return _run("total", kind, subject, now, scope) >= current_settings().throttle_cap_failures


def _trusted(kind: str, account_key: str, device: str, now: float) -> bool:
    """A device cookie still trusted: its device neither locked nor capped (OWASP: a locked
    device cookie is treated as an untrusted client)."""
    subject = _device_digest(account_key, device)
    if _capped(kind, subject, now, DEVICE_TOTAL):
        return False
    count = _run("account", kind, subject, now, DEVICE)
    return count.locked_until is None or count.locked_until <= now


def _capped_decision(limits: ThrottleLimits) -> Decision:
    """Locked until a password reset; Retry-After says when it is worth looking again."""
    return Decision(False, limits.lockout_seconds, locked=True, capped=True, reason="capped")


# -- Quotas: uses of something costly, counted whether they went well or not ------------------


def check_quota(kind: str, key: str, limit: int, *, now: float | None = None) -> Decision:
    """May key use its quota of kind once more now? Refused (reason "quota") once it was used
    limit times in the current window; success never gives a use back."""
    _limits(kind)
    now = clock.time() if now is None else now
    window = _run("window", kind, digest(key), now, QUOTA)
    if window.failures >= limit and window.ends > now:
        return Decision(False, _seconds(window.ends - now), reason="quota")
    return ALLOWED


def use_quota(kind: str, key: str, seconds: int, *, now: float | None = None) -> int:
    """Count one use against key's quota (a window of seconds from its first use); how many
    uses the window now holds."""
    _limits(kind)
    now = clock.time() if now is None else now
    return _run("fail_window", kind, digest(key), seconds, now, QUOTA).failures


# -- Machine-facing endpoints -----------------------------------------------------------------


def check_endpoint(ip: str, client_id: str | None = None, *, now: float | None = None) -> Decision:
    """May this IP address (and this client, when one is claimed) call a machine-facing
    endpoint now? Only failed requests were counted, so a busy client is never refused."""
    settings = current_settings()
    now = clock.time() if now is None else now
    window = _run("window", ENDPOINT_KIND, digest(ip), now, IP)
    if window.failures >= settings.endpoint_ip_max_failures and window.ends > now:
        return Decision(False, _seconds(window.ends - now), reason="ip")
    if client_id:
        window = _run("window", ENDPOINT_KIND, digest(client_id), now, CLIENT)
        if window.failures >= settings.endpoint_client_max_failures and window.ends > now:
            return Decision(False, _seconds(window.ends - now), reason="client")
    return ALLOWED


def record_endpoint_failure(
    ip: str | None, client_id: str | None = None, *, now: float | None = None
) -> str:
    """Count a failed request from this IP address (None: not against an address) and, once
    authenticated, this client; returns "ip" or "client" when this very failure reached that
    limit, else "".

    Only an authenticated client's own failures count against it: failed client
    authentication counts against the IP address alone, so nobody can lock a department out
    by sending bad credentials in its name.
    """
    settings = current_settings()
    seconds = settings.endpoint_window_seconds
    now = clock.time() if now is None else now
    reached = ""
    if ip is not None:
        window = _run("fail_window", ENDPOINT_KIND, digest(ip), seconds, now, IP)
        if window.failures == settings.endpoint_ip_max_failures:
            reached = "ip"
    if client_id:
        window = _run("fail_window", ENDPOINT_KIND, digest(client_id), seconds, now, CLIENT)
        if window.failures == settings.endpoint_client_max_failures:
            reached = "client"
    return reached


def decide(
    limits: ThrottleLimits, account: AccountCount, window: WindowCount, now: float
) -> Decision:
    """The decision for the counts: a lock first, then the IP address limit, then a delay."""
    if account.locked_until is not None and account.locked_until > now:
        return Decision(False, _seconds(account.locked_until - now), locked=True, reason="locked")
    if window.failures >= limits.ip_max_failures and window.ends > now:
        return Decision(False, _seconds(window.ends - now), reason="ip")
    wait = delay(limits, account.failures)
    if wait and account.last_failure + wait > now:
        return Decision(False, _seconds(account.last_failure + wait - now), reason="delay")
    return ALLOWED


def delay(limits: ThrottleLimits, failures: int) -> int:
    """Seconds to wait after this many consecutive failures: 1, 2, 4... after delay_after."""
    if not limits.delay_seconds or failures < limits.delay_after:
        return 0
    doublings = min(failures - limits.delay_after, 32)
    return min(limits.delay_seconds * 2**doublings, limits.max_delay_seconds)


def wait_units(seconds: int) -> tuple[int, str]:
    """A wait in whole "seconds", "minutes" or "hours", rounded up, for saying it in words."""
    if seconds < 60:
        return max(seconds, 1), "seconds"
    if seconds < 3600:
        return math.ceil(seconds / 60), "minutes"
    return math.ceil(seconds / 3600), "hours"


def wait_in_words(seconds: int) -> str:
    """A wait in plain words: "15 minutes", "1 second"."""
    # Not ngettext: Welsh puts the singular after any number, so only English needs "1 ...".
    number, unit = wait_units(seconds)
    if unit == "seconds":
        return _("1 second") if number == 1 else _("%(num)d seconds", num=number)
    if unit == "minutes":
        return _("1 minute") if number == 1 else _("%(num)d minutes", num=number)
    return _("1 hour") if number == 1 else _("%(num)d hours", num=number)


def limits_for(kind: str) -> ThrottleLimits:
    """The limits for a kind of secret, from the current app's settings."""
    return _limits(kind)


def _limits(kind: str) -> ThrottleLimits:
    if kind not in THROTTLE_KINDS:
        raise ValueError(f"unknown throttling kind {kind!r}; one of {', '.join(THROTTLE_KINDS)}")
    return current_settings().throttle_limits(kind)


def _seconds(value: float) -> int:
    """Whole seconds, rounded up, at least one (a Retry-After of 0 would invite a retry now)."""
    return max(1, math.ceil(value - 1e-6))


# -- Choosing the store, once per app ---------------------------------------------------------


def store() -> Store:
    """The current app's store, chosen on first use."""
    app = current_app._get_current_object()
    chosen = app.extensions.get(EXTENSION)
    if chosen is None:
        with _choosing:
            chosen = app.extensions.get(EXTENSION)
            if chosen is None:
                chosen = app.extensions[EXTENSION] = _choose_store()
    return chosen


def _choose_store() -> Store:
    """Redis when configured and answering; otherwise the database."""
    settings = current_settings()
    if not settings.redis_url:
        return DatabaseStore()
    try:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        return _fall_back(exc)
    return RedisStore(client, settings.throttle_redis_prefix)


def _fall_back(exc: Exception) -> Store:
    """Use the database from now on in this app, and say so once."""
    url = urlsplit(current_settings().redis_url)
    log.warning(
        "Redis at %s is not reachable (%s): sign-in throttling counts failures in the database"
        " instead until the IdP restarts",
        f"{url.hostname}:{url.port or 6379}",
        type(exc).__name__,
    )
    fallback = DatabaseStore()
    current_app.extensions[EXTENSION] = fallback
    return fallback


def _run(operation: str, *args: Any) -> Any:
    """One store operation; if Redis fails, the database takes over (never an error page)."""
    chosen = store()
    try:
        return getattr(chosen, operation)(*args)
    except redis.RedisError as exc:
        if not isinstance(chosen, RedisStore):
            raise
        return getattr(_fall_back(exc), operation)(*args)


# -- The database store -----------------------------------------------------------------------


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _time(value: datetime) -> Any:
    """A timestamp bound as the columns' type (so SQLite compares like with like)."""
    return literal(value, UTCDateTime())


class DatabaseStore:
    """Counters in the throttle_counter table, changed only by atomic upserts."""

    name = "database"

    def _row(self, kind: str, scope: str, key_hash: str) -> Any:
        table = ThrottleCounter.__table__
        return db.session.execute(
            select(
                table.c.failures, table.c.last_failure_at, table.c.locked_until, table.c.expires_at
            ).where(table.c.kind == kind, table.c.scope == scope, table.c.key_hash == key_hash)
        ).first()

    def account(self, kind: str, digest: str, now: float, scope: str = ACCOUNT) -> AccountCount:
        row = self._row(kind, scope, digest)
        if row is None or row.expires_at.timestamp() <= now:
            return AccountCount()
        locked_until = row.locked_until.timestamp() if row.locked_until else None
        if locked_until is not None and locked_until <= now:
            return AccountCount()  # the lock is over: failures start again from nought
        return AccountCount(row.failures, row.last_failure_at.timestamp(), locked_until)

    def window(self, kind: str, digest: str, now: float, scope: str = IP) -> WindowCount:
        row = self._row(kind, scope, digest)
        if row is None or row.expires_at.timestamp() <= now:
            return WindowCount()
        return WindowCount(row.failures, row.expires_at.timestamp())

    def total(self, kind: str, digest: str, now: float, scope: str) -> int:
        row = self._row(kind, scope, digest)
        return 0 if row is None or row.expires_at.timestamp() <= now else row.failures

    def fail_account(
        self, kind: str, digest: str, limits: ThrottleLimits, now: float, scope: str = ACCOUNT
    ) -> tuple[AccountCount, bool]:
        table = ThrottleCounter.__table__
        at = _at(now)
        lock_ends = _at(now + limits.lockout_seconds)
        forget_at = _at(now + max(limits.failure_memory_seconds, limits.lockout_seconds))
        still_locked = and_(table.c.locked_until.is_not(None), table.c.locked_until > at)
        forgotten = or_(
            table.c.expires_at <= at,
            and_(table.c.locked_until.is_not(None), table.c.locked_until <= at),
        )
        failures = case((forgotten, 1), else_=table.c.failures + 1)
        statement = (
            _new_counter(
                kind,
                scope,
                digest,
                at,
                expires_at=forget_at,
                locked_until=lock_ends if limits.max_failures <= 1 else None,
            )
            .on_conflict_do_update(
                index_elements=COUNTER_KEY,
                set_={
                    "failures": failures,
                    "last_failure_at": at,
                    "locked_until": case(
                        (still_locked, table.c.locked_until),
                        (failures >= limits.max_failures, _time(lock_ends)),
                        else_=null(),
                    ),
                    "expires_at": forget_at,
                },
            )
            .returning(table.c.failures, table.c.locked_until)
        )
        row = db.session.execute(statement).one()
        db.session.commit()
        locked_until = row.locked_until.timestamp() if row.locked_until else None
        count = AccountCount(row.failures, now, locked_until)
        # Exactly one failure reaches the limit; racing ones after it count past it.
        return count, row.failures == limits.max_failures

    def fail_window(
        self, kind: str, digest: str, seconds: int, now: float, scope: str = IP
    ) -> WindowCount:
        table = ThrottleCounter.__table__
        at = _at(now)
        window_ends = _at(now + seconds)
        over = table.c.expires_at <= at
        statement = (
            _new_counter(kind, scope, digest, at, expires_at=window_ends)
            .on_conflict_do_update(
                index_elements=COUNTER_KEY,
                set_={
                    "failures": case((over, 1), else_=table.c.failures + 1),
                    "last_failure_at": at,
                    "expires_at": case((over, _time(window_ends)), else_=table.c.expires_at),
                },
            )
            .returning(table.c.failures, table.c.expires_at)
        )
        row = db.session.execute(statement).one()
        db.session.commit()
        return WindowCount(row.failures, row.expires_at.timestamp())

    def fail_total(
        self, kind: str, digest: str, cap: int, memory: int, now: float, scope: str
    ) -> int:
        table = ThrottleCounter.__table__
        at = _at(now)
        failures = case((table.c.expires_at <= at, 1), else_=table.c.failures + 1)
        statement = (
            _new_counter(
                kind, scope, digest, at, expires_at=FOREVER if cap <= 1 else _at(now + memory)
            )
            .on_conflict_do_update(
                index_elements=COUNTER_KEY,
                set_={
                    "failures": failures,
                    "last_failure_at": at,
                    # At the cap the count is kept until a reset deletes it.
                    "expires_at": case(
                        (failures >= cap, _time(FOREVER)), else_=_time(_at(now + memory))
                    ),
                },
            )
            .returning(table.c.failures)
        )
        total = db.session.execute(statement).scalar_one()
        db.session.commit()
        return total

    def claim(self, kind: str, digest: str, seconds: int, now: float) -> bool:
        table = ThrottleCounter.__table__
        at = _at(now)
        statement = (
            _new_counter(kind, NOTICE, digest, at, expires_at=_at(now + seconds))
            .on_conflict_do_update(
                index_elements=COUNTER_KEY,
                set_={"last_failure_at": at, "expires_at": _time(_at(now + seconds))},
                # Only a claim whose interval is over takes it again: racing ones get no row.
                where=table.c.expires_at <= at,
            )
            .returning(table.c.id)
        )
        claimed = db.session.execute(statement).first() is not None
        db.session.commit()
        return claimed

    def clear(self, kind: str, digest: str, scope: str = ACCOUNT) -> None:
        table = ThrottleCounter.__table__
        db.session.execute(
            table.delete().where(
                table.c.kind == kind, table.c.scope == scope, table.c.key_hash == digest
            )
        )
        db.session.commit()


def _new_counter(
    kind: str, scope: str, digest: str, at: datetime, *, expires_at: datetime, locked_until=None
) -> Any:
    """INSERT of a counter's first failure (one failure, at `at`), to be completed with its
    ON CONFLICT DO UPDATE for the database in use."""
    return _insert()(ThrottleCounter.__table__).values(
        kind=kind,
        scope=scope,
        key_hash=digest,
        failures=1,
        last_failure_at=at,
        locked_until=locked_until,
        expires_at=expires_at,
    )


def _insert() -> Any:
    """INSERT ... ON CONFLICT DO UPDATE for the database in use (SQLite or PostgreSQL)."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise RuntimeError(f"sign-in throttling does not support {dialect} databases")


# -- The Redis store --------------------------------------------------------------------------


class RedisStore:
    """Counters in Redis: HINCRBY/INCR with EXPIRE in MULTI transactions, so they are atomic.

    An account is a hash (failures, last) forgotten failure_memory_seconds after the last
    failure, and a separate lock key that expires when the lock ends (a device likewise). An IP
    address or a client is a counter created with the window's expiry (SET NX EX) and then
    INCR'd. A total is INCR'd and forgotten cap_memory after the last failure, or PERSISTed at
    the cap; a lockout email claim is a key SET NX EX for the interval.
    """

    name = "redis"

    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix

    def _key(self, kind: str, scope: str, digest: str) -> str:
        return f"{self.prefix}{kind}:{scope}:{digest}"

    def account(self, kind: str, digest: str, now: float, scope: str = ACCOUNT) -> AccountCount:
        key = self._key(kind, scope, digest)
        pipe = self.client.pipeline(transaction=True)
        pipe.hmget(key, "failures", "last")
        pipe.pttl(key + ":lock")
        (failures, last), lock_ms = pipe.execute()
        locked_until = now + lock_ms / 1000 if lock_ms > 0 else None
        return AccountCount(int(failures or 0), float(last or 0), locked_until)

    def window(self, kind: str, digest: str, now: float, scope: str = IP) -> WindowCount:
        key = self._key(kind, scope, digest)
        pipe = self.client.pipeline(transaction=True)
        pipe.get(key)
        pipe.pttl(key)
        failures, ttl_ms = pipe.execute()
        if failures is None or ttl_ms <= 0:
            return WindowCount()
        return WindowCount(int(failures), now + ttl_ms / 1000)

    def total(self, kind: str, digest: str, now: float, scope: str) -> int:
        return int(self.client.get(self._key(kind, scope, digest)) or 0)

    def fail_account(
        self, kind: str, digest: str, limits: ThrottleLimits, now: float, scope: str = ACCOUNT
    ) -> tuple[AccountCount, bool]:
        key = self._key(kind, scope, digest)
        lock = key + ":lock"
        pipe = self.client.pipeline(transaction=True)
        pipe.hincrby(key, "failures", 1)
        pipe.hset(key, "last", repr(now))
        pipe.expire(key, max(limits.failure_memory_seconds, limits.lockout_seconds))
        pipe.pttl(lock)
        failures, _, _, lock_ms = pipe.execute()
        if lock_ms > 0:
            return AccountCount(failures, now, now + lock_ms / 1000), False
        if failures < limits.max_failures:
            return AccountCount(failures, now, None), False
        # Only one racing failure sets the lock (NX), so the owner is told once.
        newly_locked = bool(self.client.set(lock, "1", ex=limits.lockout_seconds, nx=True))
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)  # failures start again from nought when the lock ends
        pipe.pttl(lock)
        _, lock_ms = pipe.execute()
        lock_ms = lock_ms if lock_ms > 0 else limits.lockout_seconds * 1000
        return AccountCount(failures, now, now + lock_ms / 1000), newly_locked

    def fail_window(
        self, kind: str, digest: str, seconds: int, now: float, scope: str = IP
    ) -> WindowCount:
        key = self._key(kind, scope, digest)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, 0, ex=seconds, nx=True)
        pipe.incr(key)  # INCR keeps the expiry the window started with
        pipe.pttl(key)
        _, failures, ttl_ms = pipe.execute()
        ttl_ms = ttl_ms if ttl_ms > 0 else seconds * 1000
        return WindowCount(failures, now + ttl_ms / 1000)

    def fail_total(
        self, kind: str, digest: str, cap: int, memory: int, now: float, scope: str
    ) -> int:
        key = self._key(kind, scope, digest)
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, memory)
        total, _ = pipe.execute()
        if total >= cap:
            self.client.persist(key)  # kept until a reset deletes it
        return total

    def claim(self, kind: str, digest: str, seconds: int, now: float) -> bool:
        return bool(self.client.set(self._key(kind, NOTICE, digest), "1", ex=seconds, nx=True))

    def clear(self, kind: str, digest: str, scope: str = ACCOUNT) -> None:
        key = self._key(kind, scope, digest)
        self.client.delete(key, key + ":lock")  # a reset ends the lock too


def audit_refusal(decision: Decision, kind: str, lockout: int, **who: Any) -> None:
    """Record a throttled attempt, or the lockout it caused, without the address typed."""
    if decision.newly_locked:
        # At the cap the lock has no end: a password reset (or an operator) opens it.
        until = {"until": "password_reset"} if decision.capped else {"locked_for": lockout}
        audit.record(
            "account.locked",
            outcome="failure",
            reason=f"too many wrong attempts ({kind})",
            kind=kind,
            **until,
            **who,
        )
    else:
        audit.record(
            "sign_in.throttled",
            outcome="failure",
            reason=decision.reason,
            kind=kind,
            retry_after=decision.retry_after,
            **who,
        )

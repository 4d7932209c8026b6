"""The throttle itself: delays, locks, the IP address limit, both stores, and their settings.

These call idp.security.throttle inside the live IdP's app context, with a made-up clock where
the store allows it; tests/accounts/test_sign_in_throttling.py drives the same through pages.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from idp import create_app
from idp.extensions import db
from idp.models import ThrottleCounter
from idp.operations.housekeeping import purge_expired
from idp.security import throttle
from idp.settings import SettingsError, ThrottleLimits, load_settings
from tests.conftest import SERVICES_REQUIRED, free_port

pytestmark = pytest.mark.both_databases

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
EMAIL = "someone@example.com"
IP = "192.0.2.7"
T0 = 1_900_000_000.0


def redis_or_skip() -> redis.Redis:
    """A client for the test Redis, or a skip that says why (a failure when it must run)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis is not reachable at {REDIS_URL}: {exc}"
        if SERVICES_REQUIRED:
            pytest.fail(f"IDP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return client


def forget_redis_keys(client: redis.Redis, prefix: str) -> list[bytes]:
    """Delete a test's keys; returns them."""
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    return keys


class LogLines(logging.Handler):
    """Collects what a logger says."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def throttle_log() -> Iterator[LogLines]:
    """What idp.throttle logs while the test runs."""
    handler = LogLines()
    logger = logging.getLogger("idp.throttle")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(params=["database", "redis"])
def store(request, app) -> Iterator[throttle.Store]:
    """The live IdP's app context, counting in the database or (swapped in) Redis."""
    with app.app_context():
        if request.param == "database":
            yield throttle.store()
            return
        client = redis_or_skip()
        prefix = f"idp-test:{uuid.uuid4().hex}:"
        previous = app.extensions.get(throttle.EXTENSION)
        app.extensions[throttle.EXTENSION] = throttle.RedisStore(client, prefix)
        try:
            yield app.extensions[throttle.EXTENSION]
        finally:
            app.extensions[throttle.EXTENSION] = previous
            forget_redis_keys(client, prefix)


def sqlite_app(tmp_path, **settings):
    """A separate IdP app on its own SQLite database, migrated."""
    from flask_migrate import upgrade

    app = create_app(
        load_settings(
            config_file=os.devnull,
            instance_path=str(tmp_path),
            departments_file="",
            log_level="WARNING",
            **settings,
        )
    )
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    return app


def limits(**changes) -> ThrottleLimits:
    """The default password limits with some changed."""
    return ThrottleLimits(
        **{**load_settings(config_file=os.devnull).throttle_limits("password").__dict__, **changes}
    )


# -- Settings ---------------------------------------------------------------------------------


def test_the_defaults_follow_nist_and_one_login():
    password = load_settings(config_file=os.devnull).throttle_limits("password")
    assert (password.max_failures, password.lockout_seconds) == (6, 900)
    assert [throttle.delay(password, n) for n in range(7)] == [0, 0, 0, 1, 2, 4, 8]
    assert throttle.delay(limits(max_failures=100), 99) == 60, "capped below the lockout"
    assert (password.ip_max_failures, password.ip_window_seconds) == (100, 900)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"throttle_max_failures": 101}, "at most 100 consecutive failures"),
        ({"throttle_max_failures": 0}, "max_failures must be 1 to 100"),
        ({"throttle_lockout_seconds": 0}, "lockout_seconds must be at least 1"),
        ({"throttle_max_delay_seconds": 900}, "below the lockout"),
        ({"throttle_failure_memory_seconds": 60}, "at least the lockout"),
        ({"throttle_ip_max_failures": 0}, "ip_max_failures"),
        ({"throttle_overrides": {"pin": {"max_failures": 3}}}, "unknown kinds"),
        ({"throttle_overrides": {"reset": {"max_failures": 500}}}, "'reset'"),
        ({"throttle_overrides": {"reset": {"lockout": 5}}}, "unknown 'lockout'"),
    ],
)
def test_unusable_limits_are_refused_at_start(changes, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(config_file=os.devnull, **changes)


def test_each_kind_can_have_its_own_limits(tmp_path):
    config = tmp_path / "idp.toml"
    config.write_text(
        "[idp]\nthrottle_lockout_seconds = 1800\n"
        "[idp.throttle_overrides.second_factor]\nmax_failures = 5\n"
    )
    settings = load_settings(config_file=config)
    assert settings.throttle_limits("second_factor").max_failures == 5
    assert settings.throttle_limits("second_factor").lockout_seconds == 1800
    assert settings.throttle_limits("password").max_failures == 6
    with pytest.raises(SettingsError, match="unknown throttling kind"):
        settings.throttle_limits("pin")


def test_waits_are_said_in_whole_units():
    assert throttle.wait_units(1) == (1, "seconds")
    assert throttle.wait_units(59) == (59, "seconds")
    assert throttle.wait_units(60) == (1, "minutes")
    assert throttle.wait_units(899) == (15, "minutes")
    assert throttle.wait_units(7200) == (2, "hours")


# -- Both stores ------------------------------------------------------------------------------


def test_growing_delays_then_a_lock_then_a_fresh_start(store):
    key = throttle.email_key(EMAIL)
    assert throttle.record_failure("password", key, IP, now=T0).allowed
    assert throttle.record_failure("password", key, IP, now=T0).allowed
    third = throttle.record_failure("password", key, IP, now=T0)
    assert (third.allowed, third.reason, third.retry_after) == (False, "delay", 1)
    assert throttle.check("password", key, IP, now=T0 + 0.5).retry_after == 1
    assert throttle.check("password", key, IP, now=T0 + 1).allowed
    assert throttle.record_failure("password", key, IP, now=T0 + 1).retry_after == 2
    assert not throttle.check("password", key, IP, now=T0 + 2.9).allowed
    assert throttle.record_failure("password", key, IP, now=T0 + 3).retry_after == 4
    locked = throttle.record_failure("password", key, IP, now=T0 + 7)
    assert (locked.allowed, locked.locked, locked.newly_locked) == (False, True, True)
    assert locked.retry_after == 900
    assert throttle.check("password", key, IP, now=T0 + 8).locked
    # Another kind of secret and another realm have counters of their own.
    assert throttle.check("second_factor", key, IP, now=T0 + 8).allowed
    assert throttle.check("password", throttle.email_key(EMAIL, "staff"), IP, now=T0 + 8).allowed


def test_the_same_address_however_it_is_typed_is_one_account(store):
    for typed in ("Someone@Example.COM", " someone@example.com ", "SOMEONE@example.com"):
        throttle.record_failure("password", throttle.email_key(typed), IP, now=T0)
    assert throttle.check("password", throttle.email_key(EMAIL), IP, now=T0).reason == "delay"


def test_a_lock_ends_after_the_lockout_and_counting_starts_again(store, clock):
    brief = limits(lockout_seconds=1, max_delay_seconds=0, delay_seconds=0, max_failures=2)
    digest = throttle.digest(throttle.email_key(EMAIL))
    now = clock.time()
    store.fail_account("password", digest, brief, now)
    count, newly_locked = store.fail_account("password", digest, brief, now)
    assert newly_locked and count.locked_until > now
    if store.name == "redis":
        time.sleep(1.05)  # Redis expires the lock on its own clock: real time must pass
    else:
        clock.advance(1.05)
    later = clock.time()
    assert store.account("password", digest, later) == throttle.AccountCount()
    count, newly_locked = store.fail_account("password", digest, brief, later)
    assert (count.failures, count.locked_until, newly_locked) == (1, None, False)


def test_a_success_clears_the_account_count(store):
    key = throttle.email_key(EMAIL)
    for _ in range(5):
        throttle.record_failure("password", key, IP, now=T0)
    throttle.record_success("password", key)
    assert throttle.check("password", key, IP, now=T0).allowed
    assert throttle.record_failure("password", key, IP, now=T0).allowed


def test_one_ip_address_is_limited_whichever_accounts_it_tries(store):
    for n in range(100):
        throttle.record_failure("password", f"person{n}@example.com", IP, now=T0)
    refused = throttle.check("password", "anyone@example.com", IP, now=T0 + 1)
    assert (refused.allowed, refused.locked, refused.reason) == (False, False, "ip")
    assert 890 <= refused.retry_after <= 900
    assert throttle.check("password", "anyone@example.com", "192.0.2.8", now=T0 + 1).allowed


def test_concurrent_failures_are_each_counted_and_lock_once(store, app):
    key = throttle.email_key(EMAIL)
    decisions: list[throttle.Decision] = []

    def fail() -> None:
        with app.app_context():
            decisions.append(throttle.record_failure("password", key, IP))

    threads = [threading.Thread(target=fail) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(decisions) == 10
    assert sum(d.newly_locked for d in decisions) == 1, "the owner is told once"
    assert throttle.check("password", key, IP).locked
    window = throttle.store().window("password", throttle.digest(IP), time.time())
    assert window.failures == 10, "no failure lost to a race"


def test_neither_store_keeps_an_email_address_or_ip_address(store):
    key = throttle.email_key(EMAIL)
    throttle.record_failure("password", key, IP, now=T0)
    assert throttle.digest(key) == hashlib.sha256(EMAIL.encode()).hexdigest()
    if isinstance(store, throttle.RedisStore):
        keys = list(store.client.scan_iter(match=store.prefix + "*"))
        assert len(keys) == 3
        stored = repr(keys) + repr([store.client.dump(k) for k in keys])
    else:
        rows = db.session.scalars(db.select(ThrottleCounter)).all()
        assert {(r.scope, r.key_hash) for r in rows} == {
            ("account", throttle.digest(key)),
            ("total", throttle.digest(key)),
            ("ip", throttle.digest(IP)),
        }
        stored = repr([vars(r) for r in rows])
    assert EMAIL not in stored and "someone" not in stored and IP not in stored


def test_untrusted_failures_never_lock_a_trusted_device(store):
    key = throttle.email_key(EMAIL)
    for _ in range(6):
        throttle.record_failure("password", key, IP, now=T0)
    assert throttle.check("password", key, IP, now=T0 + 1).locked
    assert throttle.check("password", key, IP, device="nonce", now=T0 + 1).allowed
    # The device's own failures lock it alone; then it is an untrusted client like any other.
    for _ in range(6):
        mine = throttle.record_failure("password", key, "192.0.2.9", device="mine", now=T0 + 1)
    assert (
        mine.locked and not throttle.check("password", key, IP, device="mine", now=T0 + 2).allowed
    )
    assert throttle.check("password", key, IP, device="nonce", now=T0 + 2).allowed


def test_failures_across_lockouts_are_capped_until_a_reset(store):
    key = throttle.email_key(EMAIL)
    now = T0
    for n in range(100):
        decision = throttle.record_failure("password", key, f"192.0.2.{n % 200}", now=now)
        if decision.locked and not decision.capped:
            now += 901  # the lockout ends; the total goes on
    assert (decision.capped, decision.newly_locked, decision.reason) == (True, True, "capped")
    a_month_later = now + 40 * 86400
    assert throttle.check("password", key, IP, now=a_month_later).capped
    assert throttle.check("password", key, IP, device="nonce", now=a_month_later).allowed
    throttle.reopen(key)
    assert throttle.check("password", key, IP, now=a_month_later).allowed


def test_the_owner_is_told_of_a_lock_at_most_once_a_day(store):
    key = throttle.email_key(EMAIL)
    assert throttle.claim_lockout_email("password", key, now=T0)
    assert not throttle.claim_lockout_email("password", key, now=T0 + 3600)
    assert throttle.claim_lockout_email("password", throttle.email_key("other@example.com"))
    if isinstance(store, throttle.DatabaseStore):  # Redis expires the claim on its own clock
        assert throttle.claim_lockout_email("password", key, now=T0 + 86401)


def test_endpoint_failures_count_per_ip_address_and_per_client(store, app, monkeypatch):
    # The default limits (the test IdP has them raised for the other tests).
    defaults = load_settings(config_file=os.devnull)
    lowered = app.config["IDP_SETTINGS"].replace(
        endpoint_ip_max_failures=defaults.endpoint_ip_max_failures,
        endpoint_client_max_failures=defaults.endpoint_client_max_failures,
    )
    monkeypatch.setitem(app.config, "IDP_SETTINGS", lowered)
    assert (defaults.endpoint_ip_max_failures, defaults.endpoint_client_max_failures) == (60, 30)
    for _ in range(60):
        reached = throttle.record_endpoint_failure(IP, now=T0)
    assert reached == "ip"
    refused = throttle.check_endpoint(IP, now=T0 + 1)
    assert (refused.allowed, refused.reason) == (False, "ip")
    assert 59 <= refused.retry_after <= 60
    if isinstance(store, throttle.DatabaseStore):  # Redis ends the window on its own clock
        assert throttle.check_endpoint(IP, now=T0 + 60).allowed
    for _ in range(30):
        throttle.record_endpoint_failure("192.0.2.10", "dept-a", now=T0)
    assert throttle.check_endpoint("192.0.2.11", "dept-a", now=T0).reason == "client"
    assert throttle.check_endpoint("192.0.2.11", "dept-b", now=T0).allowed


# -- Choosing the store -----------------------------------------------------------------------


def test_without_redis_the_database_counts(tmp_path):
    app = sqlite_app(tmp_path, redis_url="")
    with app.app_context():
        assert isinstance(throttle.store(), throttle.DatabaseStore)
        assert throttle.store() is throttle.store(), "chosen once per app"


def test_with_redis_configured_redis_counts(tmp_path):
    redis_or_skip()
    prefix = f"idp-test:{uuid.uuid4().hex}:"
    app = sqlite_app(tmp_path, redis_url=REDIS_URL, throttle_redis_prefix=prefix)
    with app.app_context():
        assert isinstance(throttle.store(), throttle.RedisStore)
        throttle.record_failure("password", throttle.email_key(EMAIL), IP)
        assert db.session.scalar(db.select(db.func.count(ThrottleCounter.id))) == 0
        assert len(forget_redis_keys(throttle.store().client, prefix)) == 3


def test_unreachable_redis_falls_back_to_the_database_with_one_warning(tmp_path, throttle_log):
    app = sqlite_app(tmp_path, redis_url=f"redis://:secret@127.0.0.1:{free_port()}/0")
    with app.app_context():
        key = throttle.email_key(EMAIL)
        for _ in range(6):
            decision = throttle.record_failure("password", key, IP)
        assert decision.locked and throttle.check("password", key, IP).locked
        assert isinstance(throttle.store(), throttle.DatabaseStore)
        assert db.session.scalar(db.select(db.func.count(ThrottleCounter.id))) == 3
    warnings = [line for line in throttle_log.lines if "Redis" in line]
    assert len(warnings) == 1, throttle_log.lines
    assert "in the database instead" in warnings[0]
    assert "secret" not in warnings[0], "the Redis password is never logged"


def test_redis_failing_later_hands_over_to_the_database(tmp_path, throttle_log):
    app = sqlite_app(tmp_path, redis_url="")
    with app.app_context():
        dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
        app.extensions[throttle.EXTENSION] = throttle.RedisStore(dead, "idp-test:")
        key = throttle.email_key(EMAIL)
        assert throttle.record_failure("password", key, IP).allowed
        assert throttle.record_failure("password", key, IP).allowed
        assert isinstance(throttle.store(), throttle.DatabaseStore)
        assert throttle.store().account("password", throttle.digest(key), time.time()).failures == 2
    assert len([line for line in throttle_log.lines if "Redis" in line]) == 1


# -- Housekeeping -----------------------------------------------------------------------------


def test_purge_deletes_expired_counters_and_keeps_live_ones(app):
    with app.app_context():
        now = time.time()
        old = now - 2 * 86400
        throttle.record_failure("password", "forgotten@example.com", "192.0.2.1", now=old)
        for _ in range(6):
            throttle.record_failure("password", "locked@example.com", IP, now=now)
        # Each: the account, the IP address and the total across lockouts (kept 30 days).
        assert db.session.scalar(db.select(db.func.count(ThrottleCounter.id))) == 6
        assert purge_expired()["throttle_counters"] == 2
        assert throttle.check("password", "locked@example.com", IP).locked

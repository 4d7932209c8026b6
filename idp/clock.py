"""The one wall clock the IdP reads, so that tests can move time instead of sleeping.

Every "what time is it now" in idp/ goes through here: `now()` for stored times and
comparisons with them, `time()` for epoch seconds (JWT iat/exp, TOTP steps, throttles,
signed cookies). Real elapsed time is not wall-clock time and does not come from here:
timeouts of outbound calls, the background worker's sleeps and benchmark timings use
`time.monotonic()` / `time.perf_counter()` directly (moving the clock must not make a
request time out or a worker spin).

In production the offset is always 0. Tests move the clock forward with `advance(seconds)`
(the `clock` fixture in tests/conftest.py); the test IdP runs in-process, in a thread, so
one offset in this module moves the clock for the test and the server alike.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime

_lock = threading.Lock()
_offset = 0.0


def time() -> float:
    """Seconds since the epoch, as time.time(), plus any offset a test has moved the clock by."""
    return _time.time() + _offset


def now() -> datetime:
    """The current time in UTC, timezone-aware."""
    return datetime.fromtimestamp(time(), UTC)


def offset() -> float:
    """How far the clock has been moved forward (seconds); 0 outside tests."""
    return _offset


def advance(seconds: float) -> None:
    """Move the clock forward (tests only). Time never runs backwards: a negative move fails."""
    global _offset
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    with _lock:
        _offset += seconds


def reset() -> None:
    """Back to real time (tests, after each test)."""
    global _offset
    with _lock:
        _offset = 0.0

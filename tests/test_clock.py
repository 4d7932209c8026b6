"""The IdP's clock (idp.clock) and the `clock` fixture that moves it instead of sleeping."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from idp.models.timestamps import utcnow
from tests.flows.test_single_sign_on import signed_in_browser
from tests.support.browser import callback


def test_advance_moves_every_reading_of_the_clock_together(clock):
    before, before_now = clock.time(), utcnow()
    clock.advance(3600)
    assert 3600 <= clock.time() - before < 3600 + 5
    assert timedelta(hours=1) <= utcnow() - before_now < timedelta(hours=1, seconds=5)
    assert abs(clock.now().timestamp() - clock.time()) < 1
    assert clock.now().utcoffset() == timedelta(0)
    assert clock.time() - time.time() > 3599  # the real time did not move


def test_the_clock_never_runs_backwards(clock):
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
    assert clock.offset() == 0


def test_moves_from_many_threads_all_count(clock):
    threads = [threading.Thread(target=lambda: [clock.advance(1) for _ in range(100)])]
    threads += [threading.Thread(target=lambda: [clock.advance(1) for _ in range(100)])]
    threads += [threading.Thread(target=lambda: [clock.advance(1) for _ in range(100)])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.offset() == 300


def test_a_day_ahead_in_one_test(clock):
    clock.advance(86400)
    assert clock.offset() == 86400


def test_is_real_time_again_in_the_next(clock):
    # Runs after test_a_day_ahead_in_one_test: the fixture put the clock back.
    assert clock.offset() == 0
    assert abs(clock.time() - time.time()) < 1


def test_the_live_idp_sees_the_moved_clock_an_idle_session_ends(
    idp, make_citizen, make_client, clock
):
    # The test IdP serves from a thread of this process: moving the clock moves its time too.
    citizen = make_citizen()
    client = make_client()
    browser, _ = signed_in_browser(idp, client, citizen)
    idle = idp.app.config["IDP_SETTINGS"].session_idle_timeout
    clock.advance(idle - 60)
    attempt = client.authorization(prompt="none")
    assert "code" in callback(browser.follow(browser.get(attempt.url))).params
    clock.advance(idle + 1)
    attempt = client.authorization(prompt="none")
    assert callback(browser.follow(browser.get(attempt.url))).params["error"] == "login_required"

"""The restart back-off of `idp run-prod`'s launcher (idp/operations/production.py): a process
that dies after a long run is started again at once, one that keeps dying soon after it starts
waits longer each time, up to a ceiling, so a crash loop does not spin."""

from __future__ import annotations

import signal
import time

from idp.operations.production import RESTART_MAX_DELAY, SETTLED_AFTER, Restarts, exit_reason


def test_a_crash_loop_backs_off_and_a_long_run_restarts_at_once():
    restarts = Restarts()
    restarts.started_at = time.monotonic() - SETTLED_AFTER - 1  # it had run a long while
    delays = [restarts.died()]
    for _ in range(7):
        restarts.started()  # dies again at once after each start
        delays.append(restarts.died())
    assert delays == [0, 1, 2, 4, 8, 16, RESTART_MAX_DELAY, RESTART_MAX_DELAY]
    assert restarts.count == 8

    restarts.started()
    restarts.started_at -= SETTLED_AFTER  # this time it ran a long while again
    assert restarts.died() == 0


def test_the_launcher_says_how_a_process_ended():
    assert exit_reason(-signal.SIGKILL) == "killed by SIGKILL"
    assert exit_reason(0) == "exit 0"
    assert exit_reason(3) == "exit 3"

"""Background work in each IdP process: chain the audit entries recorded since its last look,
deliver back-channel logouts, end the sessions that expired while no browser was looking (so
their departments hear of it too), and sign the audit chain's head at an interval.

Everything it works on is stored, so any number of processes may run a worker: deliveries are
claimed one by one with a conditional UPDATE, sessions are ended the same way. A worker wakes
at once when its own process queues a delivery, and looks at the database every
worker_poll_interval seconds for what other processes (or a previous run) left. The audit
entries are chained by one worker at a time (idp/audit/linker.py): the others skip that step
while one holds the linker's lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from idp.accounts.sessions import end_expired_sessions
from idp.audit.checkpoints import checkpoint_if_due
from idp.audit.linker import link_pending
from idp.extensions import db
from idp.oidc import backchannel
from idp.oidc.backchannel import attempt, claim, due_deliveries, seconds_until_next_due

log = logging.getLogger("idp.worker")

# Sessions that timed out are looked for this often (seconds).
EXPIRY_SWEEP_INTERVAL = 30.0
# Deliveries in flight at once per process (a department that is down holds one for its timeout).
MAX_IN_FLIGHT = 8


class Worker:
    """One process's background thread, and a small pool that sends deliveries in parallel."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.pid = os.getpid()
        self.poll_interval = app.config["IDP_SETTINGS"].worker_poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight = threading.Semaphore(MAX_IN_FLIGHT)
        self._pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="idp-logout")
        self._last_sweep = 0.0
        # The audit chain's head is signed this often (when it moved).
        self.checkpoint_interval = app.config["IDP_SETTINGS"].audit_checkpoint_interval
        # The worker's pace is real elapsed time, not idp.clock (a moved clock must not spin it).
        self._last_checkpoint = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="idp-worker", daemon=True)

    def start(self) -> None:
        """Begin working in the background."""
        self._thread.start()

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the attempts in flight and stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        """Poll and work until stopped; a failing pass (the database is down) is retried."""
        while not self._stop.is_set():
            pause = self.poll_interval
            try:
                with self.app.app_context():
                    try:
                        pause = min(pause, self._pass())
                    finally:
                        db.session.remove()
            except Exception:  # noqa: BLE001 - the worker must outlive a database outage
                log.warning("background work failed; trying again shortly", exc_info=True)
            self._wake.wait(max(pause, 0.05))
            self._wake.clear()

    def _pass(self) -> float:
        """One look at the database: chain the waiting audit entries, sign the chain and end
        expired sessions now and then, send what is due; how long until the next retry falls
        due (so retries keep to their schedule)."""

        self._link()
        now = time.monotonic()
        if now - self._last_checkpoint >= self.checkpoint_interval:
            self._last_checkpoint = now
            checkpoint_if_due(self.checkpoint_interval)
        if now - self._last_sweep >= EXPIRY_SWEEP_INTERVAL:
            self._last_sweep = now
            ended = end_expired_sessions()
            if ended:
                log.info("ended %d expired sessions", ended)
        for delivery_id in due_deliveries():
            if self._stop.is_set() or not self._in_flight.acquire(blocking=False):
                return self.poll_interval
            try:
                lease = claim(delivery_id)
                if lease is not None:
                    self._pool.submit(self._attempt, delivery_id, lease)
            except BaseException:
                self._in_flight.release()  # never lose a slot to a failed claim
                raise
            if lease is None:
                self._in_flight.release()
        return seconds_until_next_due()

    def _link(self) -> None:
        """Chain the audit entries waiting, unless another process is; a failure here must
        not hold up the logout deliveries, and the entries wait safely for the next pass."""
        try:
            link_pending(wait=False)
        except Exception:  # noqa: BLE001 - retried at the next pass
            log.warning("audit entries could not be chained; trying again shortly", exc_info=True)

    def _attempt(self, delivery_id: int, lease) -> None:
        """Send one claimed delivery in its own app context."""

        try:
            with self.app.app_context():
                try:
                    attempt(delivery_id, lease)
                finally:
                    db.session.remove()
        except Exception:  # noqa: BLE001 - the claim lapses and the delivery is tried again
            log.warning(
                "back-channel delivery %d could not be recorded", delivery_id, exc_info=True
            )
        finally:
            self._in_flight.release()


_workers: dict[int, Worker] = {}
_workers_lock = threading.Lock()


def start_worker(app: Flask) -> Worker | None:
    """Start this process's worker for the app once (again after a fork); None if disabled."""

    if not app.config["IDP_SETTINGS"].background_worker:
        return None
    with _workers_lock:
        worker = _workers.get(id(app))
        if worker is not None and worker.pid == os.getpid():
            return worker
        worker = Worker(app)
        _workers[id(app)] = worker
    backchannel.on_queued(worker.wake)
    worker.start()
    return worker


def stop_worker(app: Flask) -> None:
    """Stop the app's worker in this process, if it runs."""
    with _workers_lock:
        worker = _workers.pop(id(app), None)
    if worker is not None and worker.pid == os.getpid():
        backchannel.off_queued(worker.wake)
        worker.stop()

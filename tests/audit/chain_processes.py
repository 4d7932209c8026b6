"""The processes tests/audit/test_linker.py kills: a recorder and a linker, each an IdP process
of its own on the test's database.

    python -m tests.audit.chain_processes record DATABASE_URL INSTANCE_PATH FIRST COUNT
    python -m tests.audit.chain_processes link DATABASE_URL INSTANCE_PATH

The recorder records COUNT events numbered from FIRST, each the way one kind of caller does
(MODES), and prints each number once its transaction has ended: a number printed is an entry
that must be in the chain, unless its mode rolls it back. The linker chains waiting entries in
small batches, printing "linked N" after each call to the linker (N may be 0), until killed.
"""

from __future__ import annotations

import os
import sys
import time

from sqlalchemy import update

from idp import audit, create_app
from idp.audit.linker import link_pending
from idp.extensions import db
from idp.models import AuditKey
from idp.settings import load_settings

# How entry n is recorded (MODES[n % 5]), and whether it must be kept.
MODES = (
    "work, success, commit",
    "failure alone",
    "work, commit, success",
    "work, failure, rollback",
    "work, success, rollback",
)
KEPT_MODES = {0, 1, 2, 3}
# The event of each kind: a rolled-back success has its own, which must never be chained.
KEPT_EVENT = "test.kept"
ROLLED_BACK_EVENT = "test.rolled_back"
# Small batches, so a kill lands in the middle of linking often.
LINK_BATCH = 7


def _app(database_url: str, instance_path: str):
    """An IdP app on the test's database, with no worker and only errors logged (on stdout,
    where the test reads numbers: it skips any other line)."""
    settings = load_settings(
        config_file=os.devnull,
        database_url=database_url,
        instance_path=instance_path,
        departments_file="",
        background_worker=False,
        log_level="ERROR",
    )
    return create_app(settings)


def _work() -> None:
    """A write of the caller's own (one that changes no row, but holds the transaction's
    write lock like any other)."""
    db.session.execute(update(AuditKey).where(AuditKey.id == -1).values(kid="none"))


def record_one(n: int) -> None:
    """Record entry n the way its mode says."""
    mode = n % len(MODES)
    if mode == 0:
        _work()
        audit.record(KEPT_EVENT, n=n)
        db.session.commit()
    elif mode == 1:
        audit.record(KEPT_EVENT, "failure", n=n)
    elif mode == 2:
        _work()
        db.session.commit()
        audit.record(KEPT_EVENT, n=n)
    elif mode == 3:
        _work()
        audit.record(KEPT_EVENT, "failure", n=n)
        db.session.rollback()
    else:
        _work()
        audit.record(ROLLED_BACK_EVENT, n=n)
        db.session.rollback()


def record(database_url: str, instance_path: str, first: int, count: int) -> None:
    """Record count entries from first on, printing each number once its transaction ended."""
    app = _app(database_url, instance_path)
    for n in range(first, first + count):
        with app.app_context():
            record_one(n)
        print(n, flush=True)


def link(database_url: str, instance_path: str) -> None:
    """Chain waiting entries, a small batch at a time, until killed."""
    app = _app(database_url, instance_path)
    while True:
        with app.app_context():
            linked = link_pending(batch=LINK_BATCH)
        print(f"linked {linked}", flush=True)
        if not linked:
            time.sleep(0.01)  # pacing an idle loop, so it leaves the CPU to the recorder


if __name__ == "__main__":
    command, url, instance, *numbers = sys.argv[1:]
    if command == "record":
        record(url, instance, int(numbers[0]), int(numbers[1]))
    else:
        link(url, instance)

"""The audit record off the request's path: each entry is written as waiting, committed exactly
when the work it records is (a failure on its own, so a rollback cannot lose it), and chained
later by one linker at a time. Verify and the auditor pages say what is not yet chained; a
process killed with SIGKILL at any moment loses no entry and never breaks the chain."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event

from idp import audit
from idp.audit.linker import link_pending
from idp.audit.verify import verify_chain
from idp.cli import cli
from idp.extensions import db
from idp.models import AuditEntry, AuditPending, Department
from idp.operations.worker import start_worker, stop_worker
from tests.audit.chain_processes import KEPT_EVENT, KEPT_MODES, MODES, ROLLED_BACK_EVENT
from tests.audit.test_auditor_pages import make_auditor
from tests.conftest import LiveIdP, serve_idp
from tests.departments import StaffBrowser
from tests.support.audit import stored_entries
from tests.support.browser import CitizenBrowser

PROJECT = Path(__file__).resolve().parents[2]

# Storage, transactions and locking: on SQLite and PostgreSQL.
pytestmark = pytest.mark.both_databases


def work() -> None:
    """The caller's own write: a department (flushed when the caller commits)."""
    db.session.add(Department(name="Department of Rolled Back Work"))


def success() -> None:
    audit.record("test.recorded", "success")


def failure() -> None:
    audit.record("test.recorded", "failure")


def commit() -> None:
    db.session.commit()


def rollback() -> None:
    db.session.rollback()


def reads() -> None:
    db.session.scalar(db.select(db.func.count(Department.id)))


# What a request does, in order; the outcomes it leaves in the chain; whether its work stays.
CALLERS = [
    ((work, success, failure, rollback), ["failure"], False),
    ((work, success, commit), ["success"], True),
    ((work, commit, success, work, rollback), ["success"], True),
    ((reads, success), ["success"], False),
    ((work, failure), ["failure"], False),
    ((work, success), [], False),
    ((work, failure, commit), ["failure"], True),
]


@pytest.mark.parametrize(
    ("steps", "kept", "work_kept"),
    CALLERS,
    ids=[", ".join(step.__name__ for step in steps) for steps, _, _ in CALLERS],
)
def test_an_entry_commits_exactly_when_its_work_does_and_a_failure_always(
    idp, steps: tuple[Callable[[], None], ...], kept: list[str], work_kept: bool
):
    """A request that ends without committing is rolled back as it ends, as Flask-SQLAlchemy
    does: its success entry goes with its work, its failure entry stays."""
    with idp.app.test_request_context("/"):
        for step in steps:
            step()
    assert [e["outcome"] for e in stored_entries(idp, event="test.recorded")] == kept
    with idp.app.app_context():
        departments = db.session.scalar(db.select(db.func.count(Department.id)))
    assert bool(departments) == work_kept


# -- Entries waiting, as a process with no linker of its own leaves them -----------------------


@pytest.fixture
def unlinked(idp) -> Iterator[LiveIdP]:
    """A second IdP process on the same database that chains nothing itself (no worker, no
    linking at the end of a request), while the first one's worker is stopped: its entries
    wait until someone links them."""
    stop_worker(idp.app)
    served = serve_idp(
        idp.app.config["IDP_SETTINGS"].database_url,
        idp.app.config["IDP_SETTINGS"].instance_path,
        background_worker=False,
        audit_link_each_request=False,
    )
    yield served
    served.close()
    start_worker(idp.app)


def waiting(app) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(AuditPending.id)))


def test_entries_wait_until_linked_and_the_pages_and_verify_say_so(unlinked, make_citizen):
    citizen = make_citizen()
    with unlinked.app.app_context():
        link_pending()  # what the test's set-up recorded
    browser = CitizenBrowser(unlinked.issuer)
    page = browser.get(unlinked.url("/sign-in"))
    browser.submit_sign_in(page, citizen["email"], "not the password at all")
    auditor = StaffBrowser(unlinked.issuer).signed_in(make_auditor(unlinked.app))

    before = waiting(unlinked.app)
    assert before >= 1
    assert not stored_entries(unlinked, event="sign_in.failed")
    listed = auditor.http.get("/staff/audit")
    assert listed.status_code == 200
    words = "entry is" if before == 1 else "entries are"
    assert f"{before} {words} not yet chained" in listed.text
    with unlinked.app.app_context():
        report = verify_chain()
    assert report.ok and report.pending == before + 1  # and the page view's own entry
    assert f"{before + 1} entries are not yet chained" in " ".join(report.notes)

    linked = unlinked.app.test_cli_runner().invoke(cli, ["audit", "link"])
    assert linked.exit_code == 0 and f"chained {before + 1} waiting entries" in linked.output
    assert waiting(unlinked.app) == 0
    (failed,) = stored_entries(unlinked, event="sign_in.failed")
    assert failed["citizen_id"] == citizen["id"] and failed["reason"] == "wrong_password"
    listed = auditor.http.get("/staff/audit")
    assert "not yet chained" not in listed.text
    verified = unlinked.app.test_cli_runner().invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "not yet chained" not in verified.output


def test_verify_chains_the_waiting_entries_first_unless_told_only_to_read(unlinked):
    with unlinked.app.app_context():
        link_pending()
        for n in range(3):
            audit.record("test.waiting", n=n)
    runner = unlinked.app.test_cli_runner()
    read_only = runner.invoke(cli, ["audit", "verify", "--no-link"])
    assert read_only.exit_code == 0, read_only.output
    assert "note: 3 entries are not yet chained" in read_only.output
    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0 and "not yet chained" not in verified.output
    assert [e["n"] for e in stored_entries(unlinked, event="test.waiting")] == [0, 1, 2]


def test_a_batch_moves_the_head_once_and_lines_come_in_chain_order(unlinked):
    with unlinked.app.app_context():
        link_pending()
        for n in range(12):
            audit.record("test.batched", n=n)
    statements = []

    def watch(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("UPDATE AUDIT_HEAD"):
            statements.append(statement)

    with unlinked.app.app_context():
        event.listen(db.engine, "before_cursor_execute", watch)
        try:
            assert link_pending(batch=5) == 12
        finally:
            event.remove(db.engine, "before_cursor_execute", watch)
    assert len(statements) == 3  # batches of 5, 5 and 2
    rows = stored_entries(unlinked, event="test.batched")
    assert [r["n"] for r in rows] == list(range(12))
    assert [r["seq"] for r in rows] == list(range(rows[0]["seq"], rows[0]["seq"] + 12))


# -- SIGKILL at any moment ----------------------------------------------------------------------


def _process(*args: str) -> subprocess.Popen:
    """A process of tests/audit/chain_processes.py."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.audit.chain_processes", *args],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _kill(process: subprocess.Popen) -> str:
    """SIGKILL, then what it printed that was not read yet (read through the same buffered
    stream as its earlier lines, so none is skipped)."""
    process.send_signal(signal.SIGKILL)
    rest = process.stdout.read()
    process.wait(timeout=30)
    return rest


def _numbers(text: str) -> set[int]:
    """The entry numbers a recorder printed (any logged error line is skipped)."""
    return {int(line) for line in text.split() if line.isdigit()}


@pytest.mark.processes
def test_killing_the_linker_and_the_recorder_at_any_moment_loses_nothing(idp):
    """A recorder writes entries the ways callers do while a linker chains them; the linker is
    killed with SIGKILL in the middle of its batches again and again, and the recorder too.
    Afterwards every entry whose transaction ended is chained exactly once, no rolled-back
    one is, and the chain verifies."""
    settings = idp.app.config["IDP_SETTINGS"]
    where = (settings.database_url, settings.instance_path)
    stop_worker(idp.app)  # only the processes under test chain anything
    rng = random.Random(1717)
    printed: set[int] = set()
    in_flight: set[int] = set()
    first, per_recorder = 0, 1500
    recorder = _process("record", *where, str(first), str(per_recorder))
    try:
        for round_ in range(10):
            linker = _process("link", *where)
            for _ in range(rng.randint(1, 6)):  # a few calls in, then in the middle of one
                if not linker.stdout.readline():
                    break
            if rng.random() < 0.5:
                for _ in range(rng.randint(0, 30)):  # a moment later, at another point
                    line = recorder.stdout.readline()
                    if not line:
                        break
                    printed.update(_numbers(line))
            assert linker.poll() is None, linker.stdout.read()[-2000:]
            _kill(linker)
            if round_ in (3, 7) and recorder.poll() is None:
                rest = _kill(recorder)
                printed.update(_numbers(rest))
                # The entry being recorded when it was killed may or may not have committed.
                done = max((n for n in printed if n >= first), default=first - 1)
                in_flight.add(done + 1)
                first = done + 2
                recorder = _process("record", *where, str(first), str(per_recorder))
        rest = recorder.stdout.read()
        assert recorder.wait(timeout=300) == 0, rest[-2000:]
        printed.update(_numbers(rest))
    finally:
        if recorder.poll() is None:
            _kill(recorder)
        start_worker(idp.app)

    with idp.app.app_context():
        link_pending()
        report = verify_chain()
        assert report.ok, report.problem
        assert report.pending == 0
        rows = db.session.execute(db.select(AuditEntry.event, AuditEntry.details)).all()
    assert not [row for row in rows if row.event == ROLLED_BACK_EVENT]
    numbers = [row.details["n"] for row in rows if row.event == KEPT_EVENT]
    assert len(numbers) == len(set(numbers)), "an entry was chained twice"
    must_keep = {n for n in printed if n % len(MODES) in KEPT_MODES}
    assert must_keep <= set(numbers), f"lost: {sorted(must_keep - set(numbers))[:10]}"
    assert set(numbers) - must_keep <= in_flight
    assert len(must_keep) > 500

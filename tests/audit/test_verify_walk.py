"""`idp audit verify` at scale (issue 17): entries are hashed by fast forms of the chain's hashes
that must give the writer's bytes exactly, and a long chain is walked in segments by worker
processes that must name the same first problem as one walk from the start."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import pytest

from idp.audit import parallel
from idp.audit.chain import (
    CONTENT_FIELDS,
    content_hash,
    entry_hash,
    in_key_order,
    personal_digest,
    stored_entry_hash,
    stored_personal_digest,
)
from idp.audit.verify import verify_chain
from idp.extensions import db
from idp.models import AuditEntry
from tests.audit.test_chain import run, sql, write

MOMENT = datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC)
ENTRY = {
    "seq": 12,
    "time": MOMENT,
    "event": "sign_in.succeeded",
    "outcome": "success",
    "reason": None,
    "client_id": "dept-a",
    "session_ref": "a" * 64,
    "request_id": "b" * 32,
    "level": "Cl.Cm",
    "methods": "pwd otp",
    "instance": "host:1",
    "details": {"scope": "openid email"},
    "software_version": "1.2.3+abc",
}
PERSONAL = {"salt": "c" * 32, "citizen_id": 7, "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"}

# What a stored entry may hold: escapes, text beyond ASCII, nested details in any key order,
# numbers JSON writes in more than one way, fields left empty.
ENTRIES = {
    "ordinary": {},
    "empty fields": dict(reason=None, client_id=None, level=None, methods=None),
    "no software version (written before it was recorded)": dict(software_version=None),
    "escapes": dict(reason='a "quote", a \\ and a\nnew line\t\x00\x1f', event="\u2028"),
    "beyond ASCII": dict(reason="été 漢字 😀", instance="ü" * 40),
    "nested details": dict(details={"z": [3, {"y": None, "b": True}], "a": {"d": 1, "c": 2}}),
    "numbers": dict(details={"f": 1e16, "g": 0.1, "h": -0.0, "i": 2**70, "j": float("nan")}),
    "empty details": dict(details={}),
    "details not an object": dict(details=["b", "a"]),
    "time as text (an export's)": dict(time="2026-03-04T05:06:07.000089Z"),
}


@pytest.mark.parametrize("changes", ENTRIES.values(), ids=ENTRIES.keys())
def test_the_fast_entry_hash_is_the_writers(changes):
    fields = {**ENTRY, **changes}
    digest = personal_digest(**PERSONAL)
    values = [fields[name] for name in CONTENT_FIELDS]
    values[CONTENT_FIELDS.index("details")] = in_key_order(fields["details"])

    fast = stored_entry_hash("d" * 64, *values, digest)

    assert fast == entry_hash("d" * 64, content_hash(fields, digest))


PEOPLE = {
    "ordinary": {},
    "erased": dict(citizen_id=None, ip=None, user_agent=None),
    "a user agent with escapes and emoji": dict(user_agent='x"\\\n😀\u2028é'),
    "an IPv6 address": dict(ip="2001:db8::1"),
}


@pytest.mark.parametrize("changes", PEOPLE.values(), ids=PEOPLE.keys())
def test_the_fast_personal_digest_is_the_writers(changes):
    person = {**PERSONAL, **changes}

    assert stored_personal_digest(**person) == personal_digest(**person)


def test_an_entry_the_fast_form_cannot_hash_is_checked_by_the_writers_form(idp):
    """Before the year 1000 the fast form writes the time differently: the walk must compute
    the hash again the writer's way, not call the entry edited."""
    write(idp, 3)
    long_ago = datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    with idp.app.app_context():
        last = db.session.get(AuditEntry, 3)
        last.time = long_ago
        fields = {name: getattr(last, name) for name in CONTENT_FIELDS}
        last.entry_hash = entry_hash(last.prev_hash, content_hash(fields, last.personal_digest))
        db.session.execute(db.text("UPDATE audit_head SET head_hash = :h"), {"h": last.entry_hash})
        db.session.commit()

    result = run(idp, "audit", "verify")

    assert result.exit_code == 0, result.output
    assert "entries 1 to 3" in result.output


# -- In segments, on worker processes --------------------------------------------------------


def rewrite_from(idp, seq: int) -> None:
    """Edit entry seq and recompute every hash after it (only a checkpoint can tell)."""
    with idp.app.app_context():
        rows = db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.seq >= seq).order_by(AuditEntry.seq)
        ).all()
        prev = db.session.get(AuditEntry, seq - 1).entry_hash
        for row in rows:
            if row.seq == seq:
                row.reason = "nothing happened"
            fields = {name: getattr(row, name) for name in CONTENT_FIELDS}
            row.prev_hash = prev
            row.entry_hash = entry_hash(prev, content_hash(fields, row.personal_digest))
            prev = row.entry_hash
        db.session.commit()


def swap(idp, one: int, other: int) -> None:
    sql(idp, "UPDATE audit_entry SET seq = 100 WHERE seq = :s", s=one)
    sql(idp, "UPDATE audit_entry SET seq = :s WHERE seq = :o", s=one, o=other)
    sql(idp, "UPDATE audit_entry SET seq = :o WHERE seq = 100", o=other)


STRIP = (
    "UPDATE audit_entry SET citizen_id = NULL, ip = NULL, user_agent = NULL, "
    "personal_salt = NULL, erased_at = CURRENT_TIMESTAMP WHERE seq = 6"
)

# Segments of two entries: 1-2, 3-4, 5-6, 7 on. (what is done, what verify must say)
TAMPERING = {
    "nothing": (lambda idp: None, None),
    "first entry of a segment edited": (
        lambda idp: sql(idp, "UPDATE audit_entry SET event = 'x' WHERE seq = 3"),
        "entry 3 was edited: its content",
    ),
    "entry inside a segment edited": (
        lambda idp: sql(idp, "UPDATE audit_entry SET outcome = 'x' WHERE seq = 4"),
        "entry 4 was edited: its content",
    ),
    "personal field edited": (
        lambda idp: sql(idp, "UPDATE audit_entry SET ip = '198.51.100.1' WHERE seq = 5"),
        "entry 5 was edited: its citizen, IP or user agent changed",
    ),
    "first entry of a segment deleted": (
        lambda idp: sql(idp, "DELETE FROM audit_entry WHERE seq = 3"),
        "entry 3 deleted: the chain jumps from 2 to 4",
    ),
    "last entry of a segment deleted": (
        lambda idp: sql(idp, "DELETE FROM audit_entry WHERE seq = 4"),
        "entry 4 deleted: the chain jumps from 3 to 5",
    ),
    "a whole segment deleted": (
        lambda idp: sql(idp, "DELETE FROM audit_entry WHERE seq IN (3, 4)"),
        "entries 3 to 4 deleted: the chain jumps from 2 to 5",
    ),
    "reordered across segments": (
        lambda idp: swap(idp, 2, 3),
        "entry 2 does not follow entry 1",
    ),
    "reordered at the start of a segment": (
        lambda idp: swap(idp, 5, 6),
        "entry 5 does not follow entry 4",
    ),
    "personal fields stripped without an erasure": (
        lambda idp: sql(idp, STRIP),
        "entry 6 lost its personal fields without a recorded erasure",
    ),
    "tail rewritten with fresh hashes": (
        lambda idp: rewrite_from(idp, 4),
        "an entry from 1 to 6 differs from what checkpoint",
    ),
    "cut short": (
        lambda idp: (
            sql(idp, "DELETE FROM audit_entry WHERE seq > 5"),
            sql(idp, "UPDATE audit_head SET seq = 5"),
        ),
        "the chain was cut short: it ends at entry 5 but checkpoint of entry 6",
    ),
}


class CountingPool(ProcessPoolExecutor):
    """The worker pool, counting the segments handed to it."""

    submitted = 0

    def submit(self, *args, **kwargs):
        CountingPool.submitted += 1
        return super().submit(*args, **kwargs)


@pytest.fixture
def in_segments(monkeypatch):
    """Walk any chain in segments of two entries on two worker processes."""
    monkeypatch.setattr(parallel, "PARALLEL_FROM", 1)
    monkeypatch.setattr(parallel, "SEGMENT", 2)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    monkeypatch.setattr(parallel, "ProcessPoolExecutor", CountingPool)
    CountingPool.submitted = 0
    return CountingPool


@pytest.mark.processes  # the walk's worker processes
@pytest.mark.parametrize(("tamper", "message"), TAMPERING.values(), ids=TAMPERING.keys())
def test_walking_in_segments_names_the_problem_one_walk_names(
    idp, in_segments, monkeypatch, tamper, message
):
    write(idp, 6, citizen_id=7)
    assert run(idp, "audit", "checkpoint").exit_code == 0
    write(idp, 1)
    tamper(idp)
    with idp.app.app_context():
        split = verify_chain()
        segments = in_segments.submitted
        monkeypatch.setattr(parallel, "PARALLEL_FROM", 10**9)  # one walk, in this process
        whole = verify_chain()

    assert segments >= 3, "the chain was walked in segments by the workers"
    assert in_segments.submitted == segments, "and then in one walk"
    assert (split.problem, split.bad_seq) == (whole.problem, whole.bad_seq)
    if message is None:
        assert split.ok and (split.first_seq, split.last_seq) == (1, 7)
    else:
        assert message in split.problem


@pytest.mark.processes  # the walk's worker processes
def test_an_erasure_verifies_in_segments(idp, in_segments):
    write(idp, 3, citizen_id=41)
    write(idp, 3, citizen_id=42)
    assert run(idp, "audit", "erase-citizen", "41", "--reason", "DPA request 78").exit_code == 0

    result = run(idp, "audit", "verify")

    assert result.exit_code == 0, result.output
    assert "entries 1 to 7" in result.output
    assert in_segments.submitted >= 3

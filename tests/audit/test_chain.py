"""The audit record is tamper-evident: a hash chain with signed checkpoints, checked by
`idp audit verify`, which names the first entry edited, inserted, deleted or reordered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from idp import audit
from idp.audit.chain import content_hash, entry_hash, fields_of, personal_digest
from idp.cli import cli
from idp.extensions import db
from idp.models import AuditCheckpoint, AuditEntry
from idp.models.timestamps import utcnow

pytestmark = pytest.mark.both_databases


def write(idp, count: int, **fields) -> None:
    """Record count events as the IdP would."""
    with idp.app.app_context():
        for number in range(count):
            audit.record("test.event", citizen_id=fields.get("citizen_id", number), n=number)


def run(idp, *args):
    """`idp ARGS` against the live IdP's database."""
    return idp.app.test_cli_runner().invoke(cli, list(args))


def verify(idp):
    """`idp audit verify`: (exit code, output)."""
    result = run(idp, "audit", "verify")
    return result.exit_code, result.output


def sql(idp, statement: str, **params) -> None:
    """Change the table behind the IdP's back, as an attacker with database access would."""
    with idp.app.app_context():
        db.session.execute(db.text(statement), params)
        db.session.commit()


def entry(idp, seq: int) -> AuditEntry:
    with idp.app.app_context():
        row = db.session.get(AuditEntry, seq)
        db.session.expunge(row)
        return row


def test_an_untouched_chain_verifies(idp):
    write(idp, 5)
    assert run(idp, "audit", "checkpoint").exit_code == 0
    code, output = verify(idp)
    assert code == 0, output
    assert "entries 1 to 5" in output
    assert "1 signed checkpoint" in output


def test_entries_link_each_to_the_one_before(idp):
    write(idp, 3)
    first, second = entry(idp, 1), entry(idp, 2)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.entry_hash
    assert second.instance and second.time.tzinfo is not None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("UPDATE audit_entry SET event = 'sign_in' WHERE seq = 3", "entry 3 was edited"),
        ("UPDATE audit_entry SET outcome = 'failure' WHERE seq = 3", "entry 3 was edited"),
        ("UPDATE audit_entry SET ip = '203.0.113.9' WHERE seq = 3", "entry 3 was edited"),
        ("UPDATE audit_entry SET citizen_id = 999 WHERE seq = 3", "entry 3 was edited"),
        ("DELETE FROM audit_entry WHERE seq = 3", "entry 3 deleted"),
        ("DELETE FROM audit_entry WHERE seq IN (3, 4)", "entries 3 to 4 deleted"),
    ],
)
def test_each_kind_of_editing_is_found_and_located(idp, change, message):
    write(idp, 6)
    sql(idp, change)
    code, output = verify(idp)
    assert code != 0
    assert message in output


def test_reordering_is_found(idp):
    write(idp, 5)
    sql(idp, "UPDATE audit_entry SET seq = 100 WHERE seq = 2")
    sql(idp, "UPDATE audit_entry SET seq = 2 WHERE seq = 3")
    sql(idp, "UPDATE audit_entry SET seq = 3 WHERE seq = 100")
    code, output = verify(idp)
    assert code != 0
    assert "entry 2 does not follow entry 1" in output


def test_an_inserted_entry_with_a_valid_hash_of_its_own_is_found(idp):
    write(idp, 5)
    # Make room after entry 2 and forge an entry there that links to entry 2 correctly.
    for seq in (5, 4, 3):
        sql(idp, "UPDATE audit_entry SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    two = entry(idp, 2)
    salt = "5" * 32
    digest = personal_digest(salt, None, None, None)
    forged = {"seq": 3, "time": utcnow(), "event": "sign_in", "outcome": "success"}
    forged.update(instance="forger", details={})
    with idp.app.app_context():
        link = entry_hash(two.entry_hash, content_hash(forged, digest))
        db.session.add(
            AuditEntry(
                **forged,
                personal_salt=salt,
                personal_digest=digest,
                prev_hash=two.entry_hash,
                entry_hash=link,
            )
        )
        db.session.commit()
    code, output = verify(idp)
    assert code != 0
    assert "entry 4 does not follow entry 3" in output


def test_cutting_the_chain_short_is_found_by_the_signed_checkpoint(idp):
    write(idp, 6)
    run(idp, "audit", "checkpoint")
    sql(idp, "DELETE FROM audit_entry WHERE seq > 4")
    sql(idp, "UPDATE audit_head SET seq = 4")
    code, output = verify(idp)
    assert code != 0
    assert "cut short" in output and "entry 6" in output


def test_rewriting_the_whole_tail_with_fresh_hashes_is_found_by_the_checkpoint(idp):
    write(idp, 6)
    run(idp, "audit", "checkpoint")
    # The attacker edits entry 4 and recomputes every hash from there on.
    with idp.app.app_context():
        rows = db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.seq >= 4).order_by(AuditEntry.seq)
        ).all()
        prev = db.session.get(AuditEntry, 3).entry_hash
        for row in rows:
            if row.seq == 4:
                row.reason = "nothing happened"
            fields = fields_of(row)
            row.prev_hash = prev
            row.entry_hash = entry_hash(prev, content_hash(fields, row.personal_digest))
            prev = row.entry_hash
        db.session.commit()
    code, output = verify(idp)
    assert code != 0
    assert "differs from what checkpoint" in output


def test_an_altered_checkpoint_is_found(idp):
    write(idp, 3)
    run(idp, "audit", "checkpoint")
    sql(idp, "UPDATE audit_checkpoint SET seq = 2")
    code, output = verify(idp)
    assert code != 0
    assert "altered after it was signed" in output


def test_erasing_a_citizen_keeps_the_chain_verifiable(idp):
    write(idp, 2, citizen_id=41)
    write(idp, 2, citizen_id=42)
    run(idp, "audit", "checkpoint")
    result = run(idp, "audit", "erase-citizen", "41", "--reason", "DPA request 77")
    assert result.exit_code == 0, result.output
    assert "erased the personal fields of 2 entries" in result.output
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).where(AuditEntry.citizen_id == 41)) == 0
        assert db.session.scalar(db.select(db.func.count()).where(AuditEntry.citizen_id == 42)) == 2
        erasure = db.session.scalars(db.select(AuditEntry).filter_by(event="audit.erased")).one()
        assert erasure.citizen_id is None and "41" not in json.dumps(erasure.details)
    code, output = verify(idp)
    assert code == 0, output
    no_reason = run(idp, "audit", "erase-citizen", "42", "--reason", "")
    assert no_reason.exit_code != 0 and "say why" in no_reason.output


def test_pruning_keeps_the_rest_verifiable_and_refuses_a_broken_chain(idp, monkeypatch):
    long_ago = utcnow() - timedelta(days=500)
    with monkeypatch.context() as then:
        then.setattr(audit, "utcnow", lambda: long_ago)  # entries written 500 days ago
        write(idp, 2)
    write(idp, 2)
    result = run(idp, "audit", "prune", "--days", "400")
    assert result.exit_code == 0, result.output
    assert "pruned 2 entries; the chain now starts at 3" in result.output
    code, output = verify(idp)
    assert code == 0, output
    assert "entries 3 to" in output
    with idp.app.app_context():
        assert db.session.scalar(db.select(AuditCheckpoint).filter_by(kind="anchor")).seq == 3
    assert "nothing to prune" in run(idp, "audit", "prune", "--days", "400").output
    # With an entry edited, pruning refuses (it would destroy the evidence).
    with monkeypatch.context() as then:
        then.setattr(audit, "utcnow", lambda: long_ago)
        write(idp, 1)
    sql(idp, "UPDATE audit_entry SET reason = 'x' WHERE seq = 4")
    refused = run(idp, "audit", "prune", "--days", "400")
    assert refused.exit_code != 0
    assert "entry 4 was edited" in refused.output and "prune refused" in refused.output


@pytest.mark.processes
def test_several_processes_writing_at_once_leave_one_valid_chain(idp, database_url, tmp_path):
    script = (
        "import sys\n"
        "from idp import create_app, audit\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    for n in range(40):\n"
        "        audit.record('test.concurrent', writer=sys.argv[1], n=n)\n"
    )
    env = {
        **os.environ,
        "IDP_DATABASE_URL": database_url,
        "IDP_INSTANCE_PATH": str(tmp_path),
        "IDP_DEPARTMENTS_FILE": "",
        "IDP_LOG_LEVEL": "WARNING",
    }
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(w)], env=env, stderr=subprocess.PIPE)
        for w in range(4)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()[-2000:]
    with idp.app.app_context():
        seqs = db.session.scalars(db.select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
    assert seqs == list(range(1, 161))
    code, output = verify(idp)
    assert code == 0, output


@pytest.mark.processes
def test_audit_lines_on_standard_output_are_one_json_object_each(database_url, tmp_path):
    """Standard output, as a log shipper reads it: every line is JSON, and text a user
    controls (here a user agent with a newline and a fake event) cannot forge a line."""
    script = (
        "from idp import create_app, audit\n"
        "app = create_app()\n"
        'agent = \'evil\\n{"event": "forged"}\'\n'
        "with app.test_request_context('/', environ_base={'HTTP_USER_AGENT': agent}):\n"
        "    audit.record('test.forge', 'failure', reason='line one\\nline two')\n"
    )
    env = {
        **os.environ,
        "IDP_DATABASE_URL": database_url,
        "IDP_INSTANCE_PATH": str(tmp_path),
        "IDP_DEPARTMENTS_FILE": "",
        "IDP_LOG_LEVEL": "INFO",
        # The line is written when the entry is chained: here as the request ends.
        "IDP_AUDIT_LINK_EACH_REQUEST": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    events = [line for line in lines if line.get("event") == "test.forge"]
    assert len(events) == 1
    assert events[0]["user_agent"] == 'evil\n{"event": "forged"}'
    assert events[0]["reason"] == "line one\nline two"
    assert not [line for line in lines if line.get("event") == "forged"]
    # Once stored, the line carries the entry's place and hash, for comparison off-host.
    assert events[0]["seq"] >= 1 and len(events[0]["entry_hash"]) == 64


def test_stripping_personal_fields_without_an_erasure_is_found(idp):
    write(idp, 4, citizen_id=7)
    sql(
        idp,
        "UPDATE audit_entry SET citizen_id = NULL, ip = NULL, user_agent = NULL, "
        "personal_salt = NULL, erased_at = :now WHERE seq = 2",
        now=utcnow(),
    )
    code, output = verify(idp)
    assert code != 0
    assert "entry 2 lost its personal fields without a recorded erasure" in output


def test_a_replaced_audit_key_is_found_with_the_published_key(idp, tmp_path):
    write(idp, 3)
    published = tmp_path / "audit-key.json"
    assert run(idp, "audit", "public-key", "-o", str(published)).exit_code == 0
    run(idp, "audit", "checkpoint")
    assert run(idp, "audit", "verify", "--key", str(published)).exit_code == 0
    # Someone with database access edits entry 2, recomputes the chain, swaps the key, re-signs.
    sql(idp, "DELETE FROM audit_checkpoint")
    sql(idp, "DELETE FROM audit_key")
    sql(idp, "UPDATE audit_entry SET reason = 'nothing to see' WHERE seq = 2")
    with idp.app.app_context():
        prev = db.session.get(AuditEntry, 1).entry_hash
        for row in db.session.scalars(
            db.select(AuditEntry).where(AuditEntry.seq >= 2).order_by(AuditEntry.seq)
        ):
            row.prev_hash = prev
            row.entry_hash = entry_hash(prev, content_hash(fields_of(row), row.personal_digest))
            prev = row.entry_hash
        db.session.execute(db.text("UPDATE audit_head SET head_hash = :h"), {"h": prev})
        db.session.commit()
    run(idp, "audit", "checkpoint")
    unpinned = run(idp, "audit", "verify")
    assert unpinned.exit_code == 0  # consistent with itself...
    assert "pass the published key (--key)" in unpinned.output
    pinned = run(idp, "audit", "verify", "--key", str(published))
    assert pinned.exit_code != 0  # ...but not signed by the published key
    assert "unknown audit key" in pinned.output
    bad_key = tmp_path / "not-a-key.json"
    bad_key.write_text("{}")
    refused = run(idp, "audit", "verify", "--key", str(bad_key))
    assert refused.exit_code != 0 and "is not the audit public key" in refused.output


def test_a_broken_chain_is_never_signed(idp):
    write(idp, 3)
    sql(idp, "UPDATE audit_entry SET event = 'edited' WHERE seq = 2")
    result = run(idp, "audit", "checkpoint")
    assert result.exit_code != 0
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditCheckpoint)) == 0


def test_writing_goes_on_when_the_head_row_was_deleted(idp):
    write(idp, 3)
    sql(idp, "DELETE FROM audit_head")
    write(idp, 2)
    code, output = verify(idp)
    assert code == 0, output
    assert "entries 1 to 5" in output


def test_the_workers_of_many_processes_sign_one_checkpoint_per_interval(idp, database_url):
    from sqlalchemy import create_engine, text

    from idp.audit.checkpoints import LOCK_KEY, checkpoint_if_due

    with idp.app.app_context():
        audit.record("test.event")
        first = checkpoint_if_due(60)
        assert first is not None and first.seq >= 1
        audit.record("test.event")
        # Another process signed moments ago: this one leaves the new entry for the next round.
        assert checkpoint_if_due(60).id == first.id
        assert db.session.scalar(db.select(db.func.count(AuditCheckpoint.id))) == 1
        if database_url.startswith("postgresql"):
            # Another process is signing right now (it holds the lock): this one skips.
            other = create_engine(idp.app.config["SQLALCHEMY_DATABASE_URI"])
            with other.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
                assert checkpoint_if_due(0) is None
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
            other.dispose()
        later = checkpoint_if_due(0)
        assert later.seq > first.seq, "once the interval has passed the new head is signed"


# -- The software version beside the instance ------------------------------------------------


def old_content_hash(row: AuditEntry) -> str:
    """The content hash as the IdP computed it before entries carried a software version."""
    from idp.audit.chain import canonical, format_time, sha256

    names = ("seq", "time", "event", "outcome", "reason", "client_id", "session_ref")
    names += ("request_id", "level", "methods", "instance", "details")
    content = {name: getattr(row, name) for name in names}
    content["time"] = format_time(content["time"])
    content["personal_digest"] = row.personal_digest
    return sha256(canonical(content))


def test_entries_record_the_software_version_and_it_is_covered_by_the_hash(idp):
    from importlib.metadata import version

    write(idp, 3)
    third = entry(idp, 3)
    assert third.software_version.startswith(version("citizen-idp"))

    sql(idp, "UPDATE audit_entry SET software_version = '0.0.1' WHERE seq = 3")
    code, output = verify(idp)
    assert code != 0
    assert "entry 3 was edited" in output


def test_a_chain_of_entries_from_before_and_after_the_version_verifies(idp, monkeypatch):
    monkeypatch.setattr(audit, "_SOFTWARE_VERSION", None)  # written by the earlier release
    write(idp, 3)
    monkeypatch.undo()
    write(idp, 3)
    assert run(idp, "audit", "checkpoint").exit_code == 0

    code, output = verify(idp)

    assert code == 0, output
    assert "entries 1 to 6" in output
    old, new = entry(idp, 2), entry(idp, 5)
    assert old.software_version is None and new.software_version
    # The earlier entries kept exactly the hash the earlier release gave them.
    assert old.entry_hash == entry_hash(old.prev_hash, old_content_hash(old))
    assert new.entry_hash != entry_hash(new.prev_hash, old_content_hash(new))

"""`idp seed`: fake citizens and audit entries in bulk for benchmarks; exactly the rows asked
for, a chain that still verifies (after a second run, and with real entries in between),
citizens who can sign in with the benchmark password, and clear refusals."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from random import Random

import pytest

from idp import audit
from idp.audit.linker import link_pending
from idp.cli import cli
from idp.development.seed import (
    BENCHMARK_PASSWORD,
    MADE_UP_CLIENTS,
    SEED_INSTANCE,
    seed_audit,
    seed_email,
)
from idp.extensions import db
from idp.models import AuditCheckpoint, AuditEntry, AuditHead, Citizen, TotpCredential
from idp.models.timestamps import utcnow
from tests.support.browser import CitizenBrowser
from tests.support.cli import migrated_env
from tests.support.cli import run as run_command

pytestmark = pytest.mark.both_databases

SETUP_HEADING = "Set up an authenticator app"
# Events the IdP records (grep audit.record( in idp/): seeding uses only these.
KNOWN_EVENTS = {
    "sign_in.succeeded",
    "sign_in.failed",
    "second_factor.succeeded",
    "second_factor.failed",
    "consent.given",
    "consent.refused",
    "authorization_code.issued",
    "authorization.failed",
    "token.issued",
    "token.refreshed",
    "token.revoked",
    "token.introspected",
    "userinfo.released",
    "citizen.signed_out",
    "citizen.signed_out_by_service",
    "account.locked",
}


def seed(idp, *args: str):
    """`idp seed ARGS` against the live IdP's database."""
    return idp.app.test_cli_runner().invoke(cli, ["seed", *args])


def verify(idp) -> str:
    """`idp audit verify`, which must pass; its output."""
    result = idp.app.test_cli_runner().invoke(cli, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    return result.output


def citizens(idp) -> list[Citizen]:
    with idp.app.app_context():
        rows = db.session.scalars(db.select(Citizen).order_by(Citizen.id)).all()
        db.session.expunge_all()
        return rows


def entries(idp) -> list[AuditEntry]:
    with idp.app.app_context():
        rows = db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.seq)).all()
        db.session.expunge_all()
        return rows


def test_seeds_exactly_what_was_asked_and_the_chain_verifies(idp):
    result = seed(idp, "--citizens", "50", "--audit-entries", "500", "--batch", "64")
    assert result.exit_code == 0, result.output
    assert "seeded 50 citizens" in result.stdout
    assert "appended 500 audit entries (1 to 500)" in result.stdout
    assert "signed the checkpoint of entry 500" in result.stdout
    assert "rows/s" in result.stdout
    assert repr(BENCHMARK_PASSWORD) in result.stdout

    seeded = citizens(idp)
    assert [c.email for c in seeded] == [seed_email(n) for n in range(1, 51)]
    assert seeded[0].email == "seed-0000001@seed.example.gov.uk"
    assert all(c.email_verified for c in seeded)
    assert len({c.subject for c in seeded}) == 50
    # One argon2id hash of the password, shared by every row.
    assert {c.password_hash for c in seeded} == {seeded[0].password_hash}
    assert seeded[0].password_hash.startswith("$argon2id$")
    assert all(c.created_at < utcnow() - timedelta(days=90) for c in seeded)
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(TotpCredential)) == 0

    rows = entries(idp)
    assert [e.seq for e in rows] == list(range(1, 501))
    assert {e.event for e in rows} <= KNOWN_EVENTS
    assert {"sign_in.succeeded", "token.issued", "authorization_code.issued"} <= {
        e.event for e in rows
    }
    assert {e.outcome for e in rows} == {"success", "failure"}
    ids = {c.id for c in seeded}
    assert {e.citizen_id for e in rows} - {None} <= ids
    # No department is registered: made-up client ids.
    assert {e.client_id for e in rows} - {None} <= set(MADE_UP_CLIENTS)
    assert all(e.ip and e.user_agent and e.personal_salt for e in rows)
    # Addresses as the IdP writes them, so the auditor's IP filter finds them.
    assert all(str(ipaddress.ip_address(e.ip)) == e.ip for e in rows)
    assert all(e.instance == SEED_INSTANCE and len(e.request_id) == 32 for e in rows)
    assert any(e.session_ref for e in rows)
    # Times over the last 90 days, increasing with seq, ending at about now.
    times = [e.time for e in rows]
    assert times == sorted(times)
    assert utcnow() - timedelta(days=91) < times[0] < utcnow() - timedelta(days=80)
    assert utcnow() - timedelta(days=1) < times[-1] <= utcnow()

    output = verify(idp)
    assert "entries 1 to 500, 1 signed checkpoint" in output
    with idp.app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    assert ("vacuumed and analysed citizen and audit_entry" in result.stdout) == postgres


def test_a_second_run_numbers_on_and_appends_after_real_entries(idp, make_client):
    make_client("dept-a")
    assert seed(idp, "--citizens", "20", "--audit-entries", "100").exit_code == 0
    with idp.app.app_context():
        audit.record("test.real_event", citizen_id=None)
    with idp.app.app_context():
        real = db.session.scalar(db.select(db.func.max(AuditEntry.seq)))
    result = seed(idp, "--citizens", "10", "--audit-entries", "100", "--batch", "30")
    assert result.exit_code == 0, result.output
    assert f"({seed_email(21)} to {seed_email(30)})" in result.stdout
    assert f"appended 100 audit entries ({real + 1} to {real + 100})" in result.stdout

    assert [c.email for c in citizens(idp)] == [seed_email(n) for n in range(1, 31)]
    rows = entries(idp)
    assert [e.seq for e in rows] == list(range(1, real + 101))
    # The registered department's client id is used.
    assert {e.client_id for e in rows} - {None} == {"dept-a"}
    # Each run signs the chain before (the registration's entries, then the real one) and after.
    assert f"entries 1 to {real + 100}, 4 signed checkpoint" in verify(idp)


def test_entries_written_by_the_idp_between_batches_are_checked_and_signed(idp):
    """A running IdP records events between two batches: they are linked like the rest, and
    checked (make_checkpoint) before the head is signed."""
    assert seed(idp, "--citizens", "5", "--audit-entries", "0").exit_code == 0

    def between_batches(count: int) -> None:
        audit.record("test.between_batches", citizen_id=None)
        link_pending()  # as the running IdP's worker does

    with idp.app.app_context():
        appended = seed_audit(60, 25, between_batches, Random(7))
        assert not appended.alone
        assert appended.checkpoint.seq == 63  # 25 + 1 + 25 + 1 + 10, and the last real one
    events = [e.event for e in entries(idp)]
    assert len(events) == 63
    assert [n for n, e in enumerate(events, 1) if e == "test.between_batches"] == [26, 52, 63]
    assert "entries 1 to 63, 1 signed checkpoint" in verify(idp)


def test_an_interrupted_run_leaves_whole_batches_signed_and_the_chain_intact(idp, monkeypatch):
    """Ctrl-C in the middle of a batch: that batch rolls back whole (entries and the head's
    move alike); the batches committed before stay, linked and signed."""
    import idp.development.seed as seeding

    assert seed(idp, "--citizens", "5", "--audit-entries", "0").exit_code == 0
    moves = []
    move_head = seeding._move_head

    def interrupted_third_batch(connection, head_hash):
        moves.append(head_hash)
        if len(moves) == 3:
            raise KeyboardInterrupt
        move_head(connection, head_hash)

    monkeypatch.setattr(seeding, "_move_head", interrupted_third_batch)
    with idp.app.app_context(), pytest.raises(KeyboardInterrupt):
        seed_audit(100, 20, lambda count: None, Random(3))
    assert [e.seq for e in entries(idp)] == list(range(1, 41))
    with idp.app.app_context():
        head = db.session.get(AuditHead, 1)
        assert (head.seq, head.head_hash) == (40, moves[1])
        checkpoint = db.session.scalar(db.select(AuditCheckpoint))
        assert (checkpoint.seq, checkpoint.head_hash) == (40, moves[1])
    assert "entries 1 to 40, 1 signed checkpoint" in verify(idp)

    monkeypatch.undo()
    assert seed(idp, "--citizens", "0", "--audit-entries", "10").exit_code == 0
    assert "entries 1 to 50, 2 signed checkpoint" in verify(idp)


def test_a_seeded_citizen_signs_in_with_the_benchmark_password(idp):
    assert seed(idp, "--citizens", "5", "--audit-entries", "0").exit_code == 0
    browser = CitizenBrowser(idp.issuer)

    page = browser.get(idp.url("/sign-in"))
    wrong = browser.submit_sign_in(page, seed_email(3), "not the passphrase")
    assert wrong.status_code == 400
    assert "Enter the correct password for this email address" in wrong.text

    page = browser.get(idp.url("/sign-in"))
    response = browser.submit_sign_in(page, seed_email(3), BENCHMARK_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"].endswith("/sign-in/second-factor")
    # Seeded citizens have no second factor: the IdP asks them to set one up.
    setup = browser.follow(response)
    assert setup.status_code == 200
    assert SETUP_HEADING in setup.text

    with idp.app.app_context():
        citizen = db.session.scalar(db.select(Citizen).filter_by(email=seed_email(3)))
        recorded = db.session.scalars(
            db.select(AuditEntry.event).filter_by(citizen_id=citizen.id).order_by(AuditEntry.seq)
        ).all()
    assert recorded == ["sign_in.failed", "sign_in.succeeded"]


def test_a_chosen_password(idp):
    result = seed(idp, "--citizens", "2", "--audit-entries", "0", "--password", "x" * 20 + " y")
    assert result.exit_code == 0, result.output
    assert "x" * 20 not in result.output  # a chosen password is not echoed
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    response = browser.submit_sign_in(page, seed_email(2), "x" * 20 + " y")
    assert response.headers["location"].endswith("/sign-in/second-factor")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--citizens", "-1"], "Invalid value for '--citizens'"),
        (["--audit-entries", "-5"], "Invalid value for '--audit-entries'"),
        (["--audit-entries", "many"], "'many' is not a valid integer"),
        (["--batch", "0"], "Invalid value for '--batch'"),
        (["--password", "short"], "at least 8 characters"),
        (["--password", "password123"], "list of common or breached passwords"),
        (["--password", "my seed-0000042 password"], "must not contain a seeded address"),
        (["--citizens", "0", "--audit-entries", "5"], "audit entries need citizens"),
    ],
)
def test_bad_inputs_are_refused_clearly(idp, args, message):
    result = seed(idp, *args)
    assert result.exit_code != 0
    assert message in result.output
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert citizens(idp) == []
    assert entries(idp) == []


def test_the_help_names_the_benchmark_password(idp):
    result = seed(idp, "--help")
    assert BENCHMARK_PASSWORD in " ".join(result.output.split())


def test_refuses_on_a_real_issuer_unless_forced(tmp_path):
    env = {**migrated_env(tmp_path), "IDP_ISSUER": "https://sign-in.example.gov.uk"}
    refused = run_command(env, "seed", "--citizens", "3", "--audit-entries", "10", check=False)
    assert refused.returncode != 0
    assert "runs only with a loopback issuer and a database on this machine" in refused.stderr
    assert "--force" in refused.stderr
    assert "Traceback" not in refused.stderr

    forced = run_command(env, "seed", "--citizens", "3", "--audit-entries", "10", "--force")
    assert "seeded 3 citizens" in forced.stdout
    assert "the audit chain verifies: entries 1 to 10" in run_command(env, "audit", "verify").stdout


def test_nothing_to_seed(idp):
    result = seed(idp, "--citizens", "0", "--audit-entries", "0")
    assert result.exit_code == 0, result.output
    assert "nothing to seed" in result.stdout
    with idp.app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(AuditCheckpoint)) == 0


def test_refuses_a_database_on_another_machine_even_with_a_loopback_issuer(tmp_path):
    # The issuer defaults to localhost, so a shell pointed at a production database by
    # IDP_DATABASE_URL alone would otherwise pass: the database must be on this machine too.
    env = {
        **migrated_env(tmp_path),
        "IDP_DATABASE_URL": "postgresql://postgres@db.example.invalid:5432/idp",
    }
    env.pop("IDP_ISSUER", None)
    refused = run_command(env, "seed", "--citizens", "3", check=False)
    assert refused.returncode != 0
    assert "not at a database on db.example.invalid" in refused.stderr
    assert "Traceback" not in refused.stderr

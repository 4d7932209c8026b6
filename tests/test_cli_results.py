"""Commands print only their answer on standard output (log and audit lines go to standard
error), so `TOKEN=$(idp clients initial-token ...)` captures the token; --json for scripts;
`idp citizens create --totp-secret` for a department's automated tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyotp
import pytest

from idp import create_app
from idp.accounts.second_factor.logic import totp_credential, totp_secret
from idp.extensions import db
from idp.models import Citizen
from idp.settings import load_settings
from tests.support.cli import migrated_env, run

KEY = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"  # 160 bits
PASSWORD = "a citizen passphrase for tests"


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """A migrated SQLite IdP whose commands log at INFO, as by default (audit lines too)."""
    return {**migrated_env(tmp_path), "IDP_LOG_LEVEL": "INFO"}


def stored_citizen(env: dict[str, str], email: str) -> tuple[dict, str | None] | None:
    """The citizen as stored (flag and subject) and its authenticator key, or None."""
    instance = Path(env["IDP_INSTANCE_PATH"])
    app = create_app(
        load_settings(
            config_file=os.devnull,
            instance_path=str(instance),
            database_url=f"sqlite:///{instance / 'idp.sqlite3'}",
            departments_file="",
            log_level="WARNING",
        )
    )
    with app.app_context():
        try:
            citizen = db.session.scalar(db.select(Citizen).filter_by(email=email))
            if citizen is None:
                return None
            credential = totp_credential(citizen)
            confirmed = credential is not None and credential.confirmed_at is not None
            key = totp_secret(credential) if confirmed else None
            return {"subject": citizen.subject, "test_citizen": citizen.test_citizen}, key
        finally:
            db.engine.dispose()


def test_initial_token_prints_only_the_token_and_logs_on_stderr(cli_env):
    issued = run(cli_env, "clients", "initial-token", "--description", "Passport team")
    lines = issued.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) >= 32 and " " not in lines[0], issued.stdout
    # The audit line went to standard error, as JSON, without the token.
    audit = [json.loads(line) for line in issued.stderr.splitlines() if line.startswith("{")]
    assert "initial_access_token.issued" in {entry.get("event") for entry in audit}
    assert lines[0] not in issued.stderr

    as_json = run(cli_env, "clients", "initial-token", "--description", "CI", "--json")
    body = json.loads(as_json.stdout)
    assert set(body) == {"initial_access_token", "id", "uses", "expires_at"}
    assert body["uses"] == 1


def test_citizens_create_prints_the_subject_and_sets_a_known_authenticator_key(cli_env):
    created = run(
        cli_env,
        *("citizens", "create", "--email", "ci@example.com", "--password", PASSWORD),
        *("--totp-secret", "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp"),
    )
    subject = created.stdout.strip()
    assert created.stdout == subject + "\n"
    assert "citizen.signed_up" in created.stderr and "second_factor.added" in created.stderr
    stored, key = stored_citizen(cli_env, "ci@example.com")
    assert stored == {"subject": subject, "test_citizen": False}
    # The department's tests compute the codes the IdP expects from the key they chose.
    assert pyotp.TOTP(key).now() == pyotp.TOTP(KEY).now()

    as_json = run(
        cli_env,
        *("citizens", "create", "--email", "ci2@example.com", "--password", PASSWORD, "--json"),
    )
    assert json.loads(as_json.stdout)["email"] == "ci2@example.com"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "JBSWY3DPEHPK3PXP",
            "must hold at least 160 bits (32 base32 characters); this one holds 80",
        ),
        ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX1", "must be base32 (letters A-Z and digits 2-7)"),
        ("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPA", "is not valid base32"),
        ("   ", "the authenticator key is empty"),
    ],
)
def test_a_bad_authenticator_key_is_refused_before_anything_is_created(cli_env, key, message):
    refused = run(
        cli_env,
        *("citizens", "create", "--email", "bad@example.com", "--password", PASSWORD),
        *("--totp-secret", key),
        check=False,
    )
    assert refused.returncode == 1
    assert message in refused.stderr and "Traceback" not in refused.stderr
    assert refused.stdout == ""
    assert stored_citizen(cli_env, "bad@example.com") is None


def test_a_test_citizen_needs_the_setting(cli_env):
    args = ("citizens", "create", "--email", "t@example.com", "--password", PASSWORD)
    refused = run(cli_env, *args, "--totp-secret", KEY, "--test-citizen", check=False)
    assert refused.returncode == 1
    assert "test citizens are not allowed on this IdP: set IDP_ALLOW_TEST_CITIZENS=true" in (
        refused.stderr
    )
    assert stored_citizen(cli_env, "t@example.com") is None
    without_key = run(cli_env, *args, "--test-citizen", check=False)
    assert "--test-citizen needs --totp-secret" in without_key.stderr

    allowed = {**cli_env, "IDP_ALLOW_TEST_CITIZENS": "true"}
    created = run(allowed, *args, "--totp-secret", KEY, "--test-citizen", "--json")
    assert json.loads(created.stdout)["test_citizen"] is True
    assert stored_citizen(cli_env, "t@example.com")[0]["test_citizen"] is True
    assert '"test_citizen": true' in created.stderr  # the audit line says so


def test_every_result_command_keeps_log_lines_off_stdout(cli_env, tmp_path):
    run(cli_env, "departments", "add", "HM Passport Office")
    client_file = tmp_path / "client.json"
    client_file.write_text(
        json.dumps(
            {
                "client_id": "passports",
                "client_secret": "s" * 40,
                "redirect_uris": ["https://passports.example.gov.uk/cb"],
            }
        )
    )
    for args in (
        ("clients", "add", str(client_file)),
        ("clients", "suspend", "passports"),
        ("clients", "list"),
        ("clients", "show", "passports"),
        ("purge",),
    ):
        result = run(cli_env, *args, "--json")
        json.loads(result.stdout)  # nothing but the JSON answer
    listed = json.loads(run(cli_env, "clients", "list", "--json").stdout)
    assert [(c["client_id"], c["status"]) for c in listed] == [("passports", "suspended")]

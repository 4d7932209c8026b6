"""The operator's commands for departments, staff and services: `idp departments add`,
`idp staff create|disable|reset-second-factor`,
`idp clients initial-token|show|approve|suspend|reinstate|disable|enable`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from idp import create_app
from idp.departments.services import (
    create_registration,
    ensure_department,
    find_department,
    update_registration,
)
from idp.extensions import db
from idp.models import Client, InitialAccessToken, StaffMember
from idp.models.timestamps import utcnow
from idp.security import throttle
from idp.settings import load_settings
from idp.staff.accounts import (
    authenticate_staff,
    begin_staff_totp_enrolment,
    has_staff_second_factor,
)
from tests.support.audit import flat
from tests.support.cli import messages, migrated_env, run

PASSWORD = "a staff passphrase that is long enough"
PASSPORTS = "HM Passport Office"


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """A fresh SQLite IdP in a temporary instance folder, migrated."""
    return migrated_env(tmp_path)


@pytest.fixture
def same_idp(cli_env) -> Iterator[Flask]:
    """The IdP the commands changed, in this process: same instance folder, same database."""
    instance = Path(cli_env["IDP_INSTANCE_PATH"])
    app = create_app(
        load_settings(
            config_file=os.devnull,
            instance_path=str(instance),
            database_url=f"sqlite:///{instance / 'idp.sqlite3'}",
            departments_file="",
            log_level="WARNING",
        )
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def refused(env, *args) -> str:
    """Run a command that must fail; its one-line message (no traceback)."""
    result = run(env, *args, check=False)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = messages(result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_departments_add_refuses_a_duplicate_and_a_blank_name(cli_env):
    added = run(cli_env, "departments", "add", PASSPORTS)

    assert added.stdout.strip().splitlines()[-1] == f"added department {PASSPORTS}"
    assert "already exists" in refused(cli_env, "departments", "add", f"  {PASSPORTS} ")
    assert "1 to 200 characters" in refused(cli_env, "departments", "add", "   ")


def test_a_department_can_be_named_in_welsh(cli_env, same_idp):
    run(cli_env, "departments", "add", PASSPORTS, "--welsh-name", "Swyddfa Basbortau EF")
    run(cli_env, "departments", "add", "Companies House")
    named = run(cli_env, "departments", "welsh-name", "Companies House", "Tŷ’r Cwmnïau")

    assert named.stdout.strip().splitlines()[-1] == "Companies House in Welsh: Tŷ’r Cwmnïau"
    with same_idp.app_context():
        assert find_department(PASSPORTS).name_in("cy") == "Swyddfa Basbortau EF"
        assert find_department("Companies House").name_in("cy") == "Tŷ’r Cwmnïau"
        assert find_department("Companies House").name_in("en") == "Companies House"
    assert "no department named" in refused(cli_env, "departments", "welsh-name", "Nobody", "x")
    assert "Welsh name must be 1 to 200" in refused(
        cli_env, "departments", "welsh-name", PASSPORTS, "x" * 201
    )


def test_staff_create_makes_accounts_that_can_sign_in(cli_env, same_idp):
    run(cli_env, "departments", "add", PASSPORTS)

    admin = run(
        cli_env,
        "staff",
        "create",
        "--email",
        "Admin@Passports.example.gov.uk",
        "--role",
        "department_admin",
        "--department",
        PASSPORTS,
        "--password",
        PASSWORD,
    )
    platform = run(
        cli_env,
        "staff",
        "create",
        "--email",
        "platform@sign-in.example.gov.uk",
        "--role",
        "platform_admin",
        "--password",
        PASSWORD,
    )

    assert "created department_admin admin@passports.example.gov.uk" in admin.stdout
    assert "created platform_admin platform@sign-in.example.gov.uk" in platform.stdout
    assert PASSWORD not in admin.stdout + admin.stderr
    with same_idp.app_context():
        member = authenticate_staff("admin@passports.example.gov.uk", PASSWORD)
        assert (member.role, member.department.name) == ("department_admin", PASSPORTS)
        assert authenticate_staff("platform@sign-in.example.gov.uk", PASSWORD).is_platform_admin
        assert authenticate_staff("platform@sign-in.example.gov.uk", "wrong password!!") is None


def test_staff_create_refuses_bad_roles_departments_and_duplicates(cli_env):
    run(cli_env, "departments", "add", PASSPORTS)
    run(
        cli_env,
        *("staff", "create", "--email", "taken@example.gov.uk", "--role", "platform_admin"),
        *("--password", PASSWORD),
    )
    cases = [
        (["--role", "department_admin", "--department", "Nope"], "no department named 'Nope'"),
        (["--role", "department_admin"], "a department administrator needs a department"),
        (
            ["--role", "platform_admin", "--department", PASSPORTS],
            "only department administrators belong to a department",
        ),
        (["--role", "platform_admin", "--email", "taken@example.gov.uk"], "already exists"),
        (["--role", "platform_admin", "--password", "short"], "at least"),
        (
            ["--role", "platform_admin", "--password", "fourteen chars"],
            "a staff password must be at least 15 characters long",
        ),
    ]

    def attempt(case):
        options, _ = case
        defaults = {"--email": "new@example.gov.uk", "--password": PASSWORD}
        for name, value in zip(options[::2], options[1::2], strict=True):
            defaults[name] = value
        args = [part for pair in defaults.items() for part in pair]
        return refused(cli_env, "staff", "create", *args)

    messages = [attempt(case) for case in cases]

    for (_, expected), message in zip(cases, messages, strict=True):
        assert expected in message, message
    bad_role = run(
        cli_env,
        *("staff", "create", "--email", "x@example.gov.uk", "--role", "boss"),
        *("--password", PASSWORD),
        check=False,
    )
    assert bad_role.returncode != 0
    assert "Error: Invalid value for '--role': 'boss' is not one of" in bad_role.stderr
    assert "Traceback" not in bad_role.stderr


def test_an_initial_token_from_the_cli_registers_a_service_at_register(cli_env, same_idp):
    run(cli_env, "departments", "add", PASSPORTS)

    issued = run(
        cli_env,
        *("clients", "initial-token", "--description", "Passport team"),
        *("--department", PASSPORTS, "--uses", "1"),
    )

    token = issued.stdout.strip().splitlines()[-1]
    assert "shown only now" in issued.stderr and token not in issued.stderr
    client = same_idp.test_client()
    metadata = {
        "client_name": "Renew your passport",
        "redirect_uris": ["https://passport.example.gov.uk/callback"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    response = client.post("/register", json=metadata, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    client_id = response.get_json()["client_id"]
    with same_idp.app_context():
        stored = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        assert (stored.status, stored.department.name) == ("pending", PASSPORTS)
    again = client.post("/register", json=metadata, headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401

    shown = run(cli_env, "clients", "show", client_id).stdout
    assert f"client_id:   {client_id}" in shown
    assert "status:      pending" in shown
    assert f"department:  {PASSPORTS}" in shown
    assert '"client_name": "Renew your passport"' in shown


def test_status_commands_follow_the_allowed_transitions(cli_env, same_idp):
    with same_idp.app_context():
        client_id = create_registration(
            {"redirect_uris": ["https://passport.example.gov.uk/callback"]},
            department=ensure_department(PASSPORTS),
            approved=False,
            via="test",
        ).client.client_id

    def status(action: str, *extra: str) -> str:
        return run(cli_env, "clients", action, client_id, *extra).stdout.strip().splitlines()[-1]

    assert "cannot be enabled" in refused(cli_env, "clients", "enable", client_id)
    assert status("approve", "--version", "1") == f"{client_id} is now active"
    assert "cannot be approved" in refused(
        cli_env, "clients", "approve", client_id, "--version", "1"
    )
    assert status("suspend", "--reason", "phishing report") == f"{client_id} is now suspended"
    assert "cannot be disabled" in refused(cli_env, "clients", "disable", client_id)
    assert status("reinstate") == f"{client_id} is now active"
    assert status("disable") == f"{client_id} is now disabled"
    assert status("enable") == f"{client_id} is now active"
    with same_idp.app_context():
        assert db.session.scalar(db.select(Client.status)) == "active"


def test_approve_names_the_version_it_approves(cli_env, same_idp):
    with same_idp.app_context():
        registered = create_registration(
            {"redirect_uris": ["https://passport.example.gov.uk/callback"]},
            department=ensure_department(PASSPORTS),
            approved=False,
            via="test",
        ).client
        client_id = registered.client_id
        # The department changes its settings after the operator looked: now version 2.
        update_registration(
            registered,
            {
                "redirect_uris": ["https://passport.example.gov.uk/callback"],
                "post_logout_redirect_uris": ["https://evil.example/x"],
            },
            via="test",
        )
    missing = run(cli_env, "clients", "approve", client_id, check=False)
    assert missing.returncode == 2 and "Missing option '--version'" in missing.stderr
    assert (
        "version:     2 (waits for approval;" in run(cli_env, "clients", "show", client_id).stdout
    )
    stale = refused(cli_env, "clients", "approve", client_id, "--version", "1")
    assert "you saw version 1 and it is now version 2" in stale
    with same_idp.app_context():
        assert db.session.scalar(db.select(Client.status)) == "pending"
    approved = run(cli_env, "clients", "approve", client_id, "--version", "2").stdout
    assert approved.strip().splitlines()[-1] == f"{client_id} is now active"


def test_client_commands_name_an_unknown_client_id(cli_env):
    commands = [["show"], ["approve", "--version", "1"], ["suspend"], ["reinstate"]]
    commands += [["disable"], ["enable"]]

    messages = [refused(cli_env, "clients", *command, "no-such") for command in commands]

    assert messages == ["Error: no client with client_id 'no-such'"] * len(commands)


def test_initial_token_refuses_an_unknown_department_and_bad_counts(cli_env, same_idp):
    message = refused(
        cli_env, "clients", "initial-token", "--description", "x", "--department", "Nope"
    )
    assert "no department named 'Nope'; create it with: idp departments add 'Nope'" in message
    too_many = run(
        cli_env, "clients", "initial-token", "--description", "x", "--uses", "0", check=False
    )
    assert too_many.returncode != 0
    assert "Invalid value for '--uses'" in too_many.stderr
    with same_idp.app_context():
        assert db.session.scalar(db.select(db.func.count(InitialAccessToken.id))) == 0


def test_staff_disable_stops_sign_in_and_names_an_unknown_account(cli_env, same_idp):
    run(
        cli_env,
        *("staff", "create", "--email", "leaver@example.gov.uk", "--role", "platform_admin"),
        *("--password", PASSWORD),
    )
    with same_idp.app_context():
        assert authenticate_staff("leaver@example.gov.uk", PASSWORD) is not None

    result = run(cli_env, "staff", "disable", "--email", "Leaver@example.gov.uk")

    assert "disabled leaver@example.gov.uk" in result.stdout
    with same_idp.app_context():
        assert authenticate_staff("leaver@example.gov.uk", PASSWORD) is None
    message = refused(cli_env, "staff", "disable", "--email", "nobody@example.gov.uk")
    assert "no staff account for nobody@example.gov.uk" in message


def test_generated_client_ids_are_safe_on_a_command_line(same_idp):
    """A client_id starting with '-' would be read as an option by `idp clients ...`."""
    from idp.departments.services import new_client_id

    ids = [new_client_id() for _ in range(2000)]
    assert all(i.isalnum() and len(i) == 24 for i in ids)
    assert len(set(ids)) == len(ids)


def test_staff_reset_second_factor_forgets_the_app_and_is_audited(cli_env, same_idp):
    run(
        cli_env,
        *("staff", "create", "--email", "lost.phone@example.gov.uk", "--role", "platform_admin"),
        *("--password", PASSWORD),
    )
    with same_idp.app_context():
        member = db.session.scalar(
            db.select(StaffMember).filter_by(email="lost.phone@example.gov.uk")
        )
        secret = begin_staff_totp_enrolment(member)
        member.totp_confirmed_at = utcnow()
        db.session.commit()
        assert has_staff_second_factor(member)

    result = run(
        {**cli_env, "IDP_LOG_LEVEL": "INFO"},
        "staff",
        "reset-second-factor",
        "Lost.Phone@example.gov.uk",
    )

    assert (
        "reset the second factor of lost.phone@example.gov.uk; 0 sessions have ended; "
        "they set up a new authenticator app at their next sign-in"
    ) in result.stdout
    # The audit lines go to standard error: standard output holds only the result.
    assert "{" not in result.stdout
    events = [flat(json.loads(line)) for line in result.stderr.splitlines() if line.startswith("{")]
    reset = [e for e in events if e.get("event") == "staff.second_factor.reset"]
    assert [(e["actor"], e["sessions_ended"]) for e in reset] == [("operator (cli)", 0)]
    assert secret not in result.stdout + result.stderr
    with same_idp.app_context():
        member = db.session.scalar(
            db.select(StaffMember).filter_by(email="lost.phone@example.gov.uk")
        )
        assert not has_staff_second_factor(member)
        assert member.totp_secret_encrypted is None
    # The --email spelling of the other staff commands works too.
    again = run(cli_env, "staff", "reset-second-factor", "--email", "lost.phone@example.gov.uk")
    assert "reset the second factor of lost.phone@example.gov.uk" in again.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.gov.uk"], "Error: no staff account for nobody@example.gov.uk"),
        (["--email", "nobody@example.gov.uk"], "Error: no staff account for nobody@example.gov.uk"),
        (["not an address"], "Error: Enter an email address in the correct format"),
    ],
    ids=["unknown", "unknown-as-option", "malformed"],
)
def test_staff_reset_second_factor_names_what_is_wrong(cli_env, args, message):
    assert refused(cli_env, "staff", "reset-second-factor", *args).startswith(message)


@pytest.mark.parametrize(
    "args",
    [[], ["a@example.gov.uk", "--email", "b@example.gov.uk"]],
    ids=["no-address", "two-addresses"],
)
def test_staff_reset_second_factor_wants_one_address(cli_env, args):
    result = run(cli_env, "staff", "reset-second-factor", *args, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error: give" in result.stderr and "EMAIL or --email" in result.stderr


def test_staff_unlock_opens_an_account_the_cap_locked(cli_env, same_idp):
    run(
        cli_env,
        *("staff", "create", "--email", "forgetful@example.gov.uk", "--role", "auditor"),
        *("--password", PASSWORD),
    )
    key = throttle.email_key("forgetful@example.gov.uk", realm="staff")
    with same_idp.app_context():
        capped = same_idp.config["IDP_SETTINGS"].throttle_cap_failures
        for n in range(capped):
            throttle.record_failure("password", key, f"192.0.2.{n % 200}")
        assert throttle.check("password", key, "192.0.2.250").capped
    result = run(cli_env, "staff", "unlock", "--email", "Forgetful@example.gov.uk")
    assert "unlocked forgetful@example.gov.uk" in result.stdout
    with same_idp.app_context():
        assert throttle.check("password", key, "192.0.2.250").allowed
    assert "no staff account" in refused(cli_env, "staff", "unlock", "--email", "x@example.gov.uk")

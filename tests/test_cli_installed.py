"""The `idp` program itself, started as an operator starts it: a separate process.

The other command tests run the same commands inside the test process (tests/support/cli.py),
which is quicker by seconds a command. These prove what only a real process shows: the console
script points at the command, a fresh process moves the IdP's log lines from standard output to
standard error (so `TOKEN=$(idp clients initial-token ...)` captures the token alone), reads a
password from standard input, and ends with a one-line error and a non-zero exit status.
"""

from __future__ import annotations

import json
import os
from importlib.metadata import entry_points

import pytest

from idp.cli import main
from tests.support.cli import messages, run_installed

pytestmark = pytest.mark.processes

PASSWORD = "a long and memorable passphrase"


@pytest.fixture(scope="module")
def idp_env(tmp_path_factory) -> dict[str, str]:
    """A SQLite IdP in a temporary instance folder, migrated by `idp db upgrade`, shared by the
    tests here (each process start costs seconds)."""
    env = {
        **os.environ,
        "IDP_INSTANCE_PATH": str(tmp_path_factory.mktemp("installed") / "instance"),
        "IDP_DEPARTMENTS_FILE": "",
        "IDP_LOG_LEVEL": "INFO",
    }
    env.pop("IDP_DATABASE_URL", None)
    run_installed(env, "db", "upgrade")
    return env


def test_the_console_script_is_the_command():
    (script,) = entry_points(group="console_scripts", name="idp")
    assert script.load() is main


def test_results_alone_on_stdout_and_log_lines_on_stderr(idp_env):
    issued = run_installed(idp_env, "clients", "initial-token", "--description", "Passports")
    lines = issued.stdout.splitlines()
    assert len(lines) == 1 and len(lines[0]) >= 32 and " " not in lines[0], issued.stdout
    audit = [json.loads(line) for line in issued.stderr.splitlines() if line.startswith("{")]
    assert "initial_access_token.issued" in {entry.get("event") for entry in audit}
    assert lines[0] not in issued.stderr

    listed = run_installed(idp_env, "clients", "list", "--json")
    assert json.loads(listed.stdout) == []


def test_the_password_is_read_from_standard_input_and_never_shown(idp_env):
    created = run_installed(
        idp_env,
        *("citizens", "create", "--email", "asked@example.com"),
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert len(created.stdout.split()) == 1  # the subject alone
    assert "created citizen asked@example.com" in created.stderr
    assert "citizen.signed_up" in created.stderr
    assert PASSWORD not in created.stdout + created.stderr


def test_a_refusal_is_one_line_and_a_non_zero_exit(idp_env):
    bad_setting = run_installed({**idp_env, "IDP_PORT": "eighty"}, "clients", "list", check=False)
    assert bad_setting.returncode != 0
    assert "port" in bad_setting.stderr and "Traceback" not in bad_setting.stderr

    unknown = run_installed(idp_env, "clients", "show", "no-such", check=False)
    assert unknown.returncode == 1
    assert messages(unknown.stderr) == ["Error: no client with client_id 'no-such'"]


def test_demo_refuses_to_run_outside_a_developers_machine(idp_env):
    """The demo creates accounts whose passwords are published: never on a real issuer. A real
    process, so that a demo which did start would fail the test by its timeout."""
    env = {**idp_env, "IDP_ISSUER": "https://sign-in.example.gov.uk"}
    result = run_installed(env, "demo", check=False)
    assert result.returncode != 0
    assert "idp demo is for a developer's machine" in result.stderr
    assert "Traceback" not in result.stderr

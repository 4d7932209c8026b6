"""Running the `idp` command as an operator would, with IDP_* variables.

`run` runs it inside the test process with click's test runner: the same command group, the same
environment (os.environ is exactly `env` for the call), the same exit status, standard output and
standard error, the IdP's log lines on standard error as the real command writes them, and a
traceback on standard error if a command raised one. It costs milliseconds where starting
Python and importing the IdP costs seconds. `run_installed` starts the real `idp` program in a
subprocess; tests/test_cli_installed.py uses it to prove that the installed command works.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner
from flask.cli import ScriptInfo

from idp import JSONLines
from idp.cli import cli
from idp.extensions import db

IDP = [sys.executable, "-m", "idp.cli"]


def run(env, *args, check=True, input=None) -> subprocess.CompletedProcess:
    """Run `idp ARGS` in this process with the environment `env`; `input` is its standard
    input. The result has the fields of a finished subprocess."""
    apps = []

    def create_app():
        app = cli.create_app()  # the group's own factory (a bad setting is a one-line error)
        apps.append(app)
        return app

    runner = CliRunner(env=_exactly(env))
    with _log_lines_on_stderr():
        result = runner.invoke(
            cli,
            list(args),
            input=input,
            obj=ScriptInfo(create_app=create_app),
            prog_name="idp",
        )
    for app in apps:
        # A process would close its database connections on exit.
        with app.app_context():
            db.engine.dispose()
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What Python prints when a command dies of an exception.
        stderr += "".join(traceback.format_exception(result.exception))
    completed = subprocess.CompletedProcess(["idp", *args], result.exit_code, result.stdout, stderr)
    if check:
        assert completed.returncode == 0, completed.stderr
    return completed


def run_installed(env, *args, check=True, input=None) -> subprocess.CompletedProcess:
    """Run `idp ARGS` as a separate program (`python -m idp.cli`, the console script's code)."""
    result = subprocess.run(
        [*IDP, *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _exactly(env) -> dict[str, str | None]:
    """The changes to os.environ that make it equal `env` (None removes a variable)."""
    changes: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    changes.update({name: value for name, value in env.items() if os.environ.get(name) != value})
    return changes


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written: the test runner's while a command runs."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextlib.contextmanager
def _log_lines_on_stderr() -> Iterator[None]:
    """The IdP's JSON log and audit lines on the command's standard error, and only there, as
    the `idp` program writes them (idp.cli.common._logs_to_stderr)."""
    logger = logging.getLogger("idp")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    handler = logging.StreamHandler(_CurrentStderr())
    formatter = JSONLines()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate, level = saved
        logger.setLevel(level)


def messages(stderr: str) -> list[str]:
    """The lines of a command's standard error meant for the operator: without the IdP's
    JSON log and audit lines, which a command writes there too."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("{")]


def migrated_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a fresh SQLite IdP in a temporary instance folder, migrated: a copy of
    the database `idp db upgrade` made once for this test process. The instance folder's
    generated secrets are made afresh by the test's first command, as after an upgrade."""
    env = {
        **os.environ,
        "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
        "IDP_DEPARTMENTS_FILE": "",
        "IDP_LOG_LEVEL": "WARNING",
    }
    env.pop("IDP_DATABASE_URL", None)
    (tmp_path / "instance").mkdir()
    for made in _upgraded_database().parent.glob(f"{DATABASE_FILE}*"):
        shutil.copyfile(made, tmp_path / "instance" / made.name)
    return env


DATABASE_FILE = "idp.sqlite3"


@functools.cache
def _upgraded_database() -> Path:
    """A database made by `idp db upgrade` in a folder kept until this process ends."""
    folder = Path(tempfile.mkdtemp(prefix="idp-upgraded-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    env = {**os.environ, "IDP_INSTANCE_PATH": str(folder), "IDP_DEPARTMENTS_FILE": ""}
    env.pop("IDP_DATABASE_URL", None)
    run({**env, "IDP_LOG_LEVEL": "WARNING"}, "db", "upgrade")
    return folder / DATABASE_FILE

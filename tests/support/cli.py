"""Running the `idp` command as an operator would: a subprocess with IDP_* variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IDP = [sys.executable, "-m", "idp.cli"]


def run(env, *args, check=True) -> subprocess.CompletedProcess:
    """Run `idp ARGS`."""
    result = subprocess.run(
        [*IDP, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def messages(stderr: str) -> list[str]:
    """The lines of a command's standard error meant for the operator: without the IdP's
    JSON log and audit lines, which a command writes there too."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("{")]


def migrated_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a fresh SQLite IdP in a temporary instance folder, migrated."""
    env = {
        **os.environ,
        "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
        "IDP_DEPARTMENTS_FILE": "",
        "IDP_LOG_LEVEL": "WARNING",
    }
    env.pop("IDP_DATABASE_URL", None)
    run(env, "db", "upgrade")
    return env

"""The `idp` command: serve, demo, citizens, clients, keys, and Flask-Migrate's `db`.

The root group `cli` and the helpers the groups share are in `common`; each command group has
its own module, which attaches its commands to `cli` when imported here.
"""

from __future__ import annotations

import sys

from idp.cli import (  # noqa: F401 (each module attaches its commands to `cli`)
    audit,
    citizens,
    clients,
    data,
    departments,
    keys,
    logouts,
    servers,
    staff,
)
from idp.cli.common import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Console script entry point."""
    cli.main(prog_name="idp", args=sys.argv[1:])

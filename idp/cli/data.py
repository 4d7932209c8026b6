"""`idp purge` and `idp seed`: clearing expired rows and seeding test data."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.common import _result, cli, json_option
from idp.development.seed import BENCHMARK_PASSWORD, run
from idp.operations.housekeeping import purge_expired


@cli.command("purge")
@json_option
@with_appcontext
def purge(as_json: bool) -> None:
    """Delete expired journeys, codes, tokens, sessions and client assertion ids."""

    counts = purge_expired()
    _result(", ".join(f"{count} {name}" for name, count in counts.items()) + " deleted", counts)


@cli.command("seed")
@click.option(
    "--citizens",
    type=click.IntRange(min=0),
    default=1_000_000,
    show_default=True,
    help="Citizens to create (seed-0000001@seed.example.gov.uk and on).",
)
@click.option(
    "--audit-entries",
    type=click.IntRange(min=0),
    default=10_000_000,
    show_default=True,
    help="Audit entries to append to the chain.",
)
@click.option(
    "--password",
    default=None,
    help="Every seeded citizen's password (default: the benchmark passphrase "
    "'benchmark citizens share this long passphrase').",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 1_000_000),
    default=20_000,
    show_default=True,
    help="Rows per batch (each committed on its own).",
)
@click.option("--force", is_flag=True, help="Seed even though the issuer is not on loopback.")
@with_appcontext
def seed(citizens: int, audit_entries: int, password: str | None, batch: int, force: bool) -> None:
    """Fill the database for benchmarks at scale: fake citizens and audit entries appended to
    the chain, in bulk (idp/development/seed.py says how). Only on a loopback issuer unless
    --force."""

    run(citizens, audit_entries, BENCHMARK_PASSWORD if password is None else password, batch, force)

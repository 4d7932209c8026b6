"""`idp audit ...`: the audit record."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import ScriptInfo, with_appcontext

from idp.accounts.identity.store import erase_identity
from idp.audit.checkpoints import CheckpointError, audit_key, make_checkpoint
from idp.audit.export import ExportError, export_to_file, verify_export
from idp.audit.linker import link_pending
from idp.audit.maintenance import MaintenanceError, erase_citizen, prune
from idp.audit.queries import (
    FilterError,
    Filters,
    check_range,
    parse_citizen_id,
    parse_ip,
    parse_time,
)
from idp.audit.verify import verify_chain
from idp.cli.common import cli
from idp.extensions import db
from idp.models.timestamps import utcnow


@cli.group("audit")
def audit_group() -> None:
    """The hash-chained audit record: link, verify, checkpoint, export, prune, erase."""


def _audit_key_from(path: Path) -> dict:
    """A public JWK from a file; a clear error when it is not one."""
    try:
        jwk = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.ClickException(f"{path.name} is not a JSON key file: {exc}") from None
    if not isinstance(jwk, dict) or not jwk.get("kid") or jwk.get("kty") != "EC" or "d" in jwk:
        raise click.ClickException(
            f"{path.name} is not the audit public key (an EC public JWK with a kid)"
        )
    return jwk


@audit_group.command("verify")
@click.option(
    "--export",
    "export_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Verify an export file offline (no database needed) instead of the database.",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The published audit public key (a JWK file, as `idp audit public-key` prints): "
    "checkpoints must be signed by it, not merely by a key found beside the data.",
)
@click.option(
    "--no-link",
    is_flag=True,
    help="Only read: check the chain as it is, without chaining the entries still waiting "
    "first (for an auditor's read-only database access).",
)
@click.pass_context
def audit_verify(
    ctx: click.Context, export_file: Path | None, key_file: Path | None, no_link: bool
) -> None:
    """Chain the entries still waiting, then check every entry's hash, every link, every
    checkpoint; name the first problem."""
    pinned = _audit_key_from(key_file) if key_file else None
    if export_file is not None:
        report = verify_export(export_file, public_jwk=pinned)
        if not report.ok:
            raise click.ClickException(f"{export_file.name} does not verify: {report.problem}")
        click.echo(f"{export_file.name} verifies: {report.summary}")
        return
    with ctx.ensure_object(ScriptInfo).load_app().app_context():
        if not no_link:
            link_pending()
        report = verify_chain({pinned["kid"]: pinned} if pinned else None)
        if not report.ok:
            raise click.ClickException(f"the audit chain does not verify: {report.problem}")
        if report.entries:
            click.echo(
                f"the audit chain verifies: entries {report.first_seq} to {report.last_seq}, "
                f"{report.checkpoints} signed checkpoint(s)"
            )
        else:
            click.echo("the audit chain verifies: it holds no entries")
        for note in report.notes:
            click.echo(f"note: {note}")


@audit_group.command("link")
@with_appcontext
def audit_link() -> None:
    """Chain the entries recorded but not yet chained now (each IdP process's background
    worker also does, every few seconds)."""

    linked = link_pending()
    click.echo(f"chained {linked} waiting {'entry' if linked == 1 else 'entries'}")


@audit_group.command("export")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="jsonl", show_default=True
)
@click.option("--from", "start", default=None, help="From this UTC time (YYYY-MM-DD[ HH:MM]).")
@click.option("--to", "end", default=None, help="Up to this UTC time (a date: that whole day).")
@click.option("--citizen", default=None, help="Only this internal citizen id.")
@click.option("--client", "client_id", default=None, help="Only this department's client ID.")
@click.option("--department", default=None, help="Only the services this department runs.")
@click.option("--event", default=None, help="Only this event type.")
@click.option("--outcome", type=click.Choice(["success", "failure"]), default=None)
@click.option("--ip", default=None, help="Only this IP address.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="The .zip to write (entries and manifest).",
)
@with_appcontext
def audit_export(
    fmt: str,
    start: str | None,
    end: str | None,
    citizen: str | None,
    client_id: str | None,
    department: str | None,
    event: str | None,
    outcome: str | None,
    ip: str | None,
    output: Path,
) -> None:
    """Export a filtered range with a manifest (chain hashes, signed checkpoint) that
    `idp audit verify --export FILE` checks offline."""

    try:
        filters = Filters(
            start=parse_time(start) if start else None,
            end=parse_time(end, end=True) if end else None,
            citizen_id=parse_citizen_id(citizen) if citizen else None,
            client_id=client_id or None,
            department=department or None,
            event=event or None,
            outcome=outcome,
            ip=parse_ip(ip) if ip else None,
        )
        check_range(filters.start, filters.end)
        summary = export_to_file(filters, fmt, output, actor={"via": "cli"})
    except (FilterError, ExportError, CheckpointError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"exported {summary.count} entries to {output} ({fmt}), covered by the signed "
        f"checkpoint of entry {summary.checkpoint_seq}"
    )


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Sign the chain's head now (the background worker also does, at an interval)."""

    try:
        checkpoint = make_checkpoint()
    except CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    if checkpoint is None:
        click.echo("the audit chain is empty: nothing to sign")
    else:
        click.echo(f"checkpoint of entry {checkpoint.seq}: {checkpoint.head_hash}")


@audit_group.command("public-key")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write the key to this file instead of standard output.",
)
@with_appcontext
def audit_public_key(output: Path | None) -> None:
    """The audit key's public JWK, to check checkpoints and exports with (publish it apart
    from the database)."""

    text = json.dumps(audit_key().public_jwk, indent=2, sort_keys=True)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote the audit public key to {output}")


@audit_group.command("prune")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=None,
    help="Delete entries older than this many days (default: the audit_retention_days setting).",
)
@click.option("--force", is_flag=True, help="Prune even if the chain does not verify.")
@with_appcontext
def audit_prune(days: int | None, force: bool) -> None:
    """Delete entries past the retention period; the rest stays verifiable (signed anchor)."""
    from datetime import timedelta

    before = utcnow() - timedelta(days=days) if days else None
    try:
        pruned = prune(before, force=force)
    except MaintenanceError as exc:
        raise click.ClickException(str(exc)) from None
    if pruned.deleted:
        click.echo(f"pruned {pruned.deleted} entries; the chain now starts at {pruned.first_kept}")
    else:
        click.echo("nothing to prune")


@audit_group.command("erase-citizen")
@click.argument("citizen_id", type=int)
@click.option("--reason", required=True, help="Why (e.g. the data protection request's reference).")
@with_appcontext
def audit_erase_citizen(citizen_id: int, reason: str) -> None:
    """Erase a citizen's id, IP addresses and user agents from the record (it still verifies),
    and their proved identity: the verified details, checks and what departments received."""

    try:
        erased = erase_citizen(citizen_id, reason)
    except MaintenanceError as exc:
        raise click.ClickException(str(exc)) from None
    # Here rather than in erase_citizen: the audit record sits below the citizen's accounts
    # (ARCHITECTURE.md), so it cannot reach the identity store.
    erase_identity(citizen_id)
    db.session.commit()
    click.echo(f"erased the personal fields of {erased} entries")
    click.echo(
        "erased their proved identity, identity checks and record of verified details shared"
    )

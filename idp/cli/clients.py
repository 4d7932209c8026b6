"""`idp clients ...`: the departments' OIDC clients."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import with_appcontext

from idp.cli.common import _department_or_fail, _result, cli, json_option
from idp.departments.metadata import ClientMetadataError
from idp.departments.services import (
    RegistrationError,
    change_client_status,
    delete_client,
    issue_initial_access_token,
    register_client,
)
from idp.extensions import db
from idp.models import Client


@cli.group("clients")
def clients() -> None:
    """Department services registered as clients."""


@clients.command("add")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@with_appcontext
def clients_add(file: Path, as_json: bool) -> None:
    """Add or update a client from a JSON file of RFC 7591 metadata plus client_id and secret."""

    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.ClickException(f"{file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{file} must hold a JSON object of client metadata")
    metadata = dict(data)
    client_id = metadata.pop("client_id", None)
    client_secret = metadata.pop("client_secret", None)
    if not client_id:
        raise click.ClickException(f"{file} has no client_id")
    try:
        client = register_client(client_id, metadata, client_secret)
    except ClientMetadataError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    _result(
        f"registered client {client.client_id} ({client.token_endpoint_auth_method})",
        {
            "client_id": client.client_id,
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "status": client.status,
        },
    )


@clients.command("list")
@json_option
@with_appcontext
def clients_list(as_json: bool) -> None:
    """List registered clients."""

    rows = db.session.scalars(db.select(Client).order_by(Client.client_id)).all()
    if as_json:
        _result(
            "",
            [
                {
                    "client_id": c.client_id,
                    "status": c.status,
                    "token_endpoint_auth_method": c.token_endpoint_auth_method,
                    "client_name": c.client_name,
                }
                for c in rows
            ],
        )
        return
    if not rows:
        click.echo("no clients registered")
        return
    for client in rows:
        click.echo(
            f"{client.client_id}\t{client.status}\t{client.token_endpoint_auth_method}\t"
            f"{client.client_name}"
        )


def _client_or_fail(client_id: str):
    """The client with this id, or a one-line error."""

    client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    if client is None:
        raise click.ClickException(f"no client with client_id {client_id!r}")
    return client


@clients.command("show")
@click.argument("client_id")
@json_option
@with_appcontext
def clients_show(client_id: str, as_json: bool) -> None:
    """Show one client's status, department and registered metadata."""
    client = _client_or_fail(client_id)
    if as_json:
        _result(
            "",
            {
                "client_id": client.client_id,
                "status": client.status,
                "department": client.department.name if client.department else None,
                "client_id_issued_at": client.client_id_issued_at.isoformat(),
                "metadata": client.client_metadata,
            },
        )
        return
    click.echo(f"client_id:   {client.client_id}")
    click.echo(f"name:        {client.client_name}")
    click.echo(f"status:      {client.status}")
    click.echo(f"department:  {client.department.name if client.department else '-'}")
    click.echo(f"auth method: {client.token_endpoint_auth_method}")
    click.echo(f"subject:     {client.subject_type} (sector {client.sector_identifier})")
    click.echo(f"registered:  {client.client_id_issued_at.isoformat()}")
    approved = "approved" if client.approval_is_current else "waits for approval"
    click.echo(f"version:     {client.metadata_version} ({approved}; {client.metadata_sha256})")
    click.echo(json.dumps(client.client_metadata, indent=2, sort_keys=True))


def _status_command(action: str, help_text: str) -> None:
    """A `clients <action> CLIENT_ID` command that changes a client's status."""

    def command(
        client_id: str, reason: str | None, as_json: bool, version: int | None = None
    ) -> None:

        client = _client_or_fail(client_id)
        try:
            change_client_status(
                client,
                action,
                actor="operator (cli)",
                platform_admin=True,
                reason=reason,
                version=version,
            )
        except RegistrationError as exc:
            raise click.ClickException(str(exc)) from None
        _result(
            f"{client.client_id} is now {client.status}",
            {"client_id": client.client_id, "status": client.status},
        )

    command = json_option(with_appcontext(command))
    if action == "approve":
        # An approval is of one exact version of the settings: the one the operator saw.
        command = click.option(
            "--version",
            required=True,
            type=click.IntRange(1),
            help="The settings version approved (as `idp clients show` prints it).",
        )(command)
    command = click.option("--reason", default=None, help="Why (recorded in the audit log).")(
        command
    )
    clients.command(action, help=help_text)(click.argument("client_id")(command))


_status_command(
    "approve",
    "Approve one version of a pending client's settings (see `idp clients show`) so citizens "
    "can use it.",
)
_status_command("suspend", "Suspend a client: it gets unauthorized_client and its tokens end.")
_status_command("reinstate", "Lift a suspension.")
_status_command("disable", "Switch a client off (as its department would).")
_status_command("enable", "Switch a disabled client back on.")


@clients.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Delete without asking for confirmation.")
@json_option
@with_appcontext
def clients_delete(client_id: str, yes: bool, as_json: bool) -> None:
    """Delete a service: its tokens and codes stop working at once, citizens' consents to it
    and its part in their sessions go; its audit history stays."""

    client = _client_or_fail(client_id)
    if not yes:
        try:
            click.confirm(
                f"Delete {client.client_id} ({client.client_name})? Its tokens stop working "
                "and it cannot be undone",
                abort=True,
                err=True,
            )
        except click.Abort:
            raise click.ClickException(
                f"{client.client_id} was not deleted (answer y, or pass --yes)"
            ) from None
    deleted = delete_client(client, via="cli", actor="operator (cli)")
    _result(
        f"deleted {deleted.client_id}: {deleted.access_tokens} access token(s), "
        f"{deleted.refresh_tokens} refresh token(s), {deleted.codes} code(s), "
        f"{deleted.consents} consent(s) and its part in {deleted.sessions} session(s) removed; "
        f"{deleted.logouts_cancelled} pending back-channel logout(s) cancelled",
        {
            "client_id": deleted.client_id,
            "access_tokens": deleted.access_tokens,
            "refresh_tokens": deleted.refresh_tokens,
            "codes": deleted.codes,
            "consents": deleted.consents,
            "sessions": deleted.sessions,
            "logouts_cancelled": deleted.logouts_cancelled,
        },
    )


@clients.command("initial-token")
@click.option("--description", required=True, help="Who the token is for.")
@click.option("--department", default=None, help="Registrations belong to this department.")
@click.option("--uses", default=1, show_default=True, type=click.IntRange(1, 1000))
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90))
@click.option("--pre-approved", is_flag=True, help="Registrations are active without approval.")
@json_option
@with_appcontext
def clients_initial_token(
    description: str,
    department: str | None,
    uses: int,
    days: int,
    pre_approved: bool,
    as_json: bool,
) -> None:
    """Create an initial access token for the registration API: standard output holds only
    the token (shown once)."""

    try:
        token, value = issue_initial_access_token(
            description=description,
            created_by="operator (cli)",
            department=_department_or_fail(department),
            pre_approved=pre_approved,
            max_uses=uses,
            lifetime=days * 24 * 3600,
        )
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from None
    _result(
        value,
        {
            "initial_access_token": value,
            "id": token.id,
            "uses": uses,
            "expires_at": f"{token.expires_at:%Y-%m-%dT%H:%M:%SZ}",
        },
    )
    click.echo(
        f"initial access token {token.id}: {uses} registration(s) until "
        f"{token.expires_at:%Y-%m-%d %H:%M} UTC; shown only now",
        err=True,
    )

"""The `idp` command: serve, demo, citizens, clients, keys, and Flask-Migrate's `db`."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from idp import JSONLines, audit, create_app
from idp.accounts.second_factor import (
    enrol_known_totp,
    parse_totp_secret,
    require_test_citizens_allowed,
)
from idp.accounts.services import (
    AccountError,
    create_citizen,
    find_citizen_by_email,
    normalise_email,
)
from idp.accounts.sessions import end_every_session
from idp.audit.checkpoints import CheckpointError, audit_key, make_checkpoint
from idp.audit.export import ExportError, export_to_file, verify_export
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
from idp.departments.metadata import ClientMetadataError
from idp.departments.samples import register_departments
from idp.departments.services import (
    RegistrationError,
    change_client_status,
    delete_client,
    ensure_department,
    find_department,
    issue_initial_access_token,
    register_client,
)
from idp.development.demo import run_demo
from idp.development.seed import BENCHMARK_PASSWORD, run
from idp.extensions import db
from idp.models import Client, LogoutAttempt, LogoutDelivery, StaffMember
from idp.models.timestamps import utcnow
from idp.oidc.jwks import JWKS_MAX_AGE
from idp.oidc.keys import (
    SUPPORTED_ALGS,
    KeyRotationError,
    all_key_rows,
    key_state,
    retire_signing_key,
    rotate_signing_keys,
    signer_ids,
)
from idp.operations.housekeeping import prepare_database, purge_expired
from idp.operations.production import ProductionStack, StackError
from idp.operations.worker import start_worker
from idp.security import throttle
from idp.settings import PROJECT_ROOT, SettingsError, current_settings
from idp.staff.accounts import StaffError, create_staff, disable_staff, reset_staff_second_factor


def _create_app():
    """Build the app, turning a bad setting into a one-line message."""
    try:
        return create_app()
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


# Commands that run the server: their JSON log lines stay on standard output for a shipper.
SERVER_COMMANDS = frozenset({"serve", "run-prod", "demo"})


def _logs_to_stderr() -> None:
    """Send the IdP's log and audit lines to standard error, so that standard output holds
    only a command's result (`TOKEN=$(idp clients initial-token ...)` captures the token)."""

    if sys.stdout is not sys.__stdout__:
        return  # output captured inside this process (a test's CliRunner): nothing to move
    logger = logging.getLogger("idp")
    moved = False
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream in (
            sys.stdout,
            sys.__stdout__,
        ):
            handler.setStream(sys.stderr)
            moved = True
    if not moved and not logger.handlers:
        # Before create_app: it keeps a handler it finds, so every line goes here.
        handler = logging.StreamHandler(sys.stderr)
        formatter = JSONLines()
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        logger.propagate = False


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Government sign in: the OpenID Connect identity provider."""
    if ctx.invoked_subcommand not in SERVER_COMMANDS:
        _logs_to_stderr()


def json_option(command):
    """--json: the command's result as JSON on standard output, for scripts."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts)."
    )(command)


def _result(text: str, data: object) -> None:
    """A command's result on standard output: text for a person, or data as JSON with --json.
    Notes for the operator go to standard error (click.echo(..., err=True))."""
    if click.get_current_context().params.get("as_json"):
        click.echo(json.dumps(data, sort_keys=True, default=str))
    else:
        click.echo(text)


@cli.command("serve")
@click.option("--host", default=None, help="Interface to listen on (default from settings).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--threads", default=8, type=click.IntRange(1, 64), show_default=True)
@with_appcontext
def serve(host: str | None, port: int | None, threads: int) -> None:
    """Migrate, register the configured departments, and serve the IdP with waitress."""
    from waitress import serve as waitress_serve

    settings = current_settings()
    prepare_database()
    try:
        register_departments(settings)
    except ClientMetadataError as exc:
        raise click.ClickException(f"departments file: {exc}") from None
    app = current_app._get_current_object()
    start_worker(app)
    click.echo(f"IdP serving {settings.issuer} on {host or settings.host}:{port or settings.port}")
    waitress_serve(app, host=host or settings.host, port=port or settings.port, threads=threads)


@cli.command("prepare")
@with_appcontext
def prepare() -> None:
    """Migrate the database, make sure signing keys exist and register the configured
    departments: once per deployment, before the server processes start."""

    prepare_database()
    try:
        register_departments(current_settings())
    except ClientMetadataError as exc:
        raise click.ClickException(f"departments file: {exc}") from None
    click.echo("database migrated, signing keys ready")


@cli.command("run-prod", with_appcontext=False)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the load balancer (nginx).",
)
@click.option(
    "--instance-ports",
    default="8101,8102",
    show_default=True,
    help="Ports of the IdP instances behind it, comma-separated (one per instance).",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="gunicorn worker processes per instance.",
)
@click.option(
    "--run-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Instance folders, shared secrets and nginx files (default instance/prod).",
)
def run_prod(port: int, instance_ports: str, workers: int, run_dir: Path | None) -> None:
    """Run the IdP the production way until Ctrl-C: nginx round-robin over separate gunicorn
    instances on PostgreSQL (IDP_DATABASE_URL) and Redis (IDP_REDIS_URL)."""
    import os
    import signal
    import time

    database_url = os.environ.get("IDP_DATABASE_URL", "")
    redis_url = os.environ.get("IDP_REDIS_URL", "")
    if not database_url.startswith(("postgresql://", "postgres://")):
        raise click.ClickException(
            "set IDP_DATABASE_URL to a PostgreSQL URL, e.g. postgresql://postgres@127.0.0.1/idp"
        )
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise click.ClickException(
            "set IDP_REDIS_URL to a Redis URL, e.g. redis://127.0.0.1:6379/0"
        )
    try:
        ports = tuple(int(p) for p in instance_ports.split(",") if p.strip())
    except ValueError:
        raise click.ClickException(
            "--instance-ports must be port numbers separated by commas"
        ) from None
    if len(ports) < 2 or len(set(ports)) != len(ports) or port in ports:
        raise click.ClickException("--instance-ports needs two or more different ports, not --port")
    stack = ProductionStack(
        database_url=database_url,
        redis_url=redis_url,
        run_dir=run_dir or PROJECT_ROOT / "instance" / "prod",
        port=port,
        instance_ports=ports,
        workers=workers,
        issuer=os.environ.get("IDP_ISSUER", ""),
    )

    def interrupt(*_) -> None:
        raise KeyboardInterrupt

    # A supervisor's SIGTERM or a closed terminal stops everything, even while starting.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    try:
        stack.start()
    except StackError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("stopped while starting")
        return
    click.echo(f"IdP ready at {stack.issuer} (nginx on {stack.host}:{port}), round-robin over:")
    for instance in stack.instances:
        click.echo(f"  {instance.name}: {instance.url} ({workers} gunicorn workers)")
    click.echo("Ctrl-C stops everything.")
    try:
        while True:
            gone = [i.name for i in stack.instances if i.process.poll() is not None]
            if stack.nginx.poll() is not None:
                gone.append("nginx")
            if gone:
                click.echo(f"{', '.join(gone)} stopped unexpectedly")
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping...")
        stack.stop()


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


@cli.command("demo")
@with_appcontext
def demo() -> None:
    """Start the IdP and every demo department until Ctrl-C (what `make run` does)."""

    run_demo(current_app._get_current_object())


@cli.group("citizens")
def citizens() -> None:
    """Citizen accounts."""


@citizens.command("create")
@click.option("--email", required=True, help="The citizen's email address.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The password (at least 8 characters); asked for, hidden, when not given.",
)
@click.option("--given-name", default=None)
@click.option("--family-name", default=None)
@click.option(
    "--totp-secret",
    default=None,
    help="Give the citizen an authenticator app with this base32 key (at least 160 bits, "
    "32 characters), for a department's automated tests.",
)
@click.option(
    "--test-citizen",
    is_flag=True,
    help="A test citizen: its authenticator codes may be reused within their 30 s step, so "
    "parallel test jobs do not refuse each other (needs --totp-secret and "
    "IDP_ALLOW_TEST_CITIZENS=true).",
)
@json_option
@with_appcontext
def citizens_create(
    email: str,
    password: str,
    given_name: str | None,
    family_name: str | None,
    totp_secret: str | None,
    test_citizen: bool,
    as_json: bool,
) -> None:
    """Create a citizen account; standard output holds its subject."""

    # Everything that can be refused is checked before the account exists.
    try:
        if test_citizen:
            if totp_secret is None:
                raise ValueError("--test-citizen needs --totp-secret (the key its tests use)")
            require_test_citizens_allowed()
        secret = parse_totp_secret(totp_secret) if totp_secret is not None else None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        citizen = create_citizen(
            email, password, given_name=given_name, family_name=family_name, email_verified=True
        )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if secret is not None:
        enrol_known_totp(citizen, secret, test_citizen=test_citizen, actor="operator (cli)")
    kind = "test citizen" if test_citizen else "citizen"
    app = " with an authenticator app" if secret is not None else ""
    if not as_json:
        click.echo(f"created {kind} {citizen.email}{app}; its subject:", err=True)
    _result(
        citizen.subject,
        {
            "email": citizen.email,
            "subject": citizen.subject,
            "authenticator_app": secret is not None,
            "test_citizen": test_citizen,
        },
    )


@citizens.command("sign-out")
@click.argument("email")
@click.option("--reason", required=True, help="Why, for the audit record (e.g. a ticket number).")
@with_appcontext
def citizens_sign_out(email: str, reason: str) -> None:
    """Sign a citizen out everywhere: every browser session ends, every department token is
    revoked, and departments registered for back-channel logout are told."""

    citizen = find_citizen_by_email(email)
    if citizen is None:
        raise click.ClickException(f"no citizen has the email address {email!r}")
    if not reason.strip():
        raise click.ClickException("--reason must say why the citizen is being signed out")
    ended = end_every_session(citizen.id, "administrator")
    db.session.commit()
    audit.record("sign_out.administrator", citizen_id=citizen.id, reason=reason.strip()[:200])
    click.echo(
        f"signed {citizen.email} out of {ended} browser session(s); departments registered "
        "for back-channel logout are being told"
    )


@cli.group("logouts")
def logouts() -> None:
    """Back-channel logout deliveries to departments."""


@logouts.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed"]),
    default=None,
    help="Only deliveries in this state.",
)
@click.option("--client", "client_id", default=None, help="Only this department's client ID.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@with_appcontext
def logouts_list(status: str | None, client_id: str | None, limit: int) -> None:
    """The newest deliveries, with every attempt's outcome."""

    query = db.select(LogoutDelivery).order_by(LogoutDelivery.id.desc()).limit(limit)
    if status:
        query = query.filter_by(status=status)
    if client_id:
        query = query.filter_by(client_id=client_id)
    rows = db.session.scalars(query).all()
    if not rows:
        click.echo("no back-channel logout deliveries")
        return
    for delivery in rows:
        click.echo(
            f"{delivery.id}  {delivery.client_id}  {delivery.status}  "
            f"session ended: {delivery.reason}  attempts: {delivery.attempts}  "
            f"queued {_utc(delivery.created_at)}"
        )
        attempts = db.session.scalars(
            db.select(LogoutAttempt).filter_by(delivery_id=delivery.id).order_by(LogoutAttempt.id)
        )
        for attempt in attempts:
            status_text = f" HTTP {attempt.http_status}" if attempt.http_status else ""
            detail = f" ({attempt.detail})" if attempt.detail else ""
            click.echo(
                f"    {_utc(attempt.attempted_at)}  {attempt.outcome}{status_text}  "
                f"{attempt.duration_ms} ms{detail}"
            )
        if delivery.status == "pending":
            click.echo(f"    next attempt {_utc(delivery.next_attempt_at)}")


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


def _department_or_fail(name: str | None):
    """The department with this name (None for none), or a one-line error."""

    if name is None:
        return None
    department = find_department(name)
    if department is None:
        raise click.ClickException(
            f"no department named {name!r}; create it with: idp departments add {name!r}"
        )
    return department


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


@cli.group("departments")
def departments() -> None:
    """Departments (organisations) that own services and staff."""


@departments.command("add")
@click.argument("name")
@json_option
@with_appcontext
def departments_add(name: str, as_json: bool) -> None:
    """Add a department."""

    if find_department(name.strip()) is not None:
        raise click.ClickException(f"a department named {name.strip()!r} already exists")
    try:
        ensure_department(name)
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from None
    _result(f"added department {name.strip()}", {"department": name.strip()})


@cli.group("staff")
def staff() -> None:
    """Staff accounts: platform and department administrators."""


@staff.command("create")
@click.option("--email", required=True)
@click.option(
    "--role", required=True, type=click.Choice(["platform_admin", "department_admin", "auditor"])
)
@click.option("--department", default=None, help="Required for department administrators.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@json_option
@with_appcontext
def staff_create(
    email: str, role: str, department: str | None, password: str, as_json: bool
) -> None:
    """Create a staff account."""

    try:
        member = create_staff(email, password, role, _department_or_fail(department))
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    _result(f"created {role} {member.email}", {"email": member.email, "role": role})


@staff.command("disable")
@click.option("--email", required=True)
@with_appcontext
def staff_disable(email: str) -> None:
    """Switch a staff account off and end its sessions."""

    try:
        address = normalise_email(email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    member = db.session.scalar(db.select(StaffMember).filter_by(email=address))
    if member is None:
        raise click.ClickException(f"no staff account for {address}")
    disable_staff(member, actor="operator (cli)")
    click.echo(f"disabled {member.email}; their sessions have ended")


@staff.command("unlock")
@click.option("--email", required=True)
@with_appcontext
def staff_unlock(email: str) -> None:
    """Open a staff account locked by too many wrong passwords (the cap, NIST SP 800-63B
    5.2.2): staff have no password reset by email, so an operator does it."""

    try:
        address = normalise_email(email)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    member = db.session.scalar(db.select(StaffMember).filter_by(email=address))
    if member is None:
        raise click.ClickException(f"no staff account for {address}")
    throttle.reopen(throttle.email_key(address, realm="staff"))
    audit.record("account.unlocked", staff_id=member.id, actor="operator (cli)")
    click.echo(f"unlocked {member.email}: wrong passwords count from nought again")


@staff.command("reset-second-factor")
@click.argument("email", required=False)
@click.option("--email", "email_option", default=None, help="The same, as the other commands.")
@with_appcontext
def staff_reset_second_factor(email: str | None, email_option: str | None) -> None:
    """Forget a staff member's authenticator app (lost or replaced) and end their sessions.

    At their next sign-in, after the password, they set up a new app.
    """

    if email and email_option and email != email_option:
        raise click.UsageError("give the staff member's email address once: EMAIL or --email")
    typed = email or email_option
    if not typed:
        raise click.UsageError("give the staff member's email address: EMAIL or --email")
    try:
        address = normalise_email(typed)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    member = db.session.scalar(db.select(StaffMember).filter_by(email=address))
    if member is None:
        raise click.ClickException(f"no staff account for {address}")
    ended = reset_staff_second_factor(member, actor="operator (cli)")
    # Wrong codes typed into the lost app's page no longer count against them.
    throttle.record_success("second_factor", f"staff:{member.id}")
    sessions = "session has" if ended == 1 else "sessions have"
    click.echo(
        f"reset the second factor of {member.email}; {ended} {sessions} ended; "
        "they set up a new authenticator app at their next sign-in"
    )


@cli.group("keys")
def keys() -> None:
    """The IdP's signing keys: list, rotate, retire."""


def _utc(moment) -> str:
    """A stored time as the operator reads it."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _warn_unseen_key(alg: str, kid: str, lead_time: int) -> None:
    """Warn that departments may not have fetched a key that signs this soon."""

    if lead_time < JWKS_MAX_AGE:
        click.echo(
            f"warning: {alg} key {kid} signs {lead_time} s after it was published, less than "
            f"the JWKS max-age ({JWKS_MAX_AGE} s): departments holding a cached JWKS will not "
            "know it until they fetch the JWKS again (most do on an unknown kid)",
            err=True,
        )


@keys.command("rotate")
@click.option(
    "--alg",
    type=click.Choice(["ES256", "RS256"]),
    default=None,
    help="Rotate this algorithm's key only (default: both).",
)
@click.option(
    "--lead-time",
    type=int,
    default=None,
    help="Seconds the new key is published before it signs "
    "(default: the signing_key_lead_time setting; 0 signs at once, for emergencies).",
)
@with_appcontext
def keys_rotate(alg: str | None, lead_time: int | None) -> None:
    """Add a new signing key: published now, signing after the lead time; the key it replaces
    stays published until every token it signed has expired."""

    lead = current_settings().signing_key_lead_time if lead_time is None else lead_time
    try:
        rotations = rotate_signing_keys([alg] if alg else SUPPORTED_ALGS, lead)
    except KeyRotationError as exc:
        raise click.ClickException(str(exc)) from None
    for rotation in rotations:
        _warn_unseen_key(rotation.alg, rotation.kid, lead)
        if lead:
            click.echo(
                f"{rotation.alg}: new key {rotation.kid} is published now and signs from "
                f"{_utc(rotation.activates_at)} (in {lead} s)"
            )
        else:
            click.echo(f"{rotation.alg}: new key {rotation.kid} is published and signs now")
        for old in rotation.replaced:
            until = "until then" if lead else "no more"
            click.echo(
                f"{rotation.alg}: key {old.kid} signs {until} and leaves the JWKS at "
                f"{_utc(old.retires_at)}"
            )


@keys.command("list")
@with_appcontext
def keys_list() -> None:
    """Every signing key: algorithm, kid, state and its times (UTC)."""

    now = utcnow()
    rows = all_key_rows()
    if not rows:
        click.echo("no signing keys yet (they are created when the IdP starts)")
        return
    signing = signer_ids(now)
    stamp = "%Y-%m-%d %H:%M:%S"
    click.echo(
        f"{'ALG':<6} {'KID':<44} {'STATE':<42} {'CREATED (UTC)':<20} "
        f"{'ACTIVATES (UTC)':<20} RETIRES (UTC)"
    )
    for row in rows:
        if row.retired_at is not None:
            retires = f"{row.retired_at:{stamp}} (withdrawn)"
        else:
            retires = f"{row.retires_at:{stamp}}" if row.retires_at else "-"
        click.echo(
            f"{row.alg:<6} {row.kid:<44} {key_state(row, now, signing):<42} "
            f"{row.created_at:{stamp}}  {row.activates_at:{stamp}}  {retires}"
        )


@keys.command("retire")
@click.argument("kid")
@click.option(
    "--force",
    is_flag=True,
    help="Retire even the only key that can sign for its algorithm (a new key signs at once).",
)
@with_appcontext
def keys_retire(kid: str, force: bool) -> None:
    """Withdraw a key at once (e.g. compromised): it leaves the JWKS and never signs again."""

    try:
        done = retire_signing_key(kid, force=force)
    except KeyRotationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{done.alg}: key {done.kid} is retired: it has left the JWKS and signs no more")
    if done.brought_forward or done.created:
        started = done.brought_forward or done.created
        click.echo(f"{done.alg}: key {started} signs from now")
        _warn_unseen_key(done.alg, started, done.published_for)
    elif done.was_signing:
        click.echo(f"{done.alg}: key {done.signer_kid} signs from now")
    click.echo(
        f"note: departments may trust a cached copy of the JWKS for up to {JWKS_MAX_AGE} s",
        err=True,
    )


@cli.group("audit")
def audit_group() -> None:
    """The hash-chained audit record: verify, checkpoint, export, prune, erase."""


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
@click.pass_context
def audit_verify(ctx: click.Context, export_file: Path | None, key_file: Path | None) -> None:
    """Check every entry's hash, every link, every checkpoint; name the first problem."""
    pinned = _audit_key_from(key_file) if key_file else None
    if export_file is not None:
        report = verify_export(export_file, public_jwk=pinned)
        if not report.ok:
            raise click.ClickException(f"{export_file.name} does not verify: {report.problem}")
        click.echo(f"{export_file.name} verifies: {report.summary}")
        return
    with ctx.ensure_object(ScriptInfo).load_app().app_context():
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
    """Erase a citizen's id, IP addresses and user agents from the record; it still verifies."""

    try:
        erased = erase_citizen(citizen_id, reason)
    except MaintenanceError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"erased the personal fields of {erased} entries")


def main() -> None:
    """Console script entry point."""
    cli.main(prog_name="idp", args=sys.argv[1:])


if __name__ == "__main__":
    main()

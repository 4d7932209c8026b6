"""`idp serve`, `idp prepare`, `idp run-prod` and `idp demo`: running the IdP."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from idp.cli.common import cli
from idp.departments.metadata import ClientMetadataError
from idp.departments.samples import register_departments
from idp.development.demo import run_demo
from idp.operations.housekeeping import prepare_database
from idp.operations.production import ProductionStack, StackError
from idp.operations.worker import start_worker
from idp.settings import PROJECT_ROOT, current_settings


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
    help="Worker processes per instance.",
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(1, 64),
    help="Threads per worker process (default: granian 2, gunicorn-gthread 4, gunicorn-sync 1).",
)
@click.option(
    "--run-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Instance folders, shared secrets and nginx files (default instance/prod).",
)
def run_prod(
    port: int, instance_ports: str, workers: int, threads: int | None, run_dir: Path | None
) -> None:
    """Run the IdP the production way until Ctrl-C: nginx round-robin over separate IdP
    instances on PostgreSQL (IDP_DATABASE_URL) and Redis (IDP_REDIS_URL), each served by
    granian (IDP_SERVER=gunicorn-sync or gunicorn-gthread for gunicorn)."""
    import os
    import signal

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
        threads=threads or 0,
        issuer=os.environ.get("IDP_ISSUER", ""),
    )
    try:
        server, threads = stack.server(), stack.worker_threads()
    except StackError as exc:
        raise click.ClickException(str(exc)) from None

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
        click.echo(
            f"  {instance.name}: {instance.url} ({server}, {workers} workers x {threads} "
            f"threads, pid {instance.process.pid})"
        )
    click.echo("An instance that stops is started again while the others serve.")
    click.echo("Ctrl-C (or SIGTERM to this process) stops everything.")
    try:
        stack.supervise(say=lambda line: click.echo(line, err=True))
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping...")
        stack.stop()


@cli.command("demo")
@with_appcontext
def demo() -> None:
    """Start the IdP and every demo department until Ctrl-C (what `make run` does)."""

    run_demo(current_app._get_current_object())

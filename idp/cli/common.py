"""The root `idp` group and the helpers its command groups share."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time

import click
from flask import g
from flask.cli import FlaskGroup, ScriptInfo

from idp import JSONLines, create_app
from idp.audit.linker import RECORDED, link_pending
from idp.departments.services import find_department
from idp.settings import SettingsError


def _create_app():
    """Build the app, turning a bad setting into a one-line message."""
    try:
        app = create_app()
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None

    @app.teardown_appcontext
    def _note_what_was_recorded(_error: BaseException | None) -> None:
        # Read (not popped) before the command's app context ends, for the chaining below.
        if g.get(RECORDED):
            app.extensions[COMMAND_RECORDED] = True

    return app


# The command recorded audit entries (so there is something of its own to chain as it exits).
COMMAND_RECORDED = "idp_command_recorded_audit_entries"


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


def _chain_what_the_command_recorded(ctx: click.Context) -> None:
    """Before a command exits, chain the audit entries it recorded (and so write their JSON
    lines, on standard error): no background worker runs in a command to do it later."""
    info = ctx.find_object(ScriptInfo)
    app = getattr(info, "_loaded_app", None) if info is not None else None
    if app is None or not app.extensions.get(COMMAND_RECORDED):
        return  # the command recorded nothing (or never built the app)
    with app.app_context():
        link_pending()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Government sign in: the OpenID Connect identity provider."""
    if ctx.invoked_subcommand not in SERVER_COMMANDS:
        _logs_to_stderr()
        ctx.call_on_close(functools.partial(_chain_what_the_command_recorded, ctx))


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


def _utc(moment) -> str:
    """A stored time as the operator reads it."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


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

"""`idp departments ...`: the departments."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.common import _result, cli, json_option
from idp.departments.services import (
    RegistrationError,
    ensure_department,
    find_department,
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

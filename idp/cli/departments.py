"""`idp departments ...`: the departments."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.common import _result, cli, json_option
from idp.departments.services import (
    RegistrationError,
    ensure_department,
    find_department,
    set_department_welsh_name,
)


@cli.group("departments")
def departments() -> None:
    """Departments (organisations) that own services and staff."""


@departments.command("add")
@click.argument("name")
@click.option("--welsh-name", help="The department's name in Welsh, for pages read in Welsh.")
@json_option
@with_appcontext
def departments_add(name: str, welsh_name: str | None, as_json: bool) -> None:
    """Add a department."""

    if find_department(name.strip()) is not None:
        raise click.ClickException(f"a department named {name.strip()!r} already exists")
    try:
        ensure_department(name, name_cy=welsh_name)
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from None
    _result(f"added department {name.strip()}", {"department": name.strip()})


@departments.command("welsh-name")
@click.argument("name")
@click.argument("welsh_name")
@json_option
@with_appcontext
def departments_welsh_name(name: str, welsh_name: str, as_json: bool) -> None:
    """Set a department's name in Welsh ("" removes it)."""

    department = find_department(name.strip())
    if department is None:
        raise click.ClickException(f"there is no department named {name.strip()!r}")
    try:
        set_department_welsh_name(department, welsh_name, actor="cli")
    except RegistrationError as exc:
        raise click.ClickException(str(exc)) from None
    _result(
        f"{department.name} in Welsh: {department.name_cy or '(none)'}",
        {"department": department.name, "welsh_name": department.name_cy},
    )

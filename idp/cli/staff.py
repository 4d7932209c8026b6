"""`idp staff ...`: staff accounts."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp import audit
from idp.accounts.citizens import (
    AccountError,
    normalise_email,
)
from idp.cli.common import _department_or_fail, _result, cli, json_option
from idp.extensions import db
from idp.models import StaffMember
from idp.security import throttle
from idp.staff.accounts import StaffError, create_staff, disable_staff, reset_staff_second_factor


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

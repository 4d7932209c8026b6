"""`idp citizens ...`: citizen accounts."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp import audit
from idp.accounts.citizens import (
    AccountError,
    create_citizen,
    find_citizen_by_email,
)
from idp.accounts.identity.logic import forget_identity
from idp.accounts.second_factor.logic import (
    enrol_known_totp,
    parse_totp_secret,
    require_test_citizens_allowed,
)
from idp.accounts.sessions import end_every_session
from idp.cli.common import _result, cli, json_option
from idp.extensions import db


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
    audit.record("citizen.signed_out_by_staff", citizen_id=citizen.id, reason=reason.strip()[:200])
    click.echo(
        f"signed {citizen.email} out of {ended} browser session(s); departments registered "
        "for back-channel logout are being told"
    )


@citizens.command("forget-identity")
@click.argument("email")
@click.option("--reason", required=True, help="Why, for the audit record (e.g. a ticket number).")
@with_appcontext
def citizens_forget_identity(email: str, reason: str) -> None:
    """Erase a citizen's proved identity, identity checks and the record of what departments
    received: the citizen proves it again the next time a department asks."""

    citizen = find_citizen_by_email(email)
    if citizen is None:
        raise click.ClickException(f"no citizen has the email address {email!r}")
    if not reason.strip():
        raise click.ClickException("--reason must say why the identity is being erased")
    had = forget_identity(citizen.id, reason.strip(), "operator (cli)")
    if had:
        click.echo(f"erased the proved identity and identity checks of {citizen.email}")
    else:
        click.echo(f"{citizen.email} had no proved identity or identity check; nothing to erase")

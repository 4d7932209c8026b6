"""`idp keys ...`: the signing keys."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.common import _utc, cli
from idp.models.timestamps import utcnow
from idp.oidc.jwks import longest_stale_jwks
from idp.oidc.keys import (
    IDENTITY,
    KEY_SETS,
    KeyRotationError,
    all_key_rows,
    key_set_of,
    key_state,
    retire_signing_key,
    rotate_signing_keys,
    signer_ids,
)
from idp.settings import current_settings


@cli.group("keys")
def keys() -> None:
    """The IdP's signing keys: list, rotate, retire. ES256 and RS256 sign ID tokens (published
    at /jwks.json); "identity" (ES256) signs coreIdentityJWTs (published in the DID document)."""


def _warn_unseen_key(alg: str, kid: str, lead_time: int) -> None:
    """Warn that departments may not have fetched a key that signs this soon."""

    stale = longest_stale_jwks(current_settings().jwks_max_age)
    if lead_time < stale:
        click.echo(
            f"warning: {alg} key {kid} signs {lead_time} s after it was published, less than "
            f"the {stale} s a cached JWKS may be old (twice the max-age: the IdP's proxy, then "
            "the department): departments holding a cached JWKS will not know it until they "
            "fetch the JWKS again (most do on an unknown kid)",
            err=True,
        )


@keys.command("rotate")
@click.option(
    "--alg",
    type=click.Choice(list(KEY_SETS)),
    default=None,
    help=f"Rotate this algorithm's key only, or {IDENTITY} for the identity-signing key "
    "(default: all).",
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
        rotations = rotate_signing_keys([alg] if alg else KEY_SETS, lead)
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
            f"{key_set_of(row):<6} {row.kid:<44} {key_state(row, now, signing):<42} "
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
    stale = longest_stale_jwks(current_settings().jwks_max_age)
    click.echo(
        f"note: departments may trust a cached copy of the JWKS for up to {stale} s",
        err=True,
    )

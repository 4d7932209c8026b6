"""`idp logouts ...`: back-channel logout deliveries."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from idp.cli.common import _utc, cli
from idp.extensions import db
from idp.models import LogoutAttempt, LogoutDelivery


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

"""Your account: the departments that know you (with revoke), the browsers signed in (with
sign-out per device) and recent sign-ins. Every page needs the second factor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Response, abort, redirect, render_template, url_for

from idp import audit
from idp.accounts.guards import fully_signed_in
from idp.accounts.sessions import end_session
from idp.accounts.shared_forms import SignOutForm
from idp.extensions import db
from idp.models import BrowserSession, Citizen, Client, Consent, RefreshToken, Token
from idp.models.grant import revoke_live
from idp.models.timestamps import utcnow

bp = Blueprint("your_account", __name__)

HISTORY_LENGTH = 20


@dataclass(frozen=True)
class ConnectedService:
    """A department service the citizen agreed to share information with."""

    client_id: str
    name: str
    department: str | None
    scope: str
    granted_at: datetime


def connected_services(citizen: Citizen) -> list[ConnectedService]:
    """The services with a remembered consent, newest first."""
    rows = db.session.execute(
        db.select(Consent, Client)
        .join(Client, Client.client_id == Consent.client_id, isouter=True)
        .where(Consent.citizen_id == citizen.id)
        .order_by(Consent.granted_at.desc())
    ).all()
    return [
        ConnectedService(
            client_id=consent.client_id,
            name=client.client_name if client else consent.client_id,
            department=client.department.name if client and client.department else None,
            scope=consent.scope,
            granted_at=consent.granted_at,
        )
        for consent, client in rows
    ]


def revoke_service(citizen: Citizen, client_id: str) -> bool:
    """Forget the consent and end the service's live access and refresh tokens for this
    citizen."""
    consent = db.session.scalar(
        db.select(Consent).filter_by(citizen_id=citizen.id, client_id=client_id)
    )
    if consent is None:
        return False
    db.session.delete(consent)
    now = utcnow()
    for model in (Token, RefreshToken):
        revoke_live(model, model.citizen_id == citizen.id, model.client_id == client_id, now=now)
    db.session.commit()
    audit.record("consent.revoked", citizen_id=citizen.id, client_id=client_id)
    return True


def live_sessions(citizen: Citizen) -> list[BrowserSession]:
    """The browsers signed in now, most recently used first."""
    now = utcnow()
    return list(
        db.session.scalars(
            db.select(BrowserSession)
            .where(
                BrowserSession.citizen_id == citizen.id,
                BrowserSession.ended_at.is_(None),
                BrowserSession.expires_at > now,
            )
            .order_by(BrowserSession.last_active_at.desc())
        )
    )


def sign_in_history(citizen: Citizen) -> list[BrowserSession]:
    """Recent sign-ins (kept 30 days), newest first."""
    return list(
        db.session.scalars(
            db.select(BrowserSession)
            .where(BrowserSession.citizen_id == citizen.id)
            .order_by(BrowserSession.created_at.desc())
            .limit(HISTORY_LENGTH)
        )
    )


@bp.post("/account/services/<client_id>/revoke")
@fully_signed_in
def revoke(client_id: str, *, current) -> Response:
    """Stop sharing with one service; it must ask again next time."""
    if not SignOutForm().validate_on_submit():
        abort(400, "Nothing was changed: use the button on your account page.")
    if not revoke_service(current.citizen, client_id[:128]):
        abort(404, "That service does not know you.")
    return redirect(url_for("accounts.account", done="revoked"))


@bp.post("/account/sessions/<int:session_id>/sign-out")
@fully_signed_in
def sign_out_device(session_id: int, *, current) -> Response:
    """Sign out one browser (another device, or this one)."""
    if not SignOutForm().validate_on_submit():
        abort(400, "Nothing was changed: use the button on your account page.")
    target = db.session.get(BrowserSession, session_id)
    if target is None or target.citizen_id != current.citizen_id or target.ended_at is not None:
        abort(404, "That browser is not signed in.")
    # The current signed out is the target's (this browser's, or another's).
    audit.record(
        "citizen.signed_out",
        citizen_id=current.citizen_id,
        sid=target.sid,
        by="account_page",
        device="this" if target.id == current.id else "other",
        from_session=audit.session_ref(current.sid),
    )
    end_session(target, reason="signed out from account page")
    if target.id == current.id:
        return redirect(url_for("accounts.sign_in"))
    return redirect(url_for("accounts.account", done="signed-out"))


def account_context(session: BrowserSession) -> dict:
    """What the account page shows."""
    return {
        "services": connected_services(session.citizen),
        "sessions": live_sessions(session.citizen),
        "history": sign_in_history(session.citizen),
        "this_session_id": session.id,
    }


def render_account(session: BrowserSession, done: str | None) -> str:
    """The account page."""
    return render_template(
        "account.html", session=session, form=SignOutForm(), done=done, **account_context(session)
    )

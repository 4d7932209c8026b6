"""Your account: the start page (on the `accounts` blueprint, at /), with your proved identity,
the departments that know you (with revoke) and the verified details each received, the
browsers signed in (with sign-out per device) and recent sign-ins, and reporting something you
do not recognise. Every page needs the second factor."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import get_locale

from idp import audit
from idp.accounts.blueprint import bp as accounts_bp
from idp.accounts.guards import fully_signed_in
from idp.accounts.passkeys.logic import has_authenticator_app, has_passkey
from idp.accounts.second_factor.logic import recovery_codes_left
from idp.accounts.sessions import end_session
from idp.accounts.shared_forms import SignOutForm
from idp.accounts.text_messages import logic as texts
from idp.accounts.your_account.logic import (
    connected_services,
    detail_words,
    details_received,
    identity_status,
    live_sessions,
    report_unrecognised,
    revoke_service,
    sign_in_history,
)
from idp.extensions import db
from idp.models import BrowserSession, Citizen
from idp.settings import current_settings

bp = Blueprint("your_account", __name__)

# The verified details that stopped with the last "Stop sharing", kept in Flask's signed
# session cookie for the account page to name once (the consent that listed them is gone).
STOPPED_SHARING = "stopped_sharing"


@accounts_bp.get("/")
@fully_signed_in
def account(*, current) -> Response:
    """The signed-in start page (it needs the second factor)."""
    return render_account(current, request.args.get("done"))


@bp.post("/account/services/<client_id>/revoke")
@fully_signed_in
def revoke(client_id: str, *, current) -> Response:
    """Stop sharing with one service; it must ask again next time."""
    if not SignOutForm().validate_on_submit():
        abort(400, "Nothing was changed: use the button on your account page.")
    stopped = revoke_service(current.citizen, client_id[:128])
    if stopped is None:
        abort(404, "That service does not know you.")
    flask_session[STOPPED_SHARING] = stopped
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


@bp.route("/account/report", methods=["GET", "POST"])
@fully_signed_in
def report(*, current) -> Response:
    """Report something you do not recognise: a page that says what will happen, then signed
    out everywhere, and a page (and an email) saying what to do next."""
    form = SignOutForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400, "Nothing was changed: use the button on the page.")
        services = report_unrecognised(current, str(get_locale()))
        g.clear_session_cookie = True
        return render_template(
            "report_done.html", services=services, contact=current_settings().support_contact
        )
    return render_template("report.html", form=form, sessions=live_sessions(current.citizen))


def account_context(session: BrowserSession) -> dict:
    """What the account page shows."""
    return {
        "identity": identity_status(session.citizen),
        "details_received": details_received(session.citizen),
        "services": connected_services(session.citizen),
        "sessions": live_sessions(session.citizen),
        "history": sign_in_history(session.citizen),
        "this_session_id": session.id,
        "security": security_summary(session.citizen),
    }


def security_summary(citizen: Citizen) -> dict:
    """What the account page's "Sign-in and security" list says of each way to sign in, so
    the citizen sees at a glance which are set up (and never more of the phone number than
    its last digits)."""
    phone = texts.phone_number(citizen)
    return {
        "has_app": has_authenticator_app(citizen),
        "has_passkey": has_passkey(citizen),
        "phone_ending": texts.ending(phone.number) if phone else None,
        "codes_left": recovery_codes_left(citizen),
    }


def render_account(session: BrowserSession, done: str | None) -> str:
    """The account page."""
    # Popped only when there: popping touches the session, which would set its cookie again.
    stopped = flask_session.pop(STOPPED_SHARING) if STOPPED_SHARING in flask_session else None
    stopped_details = detail_words(stopped) if done == "revoked" and stopped else []
    return render_template(
        "account.html",
        session=session,
        form=SignOutForm(),
        done=done,
        stopped_details=stopped_details,
        **account_context(session),
    )

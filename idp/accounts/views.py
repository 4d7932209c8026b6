"""Citizen pages: sign in, sign up, sign out, and the signed-in start page."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp import audit
from idp.accounts.forms import SignInForm, SignOutForm, SignUpForm
from idp.accounts.services import AccountError, authenticate_citizen, create_citizen
from idp.accounts.sessions import current_session, end_session, start_session
from idp.models.client import find_client
from idp.oidc.claims import released_claims
from idp.oidc.journey import find_interaction, interaction_params

bp = Blueprint("accounts", __name__)


def _journey_context(handle: str | None) -> dict:
    """The department a journey is for, and the login_hint it carried."""
    interaction = find_interaction(handle)
    if interaction is None:
        return {"journey": None, "client": None, "claims": [], "login_hint": None}
    params = interaction_params(interaction)
    client = find_client(params.get("client_id", ""))
    return {
        "journey": interaction.handle,
        "client": client,
        "claims": released_claims(client, params.get("scope", "")) if client else [],
        "login_hint": params.get("login_hint"),
    }


def _continue(journey: str | None) -> Response:
    """Back to the journey that sent the citizen here, or to the account page."""
    if journey and find_interaction(journey) is not None:
        return redirect(url_for("authorize.resume", journey=journey))
    return redirect(url_for("accounts.account"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    """Email and password; one message for every failure, so accounts cannot be discovered."""
    handle = request.values.get("journey")
    context = _journey_context(handle)
    form = SignInForm()
    error = None
    if request.method == "GET":
        form.journey.data = context["journey"]
        session = current_session()
        if context["login_hint"] and len(context["login_hint"]) <= 320:
            form.email.data = context["login_hint"]
        elif session is not None:
            form.email.data = session.citizen.email
    elif form.validate_on_submit():
        citizen = authenticate_citizen(form.email.data, form.password.data)
        if citizen is not None:
            session = start_session(citizen, amr=["pwd"])
            audit.record("sign_in.succeeded", citizen_id=citizen.id, amr=session.amr)
            return _continue(form.journey.data)
        error = _("Enter the correct email address and password")
    status = 400 if request.method == "POST" else 200
    return render_template("sign_in.html", form=form, error=error, **context), status


@bp.route("/sign-up", methods=["GET", "POST"])
def sign_up() -> Response:
    """Create an account, then continue the journey signed in."""
    handle = request.values.get("journey")
    context = _journey_context(handle)
    form = SignUpForm()
    error_field = None
    if request.method == "GET":
        form.journey.data = context["journey"]
    elif form.validate_on_submit():
        try:
            citizen = create_citizen(
                form.email.data,
                form.password.data,
                given_name=form.given_name.data,
                family_name=form.family_name.data,
            )
        except AccountError as exc:
            error_field = exc.field
            getattr(form, exc.field or "email").errors.append(str(exc))
        else:
            start_session(citizen, amr=["pwd"])
            return _continue(form.journey.data)
    status = 400 if request.method == "POST" else 200
    return (
        render_template("sign_up.html", form=form, error_field=error_field, **context),
        status,
    )


@bp.get("/")
def account() -> Response:
    """The signed-in start page."""
    session = current_session()
    if session is None:
        return redirect(url_for("accounts.sign_in"))
    return render_template("account.html", session=session, form=SignOutForm())


@bp.post("/sign-out")
def sign_out() -> Response:
    """End this browser's session at the IdP."""
    form = SignOutForm()
    session = current_session()
    if form.validate_on_submit() and session is not None:
        audit.record("sign_out", citizen_id=session.citizen_id)
        end_session(session, reason="signed out")
    g.clear_session_cookie = True
    return render_template("signed_out.html")

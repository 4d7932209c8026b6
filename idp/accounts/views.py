"""Citizen pages: sign in, sign up, sign out, and the signed-in start page."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime
from flask_babel import gettext as _

from idp import audit
from idp.accounts import email_codes, recent_password
from idp.accounts.email_steps import code_page, email_page, send_again_page, send_code
from idp.accounts.forms import (
    SignInForm,
    SignOutForm,
    SignUpDetailsForm,
)
from idp.accounts.guards import fully_signed_in
from idp.accounts.levels import session_vector
from idp.accounts.services import (
    AccountError,
    authenticate_citizen,
    create_citizen,
    find_citizen_by_email,
)
from idp.accounts.sessions import current_session, end_session, start_session
from idp.accounts.your_account import render_account
from idp.mail import send_in_background
from idp.models.client import registered_client
from idp.models.timestamps import utcnow
from idp.oidc.claims import released_claims
from idp.oidc.journey import find_interaction, interaction_params
from idp.security import devices, throttle
from idp.security.passwords import enough_alone
from idp.settings import current_settings

bp = Blueprint("accounts", __name__)


def journey_context(handle: str | None) -> dict:
    """The department a journey is for, and the login_hint it carried."""
    interaction = find_interaction(handle)
    if interaction is None:
        return {"journey": None, "client": None, "claims": [], "login_hint": None}
    params = interaction_params(interaction)
    client = registered_client(params.get("client_id", ""))
    return {
        "journey": interaction.handle,
        "client": client,
        "claims": released_claims(client, params.get("scope", "")) if client else [],
        "login_hint": params.get("login_hint"),
    }


def continue_journey(journey: str | None) -> Response:
    """Back to the journey that sent the citizen here, or to the account page."""
    if journey and find_interaction(journey) is not None:
        return redirect(url_for("authorize.resume", journey=journey))
    return redirect(url_for("accounts.account"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    """Email and password; one message for every failure, so accounts cannot be discovered."""
    handle = request.values.get("journey")
    context = journey_context(handle)
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
        # Throttled before argon2 runs, by the address typed, so an account that does not
        # exist is throttled exactly like one that does (NIST SP 800-63B 5.2.2).
        key = throttle.email_key(form.email.data)
        ip = request.remote_addr or ""
        # A browser this account signed in on before is judged by its own counters, so
        # failures from elsewhere cannot lock its owner out (OWASP device cookies).
        device = devices.presented(key)
        decision = throttle.check("password", key, ip, device=device)
        if not decision.allowed:
            return _throttled(decision, form.email.data, context)
        citizen = authenticate_citizen(form.email.data, form.password.data)
        if citizen is not None:
            throttle.record_success("password", key, device=device)
            # Under 15 characters, the password is not enough alone, even for Cl (levels.py).
            alone = enough_alone(form.password.data)
            session = start_session(citizen, amr=["pwd"], password_enough_alone=alone)
            recent_password.typed(session)
            audit.record(
                "sign_in.succeeded",
                citizen_id=citizen.id,
                sid=session.sid,
                level=session_vector(session),
                methods=session.amr,
            )
            if form.journey.data and find_interaction(form.journey.data) is not None:
                # The journey decides whether its department needs the second factor.
                return devices.remember(continue_journey(form.journey.data), key)
            return devices.remember(redirect(url_for("two_factor.second_factor")), key)
        decision = throttle.record_failure("password", key, ip, device=device)
        if decision.locked:
            return _throttled(decision, form.email.data, context)
        error = _("Enter the correct email address and password")
    status = 400 if request.method == "POST" else 200
    return render_template("sign_in.html", form=form, error=error, **context), status


def _throttled(decision: throttle.Decision, email: str, context: dict) -> tuple[str, int, dict]:
    """429: the same page for a known and an unknown address; the owner hears of a lock."""
    citizen = find_citizen_by_email(email)
    # The citizen's id when the account exists; never the address typed (nor a hash of it).
    who = {"citizen_id": citizen.id if citizen else None}
    lockout = throttle.limits_for("password").lockout_seconds
    throttle.audit_refusal(decision, "password", lockout, **who)
    # Claimed whether or not the account exists, so both take the same time. The cap is
    # reached once until a reset, so its email is always sent.
    key = throttle.email_key(email)
    tell = decision.newly_locked and (
        decision.capped or throttle.claim_lockout_email("password", key)
    )
    if tell and citizen is not None:
        _tell_owner_of_lockout(citizen.email, lockout, capped=decision.capped)
    page = render_template(
        "throttled.html",
        decision=decision,
        wait=throttle.wait_in_words(decision.retry_after),
        lockout=throttle.wait_in_words(lockout),
        **context,
    )
    return page, 429, {"Retry-After": str(decision.retry_after)}


def _tell_owner_of_lockout(address: str, lockout: int, *, capped: bool = False) -> None:
    """Email the owner that their account was locked: when, and what to do (at most once a
    day, throttle_lockout_email_interval).

    Sent in the background, so the page takes as long for an address that has no account.
    """
    if capped:
        _tell_owner_of_cap(address)
        return
    wait = throttle.wait_in_words(lockout)
    subject = _("Someone tried to sign in to your account too many times")
    body = "\n\n".join(
        [
            _(
                "Someone entered the wrong password for your government sign in account too"
                " many times, most recently at %(time)s.",
                time=format_datetime(utcnow(), "HH:mm 'UTC', d MMMM yyyy"),
            ),
            _(
                "To protect your account, we have locked it for %(wait)s. Nobody has signed"
                " in to it.",
                wait=wait,
            ),
            _("If this was you, wait %(wait)s and then sign in again.", wait=wait),
            _("The browsers you have signed in on before can still sign in."),
            _(
                "If this was not you, someone else may know your email address. Your account"
                " is safe while your password is secret. If you use the same password for"
                " another account, change it there."
            ),
        ]
    )
    send_in_background(address, subject, body)


def _tell_owner_of_cap(address: str) -> None:
    """Email the owner that too many wrong passwords locked the account until a reset."""
    issuer = current_settings().issuer
    subject = _("Someone tried to sign in to your account too many times")
    body = "\n\n".join(
        [
            _(
                "Someone has entered the wrong password for your government sign in account"
                " too many times, most recently at %(time)s.",
                time=format_datetime(utcnow(), "HH:mm 'UTC', d MMMM yyyy"),
            ),
            _(
                "To protect your account, we have locked it until its password is reset."
                " Nobody has signed in to it. The browsers you have signed in on before can"
                " still sign in."
            ),
            _(
                "To open it anywhere else, reset your password at %(url)s.",
                url=f"{issuer}/reset-password",
            ),
        ]
    )
    send_in_background(address, subject, body)


@bp.route("/sign-up", methods=["GET", "POST"])
def sign_up() -> Response:
    """Creating an account, step 1: the email address, which gets a code."""
    context = journey_context(request.values.get("journey"))
    next_url = url_for("accounts.sign_up_code", journey=context["journey"])
    return email_page("sign_up.html", _send_sign_up_code, next_url, **context)


def _sign_up_letter(code: str | None) -> tuple[str, str]:
    return (
        _("Your code to create an account"),
        "\n\n".join(
            [
                _("Your code to create your government sign in account is %(code)s.", code=code),
                _("Enter it on the page where you asked for it. It expires in 15 minutes."),
                _(
                    "If you did not ask to create an account, you can ignore this email:"
                    " nobody can create one with your address without this code."
                ),
            ]
        ),
    )


def _already_registered_letter(code: str | None) -> tuple[str, str]:
    issuer = current_settings().issuer
    return (
        _("You already have a government sign in account"),
        "\n\n".join(
            [
                _(
                    "Someone asked to create a government sign in account with this email"
                    " address. You already have an account, so we did not create another."
                ),
                _("To sign in, go to %(url)s", url=f"{issuer}/sign-in"),
                _(
                    "If you have forgotten your password, reset it at %(url)s",
                    url=f"{issuer}/reset-password",
                ),
                _("If this was not you, you can ignore this email. Your account has not changed."),
            ]
        ),
    )


def _sign_up_urls(journey: str | None) -> dict:
    return {
        "action": url_for("accounts.sign_up_code", journey=journey),
        "resend": url_for("accounts.sign_up_resend", journey=journey),
        "restart": url_for("accounts.sign_up", journey=journey),
    }


def _send_sign_up_code(address: str):
    existing = find_citizen_by_email(address)
    # The same page either way: sign-up never tells whether an address has an account.
    # The owner of a taken address hears by email instead, and no code will work.
    return send_code(
        "sign_up",
        address,
        _sign_up_letter if existing is None else _already_registered_letter,
        deliverable=existing is None,
    )


@bp.route("/sign-up/check-email", methods=["GET", "POST"])
def sign_up_code() -> Response:
    """Creating an account, step 2: the code from the email."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.pending("sign_up")
    if row is None:
        return redirect(url_for("accounts.sign_up", journey=context["journey"]))
    return code_page(
        row,
        _sign_up_urls(context["journey"]),
        lambda: redirect(url_for("accounts.sign_up_details", journey=context["journey"])),
        **context,
    )


@bp.post("/sign-up/send-again")
def sign_up_resend() -> Response:
    """Another code for the same address (the old one stops working)."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.pending("sign_up")
    if row is None:
        return redirect(url_for("accounts.sign_up", journey=context["journey"]))
    urls = _sign_up_urls(context["journey"])
    return send_again_page(row, urls, lambda: _send_sign_up_code(row.email), **context)


@bp.route("/sign-up/your-details", methods=["GET", "POST"])
def sign_up_details() -> Response:
    """Creating an account, step 3 (email proven): name and password, then the second factor."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.verified("sign_up")
    if row is None:
        return redirect(url_for("accounts.sign_up", journey=context["journey"]))
    form = SignUpDetailsForm()
    if request.method == "GET":
        form.journey.data = context["journey"]
    elif form.validate_on_submit():
        try:
            citizen = create_citizen(
                row.email,
                form.password.data,
                given_name=form.given_name.data,
                family_name=form.family_name.data,
                email_code=row,
            )
        except AccountError as exc:
            if exc.field == "password":
                form.password.errors.append(str(exc))
            else:
                email_codes.forget("sign_up")
                return render_template("error.html", message=str(exc)), 400
        else:
            email_codes.forget("sign_up")
            # Every account has a second factor: set it up straight away.
            recent_password.typed(start_session(citizen, amr=["pwd"]))
            return redirect(url_for("two_factor.setup", journey=form.journey.data or None))
    status = 400 if request.method == "POST" else 200
    page = render_template("sign_up_details.html", form=form, email=row.email, **context)
    return page, status


@bp.get("/")
@fully_signed_in
def account(*, current) -> Response:
    """The signed-in start page (it needs the second factor)."""
    return render_account(current, request.args.get("done"))


@bp.post("/sign-out")
def sign_out() -> Response:
    """End this browser's session at the IdP."""
    form = SignOutForm()
    session = current_session()
    if form.validate_on_submit() and session is not None:
        audit.record(
            "citizen.signed_out",
            citizen_id=session.citizen_id,
            sid=session.sid,
            by="sign_out_button",
        )
        end_session(session, reason="signed out")
    if form.validate_on_submit():
        email_codes.forget_every_journey()
    g.clear_session_cookie = True
    return render_template("signed_out.html")

"""Signing in with an email address, then a password on the next page (the `accounts`
blueprint), and signing out. Too many wrong passwords lock the account for a while
(throttle.py); its owner hears by email (logic.py)."""

from __future__ import annotations

from flask import Response, g, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _

from idp import audit
from idp.accounts import recent_password
from idp.accounts.blueprint import bp
from idp.accounts.citizens import authenticate_citizen, find_citizen_by_email
from idp.accounts.email_codes import logic as email_codes
from idp.accounts.levels import session_vector
from idp.accounts.page_helpers import continue_journey, journey_context
from idp.accounts.sessions import current_session, start_session
from idp.accounts.shared_forms import SignOutForm
from idp.accounts.sign_in.forms import SignInEmailForm, SignInPasswordForm
from idp.accounts.sign_in.logic import sign_out_browser, tell_owner_of_lockout
from idp.oidc.journey import find_interaction
from idp.security import devices, throttle
from idp.security.passwords import enough_alone

# The address typed on the first page, kept for the password page in the browser's signed
# Flask session (never in a URL, which would end up in logs), forgotten once signed in.
TYPED_EMAIL = "sign_in_email"


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    """The email address, on its own page (one thing per page, as GOV.UK One Login asks).

    Nothing here looks the address up: every address goes on to the password page alike, so
    the page never says whether an account exists."""
    context = journey_context(request.values.get("journey"))
    form = SignInEmailForm()
    if request.method == "GET":
        form.journey.data = context["journey"]
        form.email.data = _address_to_suggest(context)
    elif form.validate_on_submit():
        flask_session[TYPED_EMAIL] = form.email.data.strip()
        return redirect(url_for("accounts.sign_in_password", journey=form.journey.data or None))
    status = 400 if request.method == "POST" else 200
    return render_template("sign_in.html", form=form, **context), status


def _address_to_suggest(context: dict) -> str | None:
    """The department's login_hint, else this browser's signed-in citizen, else the address
    typed a moment ago (coming back from the password page to change it)."""
    session = current_session()
    if context["login_hint"] and len(context["login_hint"]) <= 320:
        return context["login_hint"]
    if session is not None:
        return session.citizen.email
    return flask_session.get(TYPED_EMAIL)


@bp.route("/sign-in/password", methods=["GET", "POST"])
def sign_in_password() -> Response:
    """The password for the address typed on the page before; one message for every failure,
    so accounts cannot be discovered."""
    handle = request.values.get("journey")
    email = flask_session.get(TYPED_EMAIL)
    if not email:
        # Come straight here (or the browser session ended): the address comes first.
        return redirect(url_for("accounts.sign_in", journey=handle or None))
    context = journey_context(handle)
    form = SignInPasswordForm()
    if request.method == "GET":
        form.journey.data = context["journey"]
    elif form.validate_on_submit():
        # Throttled before argon2 runs, by the address typed, so an account that does not
        # exist is throttled exactly like one that does (NIST SP 800-63B 5.2.2).
        key = throttle.email_key(email)
        ip = request.remote_addr or ""
        # A browser this account signed in on before is judged by its own counters, so
        # failures from elsewhere cannot lock its owner out (OWASP device cookies).
        device = devices.presented(key)
        decision = throttle.check("password", key, ip, device=device)
        if not decision.allowed:
            return _throttled(decision, email, context)
        citizen = authenticate_citizen(email, form.password.data)
        if citizen is not None:
            flask_session.pop(TYPED_EMAIL, None)
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
            return _throttled(decision, email, context)
        # Beside the field and in the summary; the same words whether or not the address
        # has an account.
        form.password.errors.append(_("Enter the correct password for this email address"))
    status = 400 if request.method == "POST" else 200
    return render_template("sign_in_password.html", form=form, email=email, **context), status


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
        tell_owner_of_lockout(citizen.email, lockout, capped=decision.capped)
    page = render_template(
        "throttled.html",
        decision=decision,
        wait=throttle.wait_in_words(decision.retry_after),
        lockout=throttle.wait_in_words(lockout),
        **context,
    )
    return page, 429, {"Retry-After": str(decision.retry_after)}


@bp.post("/sign-out")
def sign_out() -> Response:
    """End this browser's session at the IdP; the page names the services signed out too."""
    form = SignOutForm()
    session = current_session()
    services = []
    if form.validate_on_submit() and session is not None:
        audit.record(
            "citizen.signed_out",
            citizen_id=session.citizen_id,
            sid=session.sid,
            by="sign_out_button",
        )
        services = sign_out_browser(session, reason="signed out")
    if form.validate_on_submit():
        email_codes.forget_every_journey()
        flask_session.pop(TYPED_EMAIL, None)
    g.clear_session_cookie = True
    return render_template("signed_out.html", services=services)

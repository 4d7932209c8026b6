"""What the citizen's pages share: the journey a page is part of, where to go once a step is
done, and the current password asked again before a change (re-authentication).

Every feature's pages.py uses these; the logic and forms below them never do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp import audit
from idp.accounts import recent_password
from idp.accounts.sessions import current_session
from idp.models import Citizen
from idp.models.client import registered_client
from idp.oidc.claims import released_claims
from idp.oidc.journey import find_interaction, interaction_params
from idp.security import devices, throttle
from idp.security.passwords import verify_password


@dataclass(frozen=True)
class Refusal:
    """Why a step did not go ahead: the message for the page, its status and headers."""

    message: str
    status: int = 400
    headers: dict | None = None


# -- The journey ------------------------------------------------------------------------------


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


# -- The current password, asked again --------------------------------------------------------


def confirm_password(citizen: Citizen, password: str) -> Refusal | None:
    """Re-authentication: the current password, throttled as sign-in is, so a browser the
    account signed in on is judged by its own counters (devices.py): guessing elsewhere cannot
    lock the owner out of their own account pages."""
    key = throttle.email_key(citizen.email)
    ip = request.remote_addr or ""
    device = devices.presented(key)
    decision = throttle.check("password", key, ip, device=device)
    if decision.allowed:
        if verify_password(citizen.password_hash, password).ok:
            throttle.record_success("password", key, device=device)
            session = current_session()
            if session is not None:
                # Typed moments ago: enough to add a passkey or a first second factor next.
                recent_password.typed(session)
            return None
        audit.record(
            "reauthentication.failed",
            outcome="failure",
            reason="wrong_password",
            citizen_id=citizen.id,
            methods=["pwd"],
        )
        decision = throttle.record_failure("password", key, ip, device=device)
        if not decision.locked:
            return Refusal(_("Your current password is not right"))
    lockout = throttle.limits_for("password").lockout_seconds
    throttle.audit_refusal(decision, "password", lockout, citizen_id=citizen.id)
    return Refusal(
        _(
            "Too many wrong passwords. Wait %(wait)s and try again.",
            wait=throttle.wait_in_words(decision.retry_after),
        ),
        429,
        {"Retry-After": str(decision.retry_after)},
    )


def with_password(form, citizen: Citizen, act: Callable, template: str, **context):
    """A page whose form needs the current password: act() runs once the form is valid and
    the password right, and returns a response (done), a Refusal (shown on the page) or None
    (it put errors on the form's fields)."""
    refusal = None
    error = None
    if form.validate_on_submit():
        refusal = confirm_password(citizen, form.current_password.data)
        if refusal is None:
            outcome = act()
            if outcome is not None and not isinstance(outcome, Refusal):
                return outcome
            refusal = outcome
            error = refusal.message if refusal else None
        else:
            # About the password typed: beside its field (and in the error summary).
            form.current_password.errors.append(refusal.message)
    status = refusal.status if refusal else (400 if form.is_submitted() else 200)
    headers = refusal.headers if refusal else None
    return page(template, status, headers, form=form, error=error, **context)


def page(template: str, status: int = 200, headers: dict | None = None, **context):
    """A rendered template with its status and headers."""
    return render_template(template, **context), status, headers or {}

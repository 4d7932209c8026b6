"""The second step of signing in, and setting up a second factor.

A password alone makes a "Cl" session. A department that needs "Cl.Cm" (the default) sends
the citizen here: a code from their authenticator app (or a recovery code) steps the session
up with a new session identifier. Every new account sets up an app straight after sign-up.
Setting up the first second factor (an app, or a passkey) needs the password typed moments ago
(recent_password.py): straight after sign-in, sign-up or a reset, or on the password step here.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp import audit
from idp.accounts import recent_password
from idp.accounts.guards import signed_in
from idp.accounts.page_helpers import continue_journey, journey_context, with_password
from idp.accounts.passkeys.logic import has_authenticator_app, has_passkey
from idp.accounts.second_factor.logic import (
    begin_totp_enrolment,
    check_totp,
    confirm_totp,
    has_second_factor,
    provisioning_uri,
    qr_code_svg,
    step_up,
    tell_owner_of_recovery_code,
    totp_credential,
    totp_secret,
    use_recovery_code,
)
from idp.accounts.shared_forms import CodeForm, PasswordOnlyForm, SignOutForm
from idp.accounts.text_messages.logic import ending, phone_number
from idp.security import throttle

bp = Blueprint("two_factor", __name__)


def _code_step(
    session, kind: str, template: str, verify, wrong_code_message: str, after=None, choices=None
):
    """A page where the signed-in citizen (session: the password step's) types a code:
    checked, throttled, then stepped up.

    choices(citizen), when given, adds what else the page offers (such as a passkey).
    """
    factor = "recovery_code" if kind == "recovery" else "totp"
    context = journey_context(request.values.get("journey"))
    if kind == "second_factor" and not has_second_factor(session.citizen):
        return redirect(url_for("two_factor.setup", journey=context["journey"]))
    form = CodeForm()
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        key = f"citizen:{session.citizen_id}"
        ip = request.remote_addr or ""
        decision = throttle.check(kind, key, ip)
        if decision.allowed and verify(session.citizen, form.code.data):
            throttle.record_success(kind, key)
            if after is not None:
                after(session.citizen)
            step_up(session, "otp", factor)
            return continue_journey(context["journey"])
        if decision.allowed:
            decision = throttle.record_failure(kind, key, ip)
            audit.record(
                "second_factor.failed",
                outcome="failure",
                reason="wrong_code",
                citizen_id=session.citizen_id,
                factor=factor,
                during="sign_in",
            )
        if not decision.allowed:
            # Refused before the code was checked, or this failure locked the second step.
            lockout = throttle.limits_for(kind).lockout_seconds
            throttle.audit_refusal(decision, kind, lockout, citizen_id=session.citizen_id)
        if decision.allowed:
            # Beside the field (and linked from the summary), with the wrong code cleared.
            form.code.errors.append(wrong_code_message)
            form.code.data = ""
            status = 400
        else:
            error = _(
                "Too many wrong codes. Wait %(wait)s and try again.",
                wait=throttle.wait_in_words(decision.retry_after),
            )
            status, headers = 429, {"Retry-After": str(decision.retry_after)}
    elif form.is_submitted():
        status = 400
    extra = choices(session.citizen) if choices else {}
    page = render_template(
        template,
        form=form,
        error=error,
        signed_in_as=session.citizen.email,
        sign_out_form=SignOutForm(),
        **context,
        **extra,
    )
    return page, status, headers


def _second_factor_choices(citizen) -> dict:
    """What the second-factor page offers: the app's code, a passkey, a code by text message
    (a link to its page, with the number's last digits)."""
    phone = phone_number(citizen)
    return {
        "has_authenticator_app": has_authenticator_app(citizen),
        "has_passkey": has_passkey(citizen),
        "phone_ending": ending(phone.number) if phone else None,
    }


@bp.route("/sign-in/second-factor", methods=["GET", "POST"])
@signed_in
def second_factor(*, current) -> Response:
    """Enter the code from the authenticator app (a citizen whose only second factor is a
    phone goes straight to the code sent by text message)."""
    citizen = current.citizen
    only_a_phone = not has_authenticator_app(citizen) and not has_passkey(citizen)
    if only_a_phone and phone_number(citizen) is not None:
        journey = journey_context(request.values.get("journey"))["journey"]
        return redirect(url_for("text_messages.sign_in_code", journey=journey))
    return _code_step(
        current,
        "second_factor",
        "second_factor.html",
        check_totp,
        _("Enter the 6-digit code your authenticator app shows now"),
        choices=_second_factor_choices,
    )


@bp.route("/sign-in/recovery-code", methods=["GET", "POST"])
@signed_in
def recovery_code(*, current) -> Response:
    """Use one of the ten recovery codes instead of the app."""
    return _code_step(
        current,
        "recovery",
        "recovery_code.html",
        use_recovery_code,
        _("Enter one of your recovery codes, like abcde-23456"),
        after=tell_owner_of_recovery_code,
        choices=_second_factor_choices,
    )


@bp.route("/two-factor/setup", methods=["GET", "POST"])
@signed_in
def setup(*, current) -> Response:
    """Set up an authenticator app: scan the QR code (or type the key), then type a code."""
    context = journey_context(request.values.get("journey"))
    citizen = current.citizen
    if has_second_factor(citizen):
        return continue_journey(context["journey"])
    if not recent_password.recent(current):
        # A session alone (a cookie left in a browser, or taken from one) adds no second
        # factor: it would sign in as the owner, and keep the owner out.
        return redirect(url_for("two_factor.setup_password", journey=context["journey"]))
    if request.method == "GET":
        # The window runs from the page the citizen sets up the app from (it takes a while).
        recent_password.typed(current)
    form = CodeForm()
    error = None
    status = 200
    credential = totp_credential(citizen)
    if request.method == "GET" or credential is None:
        secret = begin_totp_enrolment(citizen)
    else:
        secret = totp_secret(credential)
    if form.validate_on_submit():
        codes = confirm_totp(citizen, form.code.data)
        if codes is not None:
            step_up(current, "otp", "totp", during="setup")
            return render_template("recovery_codes.html", codes=codes, **context)
        audit.record(
            "second_factor.failed",
            outcome="failure",
            reason="wrong_code",
            citizen_id=citizen.id,
            factor="totp",
            during="setup",
        )
        form.code.errors.append(_("Enter the 6-digit code your authenticator app shows now"))
        form.code.data = ""
        status = 400
    elif form.is_submitted():
        status = 400
    uri = provisioning_uri(citizen, secret)
    return (
        render_template(
            "two_factor_setup.html",
            form=form,
            error=error,
            secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            qr_code=qr_code_svg(uri),
            offer_passkey=True,
            **context,
        ),
        status,
    )


@bp.route("/two-factor/setup/password", methods=["GET", "POST"])
@signed_in
def setup_password(*, current) -> Response:
    """The current password, when it was not typed moments ago, before the first second factor
    (the account pages' password step: throttled, audited)."""
    context = journey_context(request.values.get("journey"))
    if has_second_factor(current.citizen):
        return continue_journey(context["journey"])
    form = PasswordOnlyForm()
    if request.method == "GET":
        form.journey.data = context["journey"]
    return with_password(
        form,
        current.citizen,
        lambda: redirect(url_for("two_factor.setup", journey=context["journey"])),
        "two_factor_setup_password.html",
        **context,
    )

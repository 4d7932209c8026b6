"""Recovery: a forgotten password reset by email, which still needs the second factor.

1. /reset-password: the address. A code goes to it only if it has an account; the next page
   looks the same either way.
2. /reset-password/check-email: the code (proves the citizen reads the address).
3. /reset-password/second-factor: a code from the authenticator app, or a recovery code; or
   /reset-password/text-message: a code sent by text message to the confirmed number (a reset
   must not let someone who only has the mailbox in). A passkey cannot reset a password here:
   an account whose only second factor is a passkey signs in with it and changes the password
   from the account pages.
4. /reset-password/new-password: the new password. Every browser is signed out and every
   department's access token ended; the owner is told by email; this browser is signed in.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from idp import audit
from idp.accounts import recent_password
from idp.accounts.citizens import find_citizen_by_email
from idp.accounts.email_codes import logic as email_codes
from idp.accounts.email_codes.pages import code_page, email_page, send_again_page, send_code
from idp.accounts.page_helpers import Refusal, continue_journey, journey_context
from idp.accounts.passkeys.logic import (
    citizen_passkeys,
    passkeys_removed,
    remove_every_passkey,
)
from idp.accounts.recovery.logic import reset_letter, tell_owner_of_new_password
from idp.accounts.second_factor.logic import (
    check_totp,
    has_second_factor,
    recovery_codes_left,
    totp_credential,
    use_recovery_code,
)
from idp.accounts.sessions import end_every_session, start_session
from idp.accounts.shared_forms import CodeForm, NewPasswordForm
from idp.accounts.text_messages import logic as texts
from idp.accounts.text_messages.pages import check_code, phone_code_page, resend_code
from idp.accounts.text_messages.pages import send_code as send_text
from idp.extensions import db
from idp.models import Citizen
from idp.security import throttle
from idp.security.passwords import (
    PasswordPolicyError,
    check_password_policy,
    enough_alone,
    hash_password,
)

bp = Blueprint("recovery", __name__)

PURPOSE = "reset_password"
# Which second factor this browser proved for its reset journey: {"code": id, "amr": method}.
PROVEN = "reset_password:second_factor"
# The purpose of a code sent by text message in a reset (text_messages/logic.py).
TEXT_PURPOSE = "reset"


def _urls(journey: str | None) -> dict:
    return {
        "action": url_for("recovery.check_email", journey=journey),
        "resend": url_for("recovery.send_again", journey=journey),
        "restart": url_for("recovery.start", journey=journey),
    }


def _send(address: str):
    citizen = find_citizen_by_email(address)
    return send_code(
        PURPOSE,
        address,
        reset_letter,
        citizen_id=citizen.id if citizen else None,
        deliverable=citizen is not None,
    )


@bp.route("/reset-password", methods=["GET", "POST"])
def start() -> Response:
    """Step 1: the address of the account."""
    context = journey_context(request.values.get("journey"))

    def send(address: str):
        session.pop(PROVEN, None)
        texts.forget(TEXT_PURPOSE)
        return _send(address)

    next_url = url_for("recovery.check_email", journey=context["journey"])
    return email_page("reset_password.html", send, next_url, **context)


@bp.route("/reset-password/check-email", methods=["GET", "POST"])
def check_email() -> Response:
    """Step 2: the code from the email."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.pending(PURPOSE)
    if row is None:
        return redirect(url_for("recovery.start", journey=context["journey"]))
    return code_page(
        row,
        _urls(context["journey"]),
        lambda: redirect(url_for("recovery.second_factor", journey=context["journey"])),
        kind="reset",
        **context,
    )


@bp.post("/reset-password/send-again")
def send_again() -> Response:
    """Another code for the same address."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.pending(PURPOSE)
    if row is None:
        return redirect(url_for("recovery.start", journey=context["journey"]))
    return send_again_page(row, _urls(context["journey"]), lambda: _send(row.email), **context)


def _verified_citizen() -> tuple[object, Citizen] | tuple[None, None]:
    """This browser's reset journey with its code typed, and the account it resets."""
    row = email_codes.verified(PURPOSE)
    if row is None or row.citizen_id is None:
        return None, None
    citizen = db.session.get(Citizen, row.citizen_id)
    if citizen is None:
        return None, None
    return row, citizen


def _has_app(citizen: Citizen) -> bool:
    credential = totp_credential(citizen)
    return credential is not None and credential.confirmed_at is not None


def _has_recovery_codes(citizen: Citizen) -> bool:
    return recovery_codes_left(citizen) > 0


def _ways(citizen: Citizen) -> dict:
    """The second factors a reset can take: the app, a code by text message, a recovery code
    (a passkey cannot: see the module's docstring)."""
    return {
        "has_app": _has_app(citizen),
        "has_phone": texts.phone_number(citizen) is not None,
        "has_codes": _has_recovery_codes(citizen),
    }


def _no_way_to_reset(row, citizen: Citizen, journey: str | None) -> Response:
    """Neither the app, a phone nor a recovery code: a passkey-only account must sign in with
    it (the email alone must not be enough); one with no second factor at all goes on (the
    email alone proves it, and a second factor is set up straight after)."""
    if has_second_factor(citizen):  # neither the app nor a phone: passkeys
        message = _(
            "Your account is protected by a passkey. Sign in with your passkey, then"
            " change your password from your account page."
        )
        return render_template("error.html", message=message), 403
    session[PROVEN] = {"code": row.id, "amr": None}
    return redirect(url_for("recovery.new_password", journey=journey))


@bp.route("/reset-password/second-factor", methods=["GET", "POST"])
def second_factor() -> Response:
    """Step 3: the authenticator app's code, or a recovery code (?method=recovery); a citizen
    without the app gets a code by text message, when they have a phone."""
    context = journey_context(request.values.get("journey"))
    row, citizen = _verified_citizen()
    if row is None:
        return redirect(url_for("recovery.start", journey=context["journey"]))
    ways = _ways(citizen)
    has_app, has_codes = ways["has_app"], ways["has_codes"]
    if not any(ways.values()):
        return _no_way_to_reset(row, citizen, context["journey"])
    if request.values.get("method") == "recovery" and has_codes:
        method = "recovery"
    elif has_app:
        method = "app"
    elif ways["has_phone"]:
        return redirect(url_for("recovery.text_message", journey=context["journey"]))
    else:
        method = "recovery"
    form = CodeForm()
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        kind = "recovery" if method == "recovery" else "second_factor"
        key = f"citizen:{citizen.id}"
        ip = request.remote_addr or ""
        decision = throttle.check(kind, key, ip)
        if decision.allowed:
            verify = use_recovery_code if method == "recovery" else check_totp
            factor = "recovery_code" if method == "recovery" else "totp"
            if verify(citizen, form.code.data):
                throttle.record_success(kind, key)
                session[PROVEN] = {"code": row.id, "amr": "otp"}
                audit.record(
                    "second_factor.succeeded",
                    citizen_id=citizen.id,
                    factor=factor,
                    during="password_reset",
                )
                return redirect(url_for("recovery.new_password", journey=context["journey"]))
            audit.record(
                "second_factor.failed",
                outcome="failure",
                reason="wrong_code",
                citizen_id=citizen.id,
                factor=factor,
                during="password_reset",
            )
            decision = throttle.record_failure(kind, key, ip)
            if not decision.locked:
                decision = throttle.ALLOWED
        if not decision.allowed:
            lockout = throttle.limits_for(kind).lockout_seconds
            throttle.audit_refusal(decision, kind, lockout, citizen_id=citizen.id)
            error = _(
                "Too many wrong codes. Wait %(wait)s and try again.",
                wait=throttle.wait_in_words(decision.retry_after),
            )
            status, headers = 429, {"Retry-After": str(decision.retry_after)}
        elif method == "recovery":
            error, status = _("Enter one of your recovery codes, like abcde-23456"), 400
        else:
            error, status = _("Enter the 6-digit code your authenticator app shows now"), 400
    elif form.is_submitted():
        status = 400
    page = render_template(
        "reset_second_factor.html",
        form=form,
        error=error,
        method=method,
        **ways,
        **context,
    )
    return page, status, headers


def _text_urls(journey: str | None) -> dict:
    return {
        "action": url_for("recovery.text_message", journey=journey),
        "resend": url_for("recovery.text_message_again", journey=journey),
        "restart": None,
    }


def _text_context(citizen: Citizen, context: dict) -> dict:
    """What else the reset's text message page offers: the app, a recovery code."""
    return {"resetting": True, **_ways(citizen), **context}


@bp.route("/reset-password/text-message", methods=["GET", "POST"])
def text_message() -> Response:
    """Step 3 by text message: a code sent to the confirmed number when the page is first
    shown (and on request), checked as at sign-in: once, for ten minutes, five wrong codes
    spend it, and wrong ones count with the app's against the account's second step."""
    context = journey_context(request.values.get("journey"))
    journey = context["journey"]
    row, citizen = _verified_citizen()
    if row is None:
        return redirect(url_for("recovery.start", journey=journey))
    phone = texts.phone_number(citizen)
    if phone is None:
        return redirect(url_for("recovery.second_factor", journey=journey))
    sent = texts.pending(TEXT_PURPOSE, citizen)
    form = CodeForm()
    refusal = None
    if request.method == "GET":
        if not texts.usable(sent, phone.number):
            refusal = send_text(TEXT_PURPOSE, citizen, phone.number)
    elif form.validate_on_submit():
        if sent is None or sent.number != phone.number:
            refusal = Refusal(_("That code has been used or has expired. Send another code."))
        else:
            refusal = check_code(sent, form.code.data)
            if refusal is None:
                return _proven_by_text(row, citizen, journey)
        form.code.data = ""
    about_the_code = request.method == "POST"  # else a refusal to send one
    extra = _text_context(citizen, context)
    return phone_code_page(
        phone.number, form, _text_urls(journey), refusal, about_the_code, **extra
    )


def _proven_by_text(row, citizen: Citizen, journey: str | None) -> Response:
    """The right code by text message: on to the new password, as with the app's."""
    texts.forget(TEXT_PURPOSE)
    session[PROVEN] = {"code": row.id, "amr": "sms"}
    audit.record(
        "second_factor.succeeded",
        citizen_id=citizen.id,
        factor="sms",
        during="password_reset",
    )
    return redirect(url_for("recovery.new_password", journey=journey))


@bp.post("/reset-password/text-message/send-again")
def text_message_again() -> Response:
    """Another code by text message in a reset."""
    context = journey_context(request.values.get("journey"))
    row, citizen = _verified_citizen()
    if row is None:
        return redirect(url_for("recovery.start", journey=context["journey"]))
    phone = texts.phone_number(citizen)
    if phone is None:
        return redirect(url_for("recovery.second_factor", journey=context["journey"]))
    return resend_code(
        TEXT_PURPOSE,
        citizen,
        phone.number,
        _text_urls(context["journey"]),
        **_text_context(citizen, context),
    )


@bp.route("/reset-password/new-password", methods=["GET", "POST"])
def new_password() -> Response:
    """Step 4: the new password; then signed out everywhere else, and told by email."""
    context = journey_context(request.values.get("journey"))
    row, citizen = _verified_citizen()
    proven = session.get(PROVEN)
    if row is None or not isinstance(proven, dict) or proven.get("code") != row.id:
        return redirect(url_for("recovery.start", journey=context["journey"]))
    form = NewPasswordForm()
    if request.method == "GET":
        form.journey.data = context["journey"]
    elif form.validate_on_submit():
        try:
            check_password_policy(form.password.data, email=citizen.email)
        except PasswordPolicyError as exc:
            form.password.errors.append(str(exc))
        else:
            if not email_codes.spend(row):
                db.session.rollback()
                return redirect(url_for("recovery.start", journey=context["journey"]))
            citizen.password_hash = hash_password(form.password.data)
            removed = remove_every_passkey(citizen) if form.remove_passkeys.data else []
            ended = end_every_session(citizen.id, "password reset")
            db.session.commit()
            email_codes.forget(PURPOSE)
            session.pop(PROVEN, None)
            audit.record("password.reset", citizen_id=citizen.id, sessions_ended=ended)
            passkeys_removed(citizen, removed, during="password_reset")
            # NIST SP 800-63B 5.2.2: a reset by email opens an account the cap locked.
            throttle.reopen(throttle.email_key(citizen.email))
            tell_owner_of_new_password(citizen, reset=True)
            amr = ["pwd"] + ([proven["amr"]] if proven.get("amr") else [])
            alone = enough_alone(form.password.data)
            recent_password.typed(start_session(citizen, amr=amr, password_enough_alone=alone))
            if not has_second_factor(citizen):
                return redirect(url_for("two_factor.setup", journey=context["journey"]))
            if context["journey"]:
                return continue_journey(context["journey"])
            return redirect(url_for("accounts.account", done="password-reset"))
    status = 400 if request.method == "POST" else 200
    page = render_template(
        "new_password.html", form=form, passkeys=citizen_passkeys(citizen), **context
    )
    return page, status

"""The pages of codes by text message: choosing it as the second factor (the number, then the
code sent to it), the second step of signing in with it, and changing or removing the number
from the account pages (the current password asked again, as for the app).

Sending is throttled per number and network, and per network, as email codes are
(email_codes/pages.py), so nobody can flood a phone; and each number gets at most
sms_number_max_sends codes a day (sms_number_window_seconds), however many networks ask, so
nobody can run up the bill. Wrong codes at sign-in and in a password reset count with the
app's ("second_factor": one lock for the account's second step); wrong codes confirming a
number count as "sms_code".
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp import audit
from idp.accounts import recent_password
from idp.accounts.email_codes.forms import ButtonForm
from idp.accounts.guards import fully_signed_in, signed_in
from idp.accounts.levels import MEDIUM, vector_met
from idp.accounts.manage.logic import now_in_words, tell
from idp.accounts.one_time_codes import Outcome
from idp.accounts.page_helpers import (
    Refusal,
    continue_journey,
    journey_context,
    page,
    with_password,
)
from idp.accounts.passkeys.logic import has_authenticator_app, has_passkey
from idp.accounts.second_factor.logic import has_second_factor, issue_recovery_codes, step_up
from idp.accounts.sessions import end_every_session
from idp.accounts.shared_forms import CodeForm, PasswordOnlyForm, SignOutForm
from idp.accounts.text_messages import logic as texts
from idp.accounts.text_messages.forms import ChangePhoneNumberForm, PhoneNumberForm
from idp.accounts.text_messages.logic import NumberError
from idp.extensions import db
from idp.mail import send_text_in_background
from idp.models import Citizen, SmsCode
from idp.security import throttle
from idp.security.throttle import Decision
from idp.settings import current_settings

bp = Blueprint("text_messages", __name__)

# The kind of throttle a wrong code counts against, by purpose.
CHECK_KINDS = {
    "sign_in": "second_factor",
    "reset": "second_factor",
    "setup": "sms_code",
    "change": "sms_code",
}
# Purposes where the code is the account's second step, and what its audit entries call them.
SECOND_STEP = {"sign_in": "sign_in", "reset": "password_reset"}


def _wait(decision: Decision) -> str:
    return throttle.wait_in_words(decision.retry_after)


def _ip() -> str:
    return request.remote_addr or ""


def _send_key(number: str, ip: str) -> str:
    """Per number and network: a stranger asking for many codes cannot stop the owner
    (elsewhere) from getting theirs; the per-IP limit still caps one network."""
    return f"phone:send:{throttle.digest(ip)[:16]}:{number}"


def _number_key(number: str) -> str:
    """The number alone, for its daily quota (the store keeps only a digest)."""
    return f"phone:quota:{number}"


def _check_key(row: SmsCode) -> str:
    """At sign-in and in a reset the app's key (one count for the second step); else per
    purpose."""
    if row.purpose in SECOND_STEP:
        return f"citizen:{row.citizen_id}"
    return f"phone:{row.purpose}:{row.citizen_id}"


# -- Sending and checking ----------------------------------------------------------------------


def send_code(purpose: str, citizen: Citizen, number: str) -> Refusal | None:
    """Issue a code for this browser and text it (from a thread); None when it went."""
    ip = _ip()
    key = _send_key(number, ip)
    settings = current_settings()
    decision = throttle.check("sms_send", key, ip)
    if decision.allowed:
        decision = throttle.check_quota(
            "sms_send", _number_key(number), settings.sms_number_max_sends
        )
    if not decision.allowed:
        # Never the number (nor a hash of it): the citizen is known.
        audit.record(
            "sms_code.refused",
            outcome="failure",
            reason=decision.reason,
            citizen_id=citizen.id,
            purpose=purpose,
        )
        return _refused_to_send(decision)
    code = texts.issue(purpose, citizen, number)
    throttle.record_failure("sms_send", key, ip)
    throttle.use_quota("sms_send", _number_key(number), settings.sms_number_window_seconds)
    send_text_in_background(number, texts.message(purpose, code))
    audit.record("sms_code.sent", citizen_id=citizen.id, purpose=purpose)
    return None


def _refused_to_send(decision: Decision) -> Refusal:
    """Too many codes asked for here, or sent to this number today: which, and how long."""
    if decision.reason == "quota":
        message = _(
            "We have sent as many codes to this phone number as we can in one day. Wait"
            " %(wait)s, then try again.",
            wait=_wait(decision),
        )
    else:
        message = _(
            "You have asked for too many codes. Wait %(wait)s, then try again.",
            wait=_wait(decision),
        )
    return Refusal(message, 429, {"Retry-After": str(decision.retry_after)})


def check_code(row: SmsCode, typed: str) -> Refusal | None:
    """Check a typed code, throttled; None when it is right (and now spent)."""
    kind, key, ip = CHECK_KINDS[row.purpose], _check_key(row), _ip()
    decision = throttle.check(kind, key, ip)
    if not decision.allowed:
        return _too_many(decision, kind, row)
    outcome = texts.check(row, typed)
    if outcome is Outcome.VERIFIED:
        throttle.record_success(kind, key)
        throttle.record_success("sms_send", _send_key(row.number, ip))
        audit.record("sms_code.verified", citizen_id=row.citizen_id, purpose=row.purpose)
        return None
    reason = {Outcome.EXPIRED: "expired", Outcome.WRONG: "wrong_code"}.get(
        outcome, "too_many_wrong_codes"
    )
    _audit_failure(row, reason)
    if outcome is Outcome.EXPIRED:
        return Refusal(_("The code has expired. Send another code."))
    if outcome is Outcome.WRONG:
        decision = throttle.record_failure(kind, key, ip)
        if not decision.allowed:
            # As the app's: this wrong code locked the step, or the next one must wait.
            return _too_many(decision, kind, row)
        return Refusal(
            _("The code is not right. Check the text message we sent you and try again.")
        )
    return Refusal(_("You entered the wrong code too many times. Send another code."))


def _audit_failure(row: SmsCode, reason: str) -> None:
    """A wrong code: at sign-in or in a reset a second factor that failed (as the app's),
    else the number's."""
    if row.purpose in SECOND_STEP:
        audit.record(
            "second_factor.failed",
            outcome="failure",
            reason=reason,
            citizen_id=row.citizen_id,
            factor="sms",
            during=SECOND_STEP[row.purpose],
        )
    else:
        audit.record(
            "sms_code.failed",
            outcome="failure",
            reason=reason,
            citizen_id=row.citizen_id,
            purpose=row.purpose,
        )


def _too_many(decision: Decision, kind: str, row: SmsCode) -> Refusal:
    """Refused by the throttle, or locked by this wrong code: recorded, and said."""
    lockout = throttle.limits_for(kind).lockout_seconds
    throttle.audit_refusal(decision, kind, lockout, citizen_id=row.citizen_id)
    return Refusal(
        _("Too many wrong codes. Wait %(wait)s and try again.", wait=_wait(decision)),
        429,
        {"Retry-After": str(decision.retry_after)},
    )


def phone_code_page(
    number: str,
    form,
    urls: dict,
    refusal: Refusal | None = None,
    about_the_code: bool = False,
    **context,
):
    """The 'check your phone' page; urls: action, resend, and restart (or None). A refusal
    about_the_code (wrong, spent, expired, too many wrong) shows beside the code's field as
    well as in the error summary, as the Design System asks; any other (too many codes sent)
    in the summary only."""
    status = refusal.status if refusal else (400 if form.is_submitted() else 200)
    error = refusal.message if refusal else None
    if error and about_the_code:
        form.code.errors.append(error)
        error = None
    return page(
        "check_phone.html",
        status,
        refusal.headers if refusal else None,
        form=form,
        error=error,
        phone_ending=texts.ending(number),
        resend_form=ButtonForm(),
        **urls,
        **context,
    )


def resend_code(purpose: str, citizen: Citizen, number: str, urls: dict, **context) -> Response:
    """'Send another code': back to the code page, saying so (or why not)."""
    if not ButtonForm().validate_on_submit():
        return redirect(urls["action"])
    refusal = send_code(purpose, citizen, number)
    if refusal is not None:
        return phone_code_page(number, CodeForm(formdata=None), urls, refusal, **context)
    action = urls["action"]
    return redirect(action + ("&" if "?" in action else "?") + "sent=1")


# -- The second step of signing in -------------------------------------------------------------


def _sign_in_urls(journey: str | None) -> dict:
    return {
        "action": url_for("text_messages.sign_in_code", journey=journey),
        "resend": url_for("text_messages.sign_in_resend", journey=journey),
        "restart": None,
    }


def _sign_in_context(session, context: dict) -> dict:
    """What else the sign-in page offers: the app, a passkey, a recovery code, signing out."""
    return {
        "signing_in": True,
        "has_authenticator_app": has_authenticator_app(session.citizen),
        "has_passkey": has_passkey(session.citizen),
        "signed_in_as": session.citizen.email,
        "sign_out_form": SignOutForm(),
        **context,
    }


@bp.route("/sign-in/text-message", methods=["GET", "POST"])
@signed_in
def sign_in_code(*, current) -> Response:
    """The code sent by text message: sent when the page is first shown (and on request)."""
    context = journey_context(request.values.get("journey"))
    journey = context["journey"]
    citizen = current.citizen
    phone = texts.phone_number(citizen)
    if phone is None:
        return redirect(url_for("two_factor.second_factor", journey=journey))
    if vector_met(current.amr or []) == MEDIUM:
        return continue_journey(journey)  # already signed in with a second factor
    urls, extra = _sign_in_urls(journey), _sign_in_context(current, context)
    row = texts.pending("sign_in", citizen)
    form = CodeForm()
    refusal = None
    if request.method == "GET":
        if not texts.usable(row, phone.number):
            refusal = send_code("sign_in", citizen, phone.number)
    elif form.validate_on_submit():
        if row is None or row.number != phone.number:
            refusal = Refusal(_("That code has been used or has expired. Send another code."))
        else:
            refusal = check_code(row, form.code.data)
            if refusal is None:
                texts.forget("sign_in")
                step_up(current, "sms", "sms")
                return continue_journey(journey)
        form.code.data = ""
    about_the_code = request.method == "POST"  # else a refusal to send one
    return phone_code_page(phone.number, form, urls, refusal, about_the_code, **extra)


@bp.post("/sign-in/text-message/send-again")
@signed_in
def sign_in_resend(*, current) -> Response:
    """Another code by text message at sign-in."""
    context = journey_context(request.values.get("journey"))
    phone = texts.phone_number(current.citizen)
    if phone is None:
        return redirect(url_for("two_factor.second_factor", journey=context["journey"]))
    return resend_code(
        "sign_in",
        current.citizen,
        phone.number,
        _sign_in_urls(context["journey"]),
        **_sign_in_context(current, context),
    )


# -- The first second factor: a mobile number --------------------------------------------------


def _not_ready_to_set_up(session, journey: str | None) -> Response | None:
    """Where to go instead: on, when the citizen has a second factor; to the password step,
    when it was not typed moments ago (a session alone adds no second factor)."""
    if has_second_factor(session.citizen):
        return continue_journey(journey)
    if not recent_password.recent(session):
        return redirect(url_for("two_factor.setup_password", journey=journey))
    return None


def _setup_urls(journey: str | None) -> dict:
    return {
        "action": url_for("text_messages.setup_code", journey=journey),
        "resend": url_for("text_messages.setup_resend", journey=journey),
        "restart": url_for("text_messages.setup_number", journey=journey),
    }


@bp.route("/two-factor/setup/text-message", methods=["GET", "POST"])
@signed_in
def setup_number(*, current) -> Response:
    """Choose codes by text message: the mobile number (with the warning that an app or a
    passkey is safer); a code goes to it."""
    context = journey_context(request.values.get("journey"))
    elsewhere = _not_ready_to_set_up(current, context["journey"])
    if elsewhere is not None:
        return elsewhere
    form = PhoneNumberForm()
    refusal = None
    if request.method == "GET":
        recent_password.typed(current)  # the window runs from the page the citizen sets up on
        form.journey.data = context["journey"]
    elif form.validate_on_submit():
        try:
            number = texts.parse_mobile_number(form.phone_number.data)
        except NumberError as exc:
            form.phone_number.errors.append(str(exc))
        else:
            refusal = send_code("setup", current.citizen, number)
            if refusal is None:
                return redirect(url_for("text_messages.setup_code", journey=context["journey"]))
    status = refusal.status if refusal else (400 if form.is_submitted() else 200)
    return page(
        "text_message_setup.html",
        status,
        refusal.headers if refusal else None,
        form=form,
        error=refusal.message if refusal else None,
        **context,
    )


@bp.route("/two-factor/setup/text-message/check-phone", methods=["GET", "POST"])
@signed_in
def setup_code(*, current) -> Response:
    """The code sent to the new number: then the number counts, the session has its second
    factor, and the ten recovery codes are shown once."""
    context = journey_context(request.values.get("journey"))
    journey = context["journey"]
    elsewhere = _not_ready_to_set_up(current, journey)
    if elsewhere is not None:
        return elsewhere
    citizen = current.citizen
    row = texts.pending("setup", citizen)
    if row is None:
        return redirect(url_for("text_messages.setup_number", journey=journey))
    form = CodeForm()
    refusal = None
    if form.validate_on_submit():
        refusal = check_code(row, form.code.data)
        if refusal is None:
            texts.save_number(citizen, row.number)
            texts.forget("setup")
            audit.record("phone.added", citizen_id=citizen.id, during="setup")
            step_up(current, "sms", "sms", during="setup")
            codes = issue_recovery_codes(citizen)
            heading = _("Codes by text message are set up")
            return render_template("recovery_codes.html", codes=codes, heading=heading, **context)
        form.code.data = ""
    return phone_code_page(row.number, form, _setup_urls(journey), refusal, True, **context)


@bp.post("/two-factor/setup/text-message/send-again")
@signed_in
def setup_resend(*, current) -> Response:
    """Another code to the number being set up."""
    context = journey_context(request.values.get("journey"))
    elsewhere = _not_ready_to_set_up(current, context["journey"])
    if elsewhere is not None:
        return elsewhere
    row = texts.pending("setup", current.citizen)
    if row is None:
        return redirect(url_for("text_messages.setup_number", journey=context["journey"]))
    return resend_code(
        "setup", current.citizen, row.number, _setup_urls(context["journey"]), **context
    )


# -- The account pages: change or remove the number --------------------------------------------

MANAGE_URLS = {
    "action": "text_messages.manage_code",
    "resend": "text_messages.manage_resend",
    "restart": "text_messages.manage",
}


def _manage_urls() -> dict:
    return {name: url_for(endpoint) for name, endpoint in MANAGE_URLS.items()}


def _manage_context(citizen: Citizen) -> dict:
    phone = texts.phone_number(citizen)
    return {
        "phone_ending": texts.ending(phone.number) if phone else None,
        "done": request.args.get("done"),
        "journey": None,
        "client": None,
    }


@bp.route("/account/text-message", methods=["GET", "POST"])
@fully_signed_in
def manage(*, current) -> Response:
    """Your number for codes by text message: add or change it (the current password, then a
    code sent to the new number); the old number works until the new one is confirmed."""
    citizen = current.citizen
    form = ChangePhoneNumberForm()

    def send():
        try:
            number = texts.parse_mobile_number(form.phone_number.data)
        except NumberError as exc:
            form.phone_number.errors.append(str(exc))
            return None
        phone = texts.phone_number(citizen)
        if phone is not None and phone.number == number:
            form.phone_number.errors.append(_("This is already your phone number"))
            return None
        refusal = send_code("change", citizen, number)
        return refusal or redirect(url_for("text_messages.manage_code"))

    context = _manage_context(citizen)
    return with_password(form, citizen, send, "manage_text_message.html", **context)


@bp.route("/account/text-message/check-phone", methods=["GET", "POST"])
@fully_signed_in
def manage_code(*, current) -> Response:
    """The code sent to the new number; then it replaces the old one, and the owner is told."""
    citizen = current.citizen
    row = texts.pending("change", citizen)
    if row is None:
        return redirect(url_for("text_messages.manage"))
    form = CodeForm()
    refusal = None
    if form.validate_on_submit():
        refusal = check_code(row, form.code.data)
        if refusal is None:
            return _new_number_confirmed(current, row)
        form.code.data = ""
    return phone_code_page(
        row.number, form, _manage_urls(), refusal, True, journey=None, client=None
    )


def _new_number_confirmed(current, row: SmsCode) -> Response:
    """The new number counts from now; a replaced one signs nothing in any more, so every other
    browser (perhaps signed in with it) is signed out."""
    citizen = current.citizen
    previous = texts.save_number(citizen, row.number)
    texts.forget("change")
    if previous is None:
        audit.record("phone.added", citizen_id=citizen.id, during="manage")
        subject = _("You added a phone number for security codes")
    else:
        ended = end_every_session(citizen.id, "phone number changed", keep=current)
        db.session.commit()
        audit.record("phone.changed", citizen_id=citizen.id, sessions_ended=ended)
        subject = _("You changed the phone number for your security codes")
    tell(
        citizen.email,
        subject,
        _(
            "At %(time)s codes for your government sign in account started going by text"
            " message to the phone number ending %(ending)s.",
            time=now_in_words(),
            ending=texts.ending(row.number),
        ),
        _("If this was not you, reset your password now."),
    )
    return redirect(url_for("text_messages.manage", done="changed"))


@bp.post("/account/text-message/send-again")
@fully_signed_in
def manage_resend(*, current) -> Response:
    """Another code to the new number."""
    row = texts.pending("change", current.citizen)
    if row is None:
        return redirect(url_for("text_messages.manage"))
    return resend_code(
        "change", current.citizen, row.number, _manage_urls(), journey=None, client=None
    )


@bp.route("/account/text-message/remove", methods=["GET", "POST"])
@fully_signed_in
def remove(*, current) -> Response:
    """Stop codes by text message, after the password; not when it is the only second factor."""
    citizen = current.citizen
    if texts.phone_number(citizen) is None:
        return redirect(url_for("text_messages.manage"))
    only_factor = not has_authenticator_app(citizen) and not has_passkey(citizen)

    def remove_it():
        if only_factor:
            return Refusal(
                _(
                    "You cannot remove your phone number: it is your account's only second"
                    " factor. Set up an authenticator app or add a passkey first."
                )
            )
        texts.remove_number(citizen)
        audit.record("phone.removed", citizen_id=citizen.id)
        tell(
            citizen.email,
            _("You removed the phone number for your security codes"),
            _(
                "At %(time)s the phone number was removed from your government sign in account:"
                " codes no longer go to it by text message.",
                time=now_in_words(),
            ),
            _("If this was not you, reset your password now."),
        )
        return redirect(url_for("text_messages.manage", done="removed"))

    return with_password(
        PasswordOnlyForm(),
        citizen,
        remove_it,
        "remove_text_message.html",
        only_factor=only_factor,
        **_manage_context(citizen),
    )

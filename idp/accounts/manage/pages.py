"""Changing the account: password, email address, authenticator app, recovery codes; deleting it.

Every change needs a session with the second factor and, at the moment of the change, the
current password (re-authentication, NIST SP 800-63B 4.2.3), throttled like sign-in. A new
authenticator app also needs a code sent to the account's email (so a lost phone is replaced
by someone who reads the mailbox and knows the password, or used a recovery code). The owner
is told by email of every change; a new email address is told to the old one.
"""

from __future__ import annotations

import pyotp
from flask import (
    Blueprint,
    Response,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField, HiddenField, PasswordField, SubmitField
from wtforms.validators import DataRequired

from idp import audit, clock
from idp.accounts import recent_password
from idp.accounts.citizens import AccountError, find_citizen_by_email, normalise_email
from idp.accounts.email_codes import logic as email_codes
from idp.accounts.email_codes.pages import Refusal, code_page, send_again_page, send_code
from idp.accounts.guards import fully_signed_in
from idp.accounts.passkeys.logic import (
    citizen_passkeys,
    passkeys_removed,
    remove_every_passkey,
)
from idp.accounts.recovery.pages import tell_owner_of_new_password
from idp.accounts.second_factor.logic import (
    decrypt_totp_secret,
    encrypt_totp_secret,
    has_second_factor,
    issue_recovery_codes,
    matching_totp_step,
    qr_code_svg,
    recovery_codes_left,
    totp_credential,
    totp_uri,
)
from idp.accounts.sessions import current_session, end_every_session
from idp.accounts.shared_forms import (
    CodeForm,
    NewPasswordForm,
    email_field,
)
from idp.extensions import db
from idp.mail import send_in_background
from idp.models import Citizen, TotpCredential
from idp.models.timestamps import utcnow
from idp.security import devices, throttle
from idp.security.passwords import (
    PasswordPolicyError,
    check_password_policy,
    enough_alone,
    hash_password,
    verify_password,
)

bp = Blueprint("manage", __name__, url_prefix="/account")

NEW_APP = "manage:new_totp_secret"


def _current_password_field():
    return PasswordField(
        _l("Your current password"),
        validators=[DataRequired(_l("Enter your current password"))],
        render_kw={"autocomplete": "current-password"},
    )


class ChangePasswordForm(NewPasswordForm):
    """The current password, then the new one twice."""

    current_password = _current_password_field()


class ChangeEmailForm(FlaskForm):
    """The current password and the new address."""

    current_password = _current_password_field()
    email = email_field(_l("New email address"))
    submit = SubmitField(_l("Continue"))


class PasswordOnlyForm(FlaskForm):
    """The current password, to confirm an action (new recovery codes, a new app)."""

    current_password = _current_password_field()
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class DeleteAccountForm(FlaskForm):
    """The current password and an explicit confirmation."""

    current_password = _current_password_field()
    confirm = BooleanField(
        _l("I understand that my account will be deleted and cannot be brought back"),
        validators=[DataRequired(_l("Confirm that you want to delete your account"))],
    )
    submit = SubmitField(_l("Delete my account"))


def _confirm_password(citizen: Citizen, password: str) -> Refusal | None:
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


def _tell(citizen_email: str, subject: str, *lines: str) -> None:
    send_in_background(citizen_email, subject, "\n\n".join(lines))


def _when() -> str:
    return format_datetime(utcnow(), "HH:mm 'UTC', d MMMM yyyy")


def _with_password(form, citizen: Citizen, act, template: str, **context):
    """A page whose form needs the current password: act() runs once the form is valid and
    the password right, and returns a response (done), a Refusal (shown on the page) or None
    (it put errors on the form's fields)."""
    refusal = None
    if form.validate_on_submit():
        refusal = _confirm_password(citizen, form.current_password.data)
        if refusal is None:
            outcome = act()
            if outcome is not None and not isinstance(outcome, Refusal):
                return outcome
            refusal = outcome
    status = refusal.status if refusal else (400 if form.is_submitted() else 200)
    headers = refusal.headers if refusal else None
    error = refusal.message if refusal else None
    return _page(template, status, headers, form=form, error=error, **context)


def _page(template: str, status: int = 200, headers: dict | None = None, **context):
    return render_template(template, **context), status, headers or {}


# -- Password ----------------------------------------------------------------------------------


@bp.route("/password", methods=["GET", "POST"])
@fully_signed_in
def change_password(*, current) -> Response:
    """A new password; every other browser and token is signed out."""
    citizen = current.citizen
    form = ChangePasswordForm()

    def change():
        try:
            check_password_policy(form.password.data, email=citizen.email)
        except PasswordPolicyError as exc:
            form.password.errors.append(str(exc))
            return None
        citizen.password_hash = hash_password(form.password.data)
        # This session now stands on the new password: whether it is long enough to be a
        # single factor is the new one's to say (levels.py), as at sign-in and reset.
        current.password_enough_alone = enough_alone(form.password.data)
        removed = remove_every_passkey(citizen) if form.remove_passkeys.data else []
        ended = end_every_session(citizen.id, "password changed", keep=current)
        db.session.commit()
        audit.record("password.changed", citizen_id=citizen.id, sessions_ended=ended)
        passkeys_removed(citizen, removed, during="password_change")
        tell_owner_of_new_password(citizen, reset=False)
        if not has_second_factor(citizen):
            # The passkeys were the only second factor: set up an app before anything else.
            return redirect(url_for("two_factor.setup"))
        return redirect(url_for("accounts.account", done="password-changed"))

    return _with_password(
        form, citizen, change, "change_password.html", passkeys=citizen_passkeys(citizen)
    )


# -- Email address -----------------------------------------------------------------------------


def _new_address_letter(code: str | None) -> tuple[str, str]:
    if code is None:
        return (
            _("This email address already has a government sign in account"),
            "\n\n".join(
                [
                    _(
                        "Someone asked to move another government sign in account to this"
                        " email address. It already has an account, so nothing was changed."
                    ),
                    _("If this was not you, you can ignore this email."),
                ]
            ),
        )
    return (
        _("Your code to change your email address"),
        "\n\n".join(
            [
                _(
                    "Your code to use this address for your government sign in account is"
                    " %(code)s.",
                    code=code,
                ),
                _("Enter it on the page where you asked for it. It expires in 15 minutes."),
                _("If you did not ask for this, you can ignore this email."),
            ]
        ),
    )


def _send_to_new_address(citizen: Citizen, address: str) -> Refusal | None:
    taken = find_citizen_by_email(address) is not None
    return send_code(
        "change_email",
        address,
        _new_address_letter,
        citizen_id=citizen.id,
        deliverable=not taken,
    )


def _email_urls() -> dict:
    return {
        "action": url_for("manage.change_email_code"),
        "resend": url_for("manage.change_email_resend"),
        "restart": url_for("manage.change_email"),
    }


@bp.route("/email", methods=["GET", "POST"])
@fully_signed_in
def change_email(*, current) -> Response:
    """A new email address: the password, then a code sent to the new address."""
    citizen = current.citizen
    form = ChangeEmailForm()

    def send():
        try:
            address = normalise_email(form.email.data)
        except AccountError as exc:
            form.email.errors.append(str(exc))
            return None
        if address == citizen.email:
            form.email.errors.append(_("This is already your email address"))
            return None
        return _send_to_new_address(citizen, address) or redirect(
            url_for("manage.change_email_code")
        )

    return _with_password(form, citizen, send, "change_email.html")


def _email_journey(citizen: Citizen):
    row = email_codes.pending("change_email")
    return row if row is not None and row.citizen_id == citizen.id else None


@bp.route("/email/check-email", methods=["GET", "POST"])
@fully_signed_in
def change_email_code(*, current) -> Response:
    """The code sent to the new address; then the address changes and the old one is told."""
    row = _email_journey(current.citizen)
    if row is None:
        return redirect(url_for("manage.change_email"))
    return code_page(row, _email_urls(), lambda: _move_to_new_address(current.citizen, row))


def _move_to_new_address(citizen: Citizen, row) -> Response:
    """The new address is proven: it becomes the account's, and the old one is told."""
    old = citizen.email
    if not email_codes.spend(row):
        db.session.rollback()
        return redirect(url_for("manage.change_email"))
    citizen.email = row.email
    citizen.email_verified = True
    end_every_session(citizen.id, "email changed", keep=current_session())
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _page(
            "error.html",
            400,
            message=_("Another account now has that email address. Nothing changed."),
        )
    email_codes.forget("change_email")
    audit.record("email.changed", citizen_id=citizen.id)
    _tell(
        old,
        _("The email address of your account was changed"),
        _(
            "At %(time)s the email address of your government sign in account was"
            " changed from this address to %(new)s.",
            time=_when(),
            new=row.email,
        ),
        _(
            "If this was not you, someone may know your password: reset it now and"
            " check the services that know you."
        ),
    )
    return redirect(url_for("accounts.account", done="email-changed"))


@bp.post("/email/send-again")
@fully_signed_in
def change_email_resend(*, current) -> Response:
    """Another code for the new address."""
    row = _email_journey(current.citizen)
    if row is None:
        return redirect(url_for("manage.change_email"))
    return send_again_page(
        row, _email_urls(), lambda: _send_to_new_address(current.citizen, row.email)
    )


# -- Authenticator app and recovery codes ------------------------------------------------------


def _reverify_letter(code: str | None) -> tuple[str, str]:
    return (
        _("Your code to set up a new authenticator app"),
        "\n\n".join(
            [
                _(
                    "Someone signed in to your government sign in account asked to set up a"
                    " new authenticator app. Your code is %(code)s.",
                    code=code,
                ),
                _("It expires in 15 minutes."),
                _(
                    "If this was not you, someone knows your password and has your second"
                    " factor or a recovery code: reset your password now."
                ),
            ]
        ),
    )


def _app_urls() -> dict:
    return {
        "action": url_for("manage.new_app_code"),
        "resend": url_for("manage.new_app_resend"),
        "restart": url_for("manage.authenticator_app"),
    }


@bp.route("/authenticator-app", methods=["GET", "POST"])
@fully_signed_in
def authenticator_app(*, current) -> Response:
    """Set up a new authenticator app (a lost or new phone): password, then an email code."""
    citizen = current.citizen
    credential = totp_credential(citizen)
    return _with_password(
        PasswordOnlyForm(),
        citizen,
        lambda: _send_reverify_code(citizen) or redirect(url_for("manage.new_app_code")),
        "manage_app.html",
        has_app=credential is not None and credential.confirmed_at is not None,
        codes_left=recovery_codes_left(citizen),
    )


def _reverified(citizen: Citizen, verified: bool):
    getter = email_codes.verified if verified else email_codes.pending
    row = getter("reverify")
    return row if row is not None and row.citizen_id == citizen.id else None


@bp.route("/authenticator-app/check-email", methods=["GET", "POST"])
@fully_signed_in
def new_app_code(*, current) -> Response:
    """The code sent to the account's address before a new app."""
    row = _reverified(current.citizen, verified=False)
    if row is None:
        return redirect(url_for("manage.authenticator_app"))

    def verified() -> Response:
        session.pop(NEW_APP, None)
        return redirect(url_for("manage.new_app"))

    return code_page(row, _app_urls(), verified)


def _send_reverify_code(citizen: Citizen) -> Refusal | None:
    return send_code("reverify", citizen.email, _reverify_letter, citizen_id=citizen.id)


@bp.post("/authenticator-app/send-again")
@fully_signed_in
def new_app_resend(*, current) -> Response:
    """Another code before a new app."""
    row = _reverified(current.citizen, verified=False)
    if row is None:
        return redirect(url_for("manage.authenticator_app"))
    return send_again_page(row, _app_urls(), lambda: _send_reverify_code(current.citizen))


@bp.route("/authenticator-app/new", methods=["GET", "POST"])
@fully_signed_in
def new_app(*, current) -> Response:
    """Scan the new app's QR code and type one code: the old app and recovery codes stop."""
    citizen = current.citizen
    row = _reverified(citizen, verified=True)
    if row is None:
        return redirect(url_for("manage.authenticator_app"))
    # The new key waits, encrypted, in this browser's signed session until a code confirms it:
    # until then the old app keeps working.
    stored = session.get(NEW_APP)
    secret = decrypt_totp_secret(stored) if isinstance(stored, str) else None
    if secret is None:
        secret = pyotp.random_base32()
        session[NEW_APP] = encrypt_totp_secret(secret)
    form = CodeForm()
    error, status = None, 200
    if form.validate_on_submit():
        step = matching_totp_step(secret, form.code.data, clock.time())
        if step is not None and email_codes.spend(row):
            credential = totp_credential(citizen)
            if credential is None:
                credential = TotpCredential(citizen_id=citizen.id, secret_encrypted="")
                db.session.add(credential)
            credential.secret_encrypted = encrypt_totp_secret(secret)
            credential.confirmed_at = utcnow()
            credential.created_at = utcnow()
            # The code just typed is used: it cannot sign in again (RFC 6238 5.2).
            credential.last_used_step = step
            end_every_session(citizen.id, "new authenticator app", keep=current)
            db.session.commit()
            session.pop(NEW_APP, None)
            email_codes.forget("reverify")
            audit.record("second_factor.replaced", citizen_id=citizen.id, method="totp")
            codes = issue_recovery_codes(citizen)
            _tell(
                citizen.email,
                _("You set up a new authenticator app"),
                _(
                    "At %(time)s a new authenticator app was set up for your government sign"
                    " in account. The old app and your old recovery codes no longer work.",
                    time=_when(),
                ),
                _("If this was not you, reset your password now."),
            )
            return render_template("recovery_codes.html", codes=codes, journey=None)
        audit.record(
            "second_factor.failed",
            outcome="failure",
            reason="wrong_code" if step is None else "email_code_spent",
            citizen_id=citizen.id,
            factor="totp",
            during="new_app",
        )
        error, status = _("Enter the 6-digit code your authenticator app shows now"), 400
    elif form.is_submitted():
        status = 400
    return _page(
        "two_factor_setup.html",
        status,
        form=form,
        error=error,
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        qr_code=qr_code_svg(totp_uri(citizen.email, secret)),
        journey=None,
        client=None,
        action=url_for("manage.new_app"),
    )


@bp.route("/recovery-codes", methods=["GET", "POST"])
@fully_signed_in
def recovery_codes(*, current) -> Response:
    """Ten new recovery codes (the old ones stop working), after the password."""
    citizen = current.citizen

    def renew():
        codes = issue_recovery_codes(citizen)
        _tell(
            citizen.email,
            _("You have new recovery codes"),
            _(
                "At %(time)s new recovery codes were made for your government sign in"
                " account. The old ones no longer work.",
                time=_when(),
            ),
            _("If this was not you, reset your password now."),
        )
        return render_template("recovery_codes.html", codes=codes, journey=None, renewed=True)

    return _with_password(
        PasswordOnlyForm(),
        citizen,
        renew,
        "manage_recovery_codes.html",
        codes_left=recovery_codes_left(citizen),
    )


# -- Deleting the account ----------------------------------------------------------------------


@bp.route("/delete", methods=["GET", "POST"])
@fully_signed_in
def delete_account(*, current) -> Response:
    """Delete the account: every session, token, consent, factor and code goes with it."""
    citizen = current.citizen

    def delete_it():
        address, citizen_id = citizen.email, citizen.id
        # The session this is done in ends with every other: kept for the audit record.
        sid, methods = current.sid, list(current.amr or [])
        end_every_session(citizen_id, "account deleted")
        # The database deletes what hangs off the account (ON DELETE CASCADE): sessions,
        # tokens, codes, consents, second factors, passkeys, email codes.
        db.session.execute(delete(Citizen).where(Citizen.id == citizen_id))
        db.session.commit()
        audit.record("citizen.deleted", citizen_id=citizen_id, sid=sid, methods=methods)
        _tell(
            address,
            _("Your government sign in account was deleted"),
            _("At %(time)s your government sign in account was deleted.", time=_when()),
            _(
                "Services you used it for no longer receive your information. To use them"
                " again, create a new account."
            ),
        )
        g.clear_session_cookie = True
        g.browser_session = None
        return render_template("account_deleted.html")

    return _with_password(DeleteAccountForm(), citizen, delete_it, "delete_account.html")

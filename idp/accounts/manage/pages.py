"""Changing the account: password, email address, authenticator app, recovery codes; deleting it.

Every change needs a session with the second factor and, at the moment of the change, the
current password (re-authentication, NIST SP 800-63B 4.2.3), throttled like sign-in. A new
authenticator app also needs a code sent to the account's email (so a lost phone is replaced
by someone who reads the mailbox and knows the password, or used a recovery code). The owner
is told by email of every change; a new email address is told to the old one.
"""

from __future__ import annotations

import pyotp
from flask import Blueprint, Response, g, redirect, render_template, session, url_for
from flask_babel import gettext as _
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from idp import audit, clock
from idp.accounts.citizens import AccountError, find_citizen_by_email, normalise_email
from idp.accounts.email_codes import logic as email_codes
from idp.accounts.email_codes.pages import code_page, send_again_page, send_code
from idp.accounts.guards import fully_signed_in
from idp.accounts.manage.forms import ChangeEmailForm, ChangePasswordForm, DeleteAccountForm
from idp.accounts.manage.logic import new_address_letter, now_in_words, reverify_letter, tell
from idp.accounts.page_helpers import Refusal, page, with_password
from idp.accounts.passkeys.logic import (
    citizen_passkeys,
    passkeys_removed,
    remove_every_passkey,
)
from idp.accounts.recovery.logic import tell_owner_of_new_password
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
from idp.accounts.shared_forms import CodeForm, PasswordOnlyForm
from idp.extensions import db
from idp.models import Citizen, TotpCredential
from idp.models.timestamps import utcnow
from idp.security.passwords import (
    PasswordPolicyError,
    check_password_policy,
    enough_alone,
    hash_password,
)

bp = Blueprint("manage", __name__, url_prefix="/account")

NEW_APP = "manage:new_totp_secret"


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

    return with_password(
        form, citizen, change, "change_password.html", passkeys=citizen_passkeys(citizen)
    )


# -- Email address -----------------------------------------------------------------------------


def _send_to_new_address(citizen: Citizen, address: str) -> Refusal | None:
    taken = find_citizen_by_email(address) is not None
    return send_code(
        "change_email",
        address,
        new_address_letter,
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

    return with_password(form, citizen, send, "change_email.html")


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
        return page(
            "error.html",
            400,
            message=_("Another account now has that email address. Nothing changed."),
        )
    email_codes.forget("change_email")
    audit.record("email.changed", citizen_id=citizen.id)
    tell(
        old,
        _("The email address of your account was changed"),
        _(
            "At %(time)s the email address of your government sign in account was"
            " changed from this address to %(new)s.",
            time=now_in_words(),
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
    return with_password(
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
    return send_code("reverify", citizen.email, reverify_letter, citizen_id=citizen.id)


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
            tell(
                citizen.email,
                _("You set up a new authenticator app"),
                _(
                    "At %(time)s a new authenticator app was set up for your government sign"
                    " in account. The old app and your old recovery codes no longer work.",
                    time=now_in_words(),
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
    return page(
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
        tell(
            citizen.email,
            _("You have new recovery codes"),
            _(
                "At %(time)s new recovery codes were made for your government sign in"
                " account. The old ones no longer work.",
                time=now_in_words(),
            ),
            _("If this was not you, reset your password now."),
        )
        return render_template("recovery_codes.html", codes=codes, journey=None, renewed=True)

    return with_password(
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
        tell(
            address,
            _("Your government sign in account was deleted"),
            _("At %(time)s your government sign in account was deleted.", time=now_in_words()),
            _(
                "Services you used it for no longer receive your information. To use them"
                " again, create a new account."
            ),
        )
        g.clear_session_cookie = True
        g.browser_session = None
        return render_template("account_deleted.html")

    return with_password(DeleteAccountForm(), citizen, delete_it, "delete_account.html")

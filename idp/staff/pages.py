"""Staff sign-in pages: the password, the second step (a code from the staff member's
authenticator app, or setting one up at the first sign-in), and sign-out. The same pages for
platform administrators, department administrators and auditors; after them, each goes to the
pages of their own duty (idp/departments/views.py, idp/staff/audit_pages.py)."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from idp import audit
from idp.accounts.second_factor.logic import qr_code_svg
from idp.extensions import db
from idp.models import StaffMember
from idp.security import devices, throttle
from idp.staff.accounts import (
    authenticate_staff,
    begin_staff_totp_enrolment,
    check_staff_totp,
    confirm_staff_totp,
    has_staff_second_factor,
    staff_totp_secret,
    staff_totp_uri,
)
from idp.staff.forms import SignOutForm, StaffCodeForm, StaffSignInForm
from idp.staff.guards import english_only, safe_next, second_step
from idp.staff.sessions import (
    AMR_PASSWORD,
    current_staff,
    current_staff_session,
    end_staff_session,
    has_both_factors,
    start_staff_session,
    step_up_staff_session,
)

bp = english_only(Blueprint("staff", __name__))

WRONG_CODE = "Enter the 6-digit code your authenticator app shows now"


@bp.errorhandler(HTTPException)
def staff_error(error: HTTPException):
    """A refusal on a staff page, said to staff (the citizens' error page talks about sign-in
    links and says "You have not been signed in", which is wrong here)."""
    return render_template(
        "staff/error.html", member=current_staff(), message=error.description
    ), error.code


@bp.route("/staff/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    """Staff sign in with email and password."""
    form = StaffSignInForm()
    error = None
    status = 200
    if form.validate_on_submit():
        # Throttled before argon2 runs, an unknown address exactly like a known one.
        key = throttle.email_key(form.email.data, realm="staff")
        ip = request.remote_addr or ""
        # A browser this account signed in on is judged apart (OWASP device cookies).
        device = devices.presented(key)
        decision = throttle.check("password", key, ip, device=device)
        if not decision.allowed:
            return _staff_throttled(decision, key)
        member = authenticate_staff(form.email.data, form.password.data)
        if member is not None:
            throttle.record_success("password", key, device=device)
            # The password alone opens only the second step (a session of its own).
            start_staff_session(member, amr=[AMR_PASSWORD])
            return devices.remember(redirect(second_step(member, request.args.get("next"))), key)
        decision = throttle.record_failure("password", key, ip, device=device)
        if decision.locked:
            return _staff_throttled(decision, key)
        error = "The email address or password is not right"
        status = 400
    elif form.is_submitted():
        status = 400
    return render_template("staff/sign_in.html", form=form, error=error), status


def _staff_wait(seconds: int) -> str:
    """A wait in plain English: "15 minutes", "1 second"."""
    number, unit = throttle.wait_units(seconds)
    return f"{number} {unit.removesuffix('s') if number == 1 else unit}"


def _staff_throttled(decision: throttle.Decision, key: str) -> tuple[str, int, dict]:
    """429 for staff: the same page for a known and an unknown address."""
    address = key.removeprefix("staff:")
    member = db.session.scalar(db.select(StaffMember).filter_by(email=address))
    # The member's id when the account exists; never the address typed (nor a hash of it).
    who = {"staff_id": member.id if member else None}
    lockout = throttle.limits_for("password").lockout_seconds
    throttle.audit_refusal(decision, "password", lockout, realm="staff", **who)
    page = render_template(
        "staff/throttled.html",
        decision=decision,
        wait=_staff_wait(decision.retry_after),
        lockout=_staff_wait(lockout),
    )
    return page, 429, {"Retry-After": str(decision.retry_after)}


def _password_step_session():
    """The session the password made, or a redirect to sign in (with next kept)."""
    session = current_staff_session()
    if session is None:
        return None, redirect(url_for("staff.sign_in", next=request.args.get("next")))
    return session, None


@bp.route("/staff/sign-in/second-factor", methods=["GET", "POST"])
def second_factor() -> Response:
    """The second step: the code from the staff member's authenticator app."""
    session, elsewhere = _password_step_session()
    if elsewhere:
        return elsewhere
    next_path = safe_next(request.args.get("next"))
    if has_both_factors(session):
        return redirect(next_path)
    member = session.staff
    if not has_staff_second_factor(member):
        return redirect(second_step(member, next_path))
    form = StaffCodeForm()
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        key = f"staff:{member.id}"
        ip = request.remote_addr or ""
        decision = throttle.check("second_factor", key, ip)
        if decision.allowed and check_staff_totp(member, form.code.data):
            throttle.record_success("second_factor", key)
            step_up_staff_session(session)
            return redirect(next_path)
        if decision.allowed:
            decision = throttle.record_failure("second_factor", key, ip)
            audit.record(
                "staff.second_factor.failed",
                outcome="failure",
                reason="wrong_code",
                staff_id=member.id,
            )
        if decision.allowed:
            error, status = WRONG_CODE, 400
        else:
            lockout = throttle.limits_for("second_factor").lockout_seconds
            throttle.audit_refusal(
                decision, "second_factor", lockout, realm="staff", staff_id=member.id
            )
            error = f"Too many wrong codes. Wait {_staff_wait(decision.retry_after)} and try again."
            status, headers = 429, {"Retry-After": str(decision.retry_after)}
    elif form.is_submitted():
        status = 400
    page = render_template(
        "staff/second_factor.html", form=form, error=error, signed_in_as=member.email
    )
    return page, status, headers


@bp.route("/staff/second-factor/setup", methods=["GET", "POST"])
def second_factor_setup() -> Response:
    """Set up an authenticator app at the first sign-in (or after an operator reset it)."""
    session, elsewhere = _password_step_session()
    if elsewhere:
        return elsewhere
    next_path = safe_next(request.args.get("next"))
    member = session.staff
    if has_staff_second_factor(member):
        return redirect(next_path if has_both_factors(session) else second_step(member, next_path))
    form = StaffCodeForm()
    error, status = None, 200
    secret = staff_totp_secret(member)
    if request.method == "GET" or secret is None:
        # A new key each time the page is shown: one never confirmed is never reused.
        secret = begin_staff_totp_enrolment(member)
    if form.validate_on_submit():
        if confirm_staff_totp(member, form.code.data):
            step_up_staff_session(session)
            return redirect(next_path)
        error, status = WRONG_CODE, 400
    elif form.is_submitted():
        status = 400
    page = render_template(
        "staff/second_factor_setup.html",
        form=form,
        error=error,
        signed_in_as=member.email,
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        qr_code=qr_code_svg(staff_totp_uri(member, secret)),
    )
    return page, status


@bp.post("/staff/sign-out")
def sign_out() -> Response:
    """End the staff session."""
    form = SignOutForm()
    session = current_staff_session()
    if session is not None and form.validate_on_submit():
        audit.record("staff.signed_out", staff_id=session.staff_id)
        end_staff_session(session)
    return redirect(url_for("staff.sign_in"))

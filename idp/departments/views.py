"""Staff pages: department administrators register and manage their services; platform
administrators approve, suspend and reinstate services and issue initial access tokens."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from idp import audit
from idp.accounts.second_factor import qr_code_svg
from idp.departments.forms import (
    ActionForm,
    InitialAccessTokenForm,
    KeysForm,
    PublicKeyError,
    ServiceForm,
    StaffCodeForm,
    StaffSignInForm,
    choices,
    public_key_jwks,
)
from idp.departments.metadata import ClientMetadataError
from idp.departments.services import (
    RegistrationError,
    change_client_status,
    create_registration,
    issue_initial_access_token,
    revoke_initial_access_token,
    rotate_client_secret,
    set_client_keys,
    update_registration,
)
from idp.departments.staff import (
    AMR_PASSWORD,
    AUDITORS_CHANGE_NOTHING,
    authenticate_staff,
    begin_staff_totp_enrolment,
    check_staff_totp,
    confirm_staff_totp,
    current_staff,
    current_staff_session,
    end_staff_session,
    has_both_factors,
    has_staff_second_factor,
    staff_totp_secret,
    staff_totp_uri,
    start_staff_session,
    step_up_staff_session,
)
from idp.extensions import db
from idp.models import Client, Department, InitialAccessToken, StaffMember
from idp.models.client import CLIENT_STATUSES, find_client
from idp.models.timestamps import utcnow
from idp.security import devices, throttle

bp = Blueprint("departments", __name__)

DEPARTMENT_ACTIONS = ("disable", "enable")
PLATFORM_ACTIONS = ("approve", "suspend", "reinstate")
# A logo's address names its SHA-256 in lower-case hex (idp/departments/logos.py).
LOGO_DIGEST = re.compile(r"[0-9a-f]{64}")
WRONG_CODE = "Enter the 6-digit code your authenticator app shows now"


@bp.errorhandler(HTTPException)
def staff_error(error: HTTPException):
    """A refusal on a staff page, said to staff (the citizens' error page talks about sign-in
    links and says "You have not been signed in", which is wrong here)."""
    return render_template(
        "staff/error.html", member=current_staff(), message=error.description
    ), error.code


def staff_required(platform: bool = False) -> Callable:
    """Only staff signed in with both factors (platform administrators when platform=True)
    see the page; after the password alone, the second step comes first."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            session = current_staff_session()
            if session is None:
                return redirect(url_for("departments.sign_in", next=request.path))
            if not has_both_factors(session):
                return redirect(_second_step(session.staff, request.path))
            member = session.staff
            if member.is_auditor:
                # Auditing is a separate duty: auditors read the record and change nothing.
                if request.endpoint == "departments.home":
                    return redirect(url_for("audit.entries"))
                abort(403, AUDITORS_CHANGE_NOTHING)
            if platform and not member.is_platform_admin:
                abort(403, "This page is for platform administrators.")
            return view(member, *args, **kwargs)

        return wrapper

    return decorate


def _safe_next(target: str | None) -> str:
    """Only a path on this site, never an absolute URL (no open redirect).

    Control characters and spaces are refused too: a browser drops tabs and newlines from a
    Location, so "/<TAB>/evil.example" would arrive as "//evil.example".
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and all(32 < ord(c) < 127 for c in target)
    ):
        return target
    return url_for("departments.home")


def _second_step(member: StaffMember, next_path: str | None) -> str:
    """The code page, or the setup page for a member without an authenticator app yet."""
    endpoint = (
        "departments.second_factor"
        if has_staff_second_factor(member)
        else "departments.second_factor_setup"
    )
    return url_for(endpoint, next=_safe_next(next_path))


def _actor(member: StaffMember) -> str:
    """How staff appear in the audit record."""
    return f"staff {member.id}"


def _service_for(member: StaffMember, client_id: str) -> Client:
    """A service this member may see: their department's, or any for platform staff."""
    client = find_client(client_id)
    if client is None:
        abort(404, "There is no service with that client ID.")
    if not member.is_platform_admin and client.department_id != member.department_id:
        # Another department's service is none of this member's business, not even its name.
        abort(404, "There is no service with that client ID.")
    return client


def _form_metadata_error(form: ServiceForm, exc: ClientMetadataError) -> str | None:
    """Attach a policy refusal to the form field it names; the rest go to the summary."""
    names = {
        "jwks": "public_key",
        "client_name": "client_name",
        "scope": "scopes",
        "require_pkce": "pkce_optional",
    }
    field_name = names.get(exc.field or "", exc.field)
    field = getattr(form, field_name, None) if field_name else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, str(exc)]
        return None
    return str(exc)


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
            return devices.remember(redirect(_second_step(member, request.args.get("next"))), key)
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
        return None, redirect(url_for("departments.sign_in", next=request.args.get("next")))
    return session, None


@bp.route("/staff/sign-in/second-factor", methods=["GET", "POST"])
def second_factor() -> Response:
    """The second step: the code from the staff member's authenticator app."""
    session, elsewhere = _password_step_session()
    if elsewhere:
        return elsewhere
    next_path = _safe_next(request.args.get("next"))
    if has_both_factors(session):
        return redirect(next_path)
    member = session.staff
    if not has_staff_second_factor(member):
        return redirect(_second_step(member, next_path))
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
    next_path = _safe_next(request.args.get("next"))
    member = session.staff
    if has_staff_second_factor(member):
        return redirect(next_path if has_both_factors(session) else _second_step(member, next_path))
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
    form = ActionForm()
    session = current_staff_session()
    if session is not None and form.validate_on_submit():
        audit.record("staff.signed_out", staff_id=session.staff_id)
        end_staff_session(session)
    return redirect(url_for("departments.sign_in"))


@bp.get("/departments/")
@staff_required()
def home(member: StaffMember) -> Response:
    """The member's services (a department's own; every service for platform staff)."""
    if member.is_platform_admin:
        return redirect(url_for("departments.admin_services"))
    services = db.session.scalars(
        db.select(Client).filter_by(department_id=member.department_id).order_by(Client.id)
    ).all()
    return render_template("staff/department.html", member=member, services=services)


@bp.route("/departments/services/new", methods=["GET", "POST"])
@staff_required()
def new_service(member: StaffMember) -> Response:
    """Register a new service; it waits for a platform administrator's approval."""
    if member.is_platform_admin:
        abort(403, "Services are registered by their department's administrators.")
    form = ServiceForm()
    error = None
    if form.validate_on_submit():
        try:
            registered = create_registration(
                form.metadata(),
                department=member.department,
                approved=False,
                via="department page",
                actor=_actor(member),
            )
        except PublicKeyError as exc:
            form.public_key.errors = [*form.public_key.errors, str(exc)]
        except ClientMetadataError as exc:
            error = _form_metadata_error(form, exc)
        else:
            return render_template(
                "staff/registered.html",
                member=member,
                client=registered.client,
                client_secret=registered.client_secret,
                registration_access_token=registered.registration_access_token,
            )
    status = 400 if form.is_submitted() else 200
    return render_template("staff/service_form.html", member=member, form=form, error=error), status


@bp.route("/departments/services/<client_id>", methods=["GET", "POST"])
@staff_required()
def service(member: StaffMember, client_id: str) -> Response:
    """One service: its client ID, status, settings (editable) and actions."""
    client = _service_for(member, client_id)
    form = ServiceForm(prefix="edit")
    form.submit.label.text = "Save changes"
    error = None
    status = 200
    if request.method == "GET":
        form.fill_from(client.client_metadata)
    elif member.is_platform_admin:
        abort(403, "Only the department's administrators change its services.")
    elif form.validate_on_submit():
        try:
            registered = update_registration(
                client, form.metadata(), via="department page", actor=_actor(member)
            )
        except PublicKeyError as exc:
            form.public_key.errors = [*form.public_key.errors, str(exc)]
            status = 400
        except ClientMetadataError as exc:
            error = _form_metadata_error(form, exc)
            status = 400
        except RegistrationError as exc:
            error = str(exc)
            status = 409
        else:
            if registered.client_secret:
                return _show_secret(member, client, registered.client_secret)
            return redirect(url_for("departments.service", client_id=client.client_id, saved=1))
    else:
        status = 400
    return _service_page(member, client, form=form, error=error, status=status)


def _service_page(member: StaffMember, client: Client, status: int = 200, **context: Any):
    """The service page with its forms."""
    context.setdefault("form", None)
    return (
        render_template(
            "staff/service.html",
            member=member,
            client=client,
            keys_form=context.pop("keys_form", None) or KeysForm(prefix="keys"),
            action_form=ActionForm(prefix="action"),
            saved=request.args.get("saved"),
            **context,
        ),
        status,
    )


def _show_secret(member: StaffMember, client: Client, secret: str) -> Response:
    """The only time a client secret is shown."""
    return render_template(
        "staff/registered.html", member=member, client=client, client_secret=secret
    )


@bp.post("/departments/services/<client_id>/keys")
@staff_required()
def service_keys(member: StaffMember, client_id: str) -> Response:
    """Give the service a JWKS URL or a public key (it then uses private_key_jwt)."""
    client = _service_for(member, client_id)
    if member.is_platform_admin:
        abort(403, "Only the department's administrators change its keys.")
    form = KeysForm(prefix="keys")
    error = None
    if form.validate_on_submit():
        jwks_uri = (form.jwks_uri.data or "").strip() or None
        pasted = (form.public_key.data or "").strip()
        if bool(jwks_uri) == bool(pasted):
            error = "Give either a JWKS URL or a public key, not both and not neither"
        else:
            try:
                jwks = public_key_jwks(pasted) if pasted else None
                set_client_keys(client, jwks=jwks, jwks_uri=jwks_uri, actor=_actor(member))
            except (PublicKeyError, ClientMetadataError, RegistrationError) as exc:
                error = str(exc)
                db.session.rollback()
            else:
                return redirect(url_for("departments.service", client_id=client_id, saved=1))
    form_for_page = ServiceForm(prefix="edit", formdata=None)
    form_for_page.fill_from(client.client_metadata)
    return _service_page(
        member,
        client,
        form=form_for_page,
        keys_form=form,
        error=error or "Check the keys",
        status=400,
    )


@bp.post("/departments/services/<client_id>/secret")
@staff_required()
def service_secret(member: StaffMember, client_id: str) -> Response:
    """Rotate the client secret; the new one is shown once, the old one stops working."""
    client = _service_for(member, client_id)
    form = ActionForm(prefix="action")
    if member.is_platform_admin:
        abort(403, "Only the department's administrators rotate its secret.")
    if not form.validate_on_submit():
        abort(400, "The secret was not rotated: use the button on the service page.")
    try:
        secret = rotate_client_secret(client, actor=_actor(member))
    except RegistrationError as exc:
        abort(400, str(exc))
    return _show_secret(member, client, secret)


@bp.post("/departments/services/<client_id>/status")
@staff_required()
def service_status(member: StaffMember, client_id: str) -> Response:
    """Disable or enable (department); approve, suspend or reinstate (platform)."""
    client = _service_for(member, client_id)
    form = ActionForm(prefix="action")
    if not form.validate_on_submit():
        abort(400, "Nothing was changed: use the buttons on the service page.")
    action = form.action.data
    allowed = PLATFORM_ACTIONS if member.is_platform_admin else DEPARTMENT_ACTIONS
    if action not in allowed:
        abort(403, f"You cannot {action} this service.")
    if action == "approve" and client.status == "pending" and not form.version.data:
        abort(400, "Nothing was approved: approve from the service page, which shows its version.")
    try:
        change_client_status(
            client,
            action,
            actor=_actor(member),
            platform_admin=member.is_platform_admin,
            reason=(form.reason.data or "").strip() or None,
            version=int(form.version.data) if form.version.data else None,
        )
    except RegistrationError as exc:
        message = str(exc)
        abort(409, message[:1].upper() + message[1:] + ".")
    return redirect(url_for("departments.service", client_id=client.client_id))


@bp.get("/logos/<client_id>/<digest>")
def logo(client_id: str, digest: str) -> Response:
    """A department's logo, as the IdP fetched and checked it at approval: citizens' browsers
    never ask the department's server, so it cannot see who opens the sign-in page. The URL
    names the image's SHA-256, so it can be cached for a year; a new logo is a new URL."""
    # Only an active service's logo: one waiting for approval, suspended or switched off is
    # shown to nobody, so its logo is not served either.
    client = find_client(client_id) if LOGO_DIGEST.fullmatch(digest) else None
    if client is None or not client.is_active or client.logo_sha256 != digest:
        abort(404, "There is no such logo.")
    image = db.session.scalar(
        db.select(Client.logo_image).where(Client.id == client.id, Client.logo_sha256 == digest)
    )
    if image is None:
        abort(404, "There is no such logo.")
    response = Response(image, mimetype=client.logo_content_type)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # An image is never a document: nothing in it may run, even if opened on its own.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/admin/services")
@staff_required(platform=True)
def admin_services(member: StaffMember) -> Response:
    """Every service, pending ones first, filterable by status."""
    status = request.args.get("status")
    query = db.select(Client).order_by(Client.status != "pending", Client.id)
    if status in CLIENT_STATUSES:
        query = query.filter_by(status=status)
    services = db.session.scalars(query).all()
    return render_template(
        "staff/admin_services.html",
        member=member,
        services=services,
        status=status,
        statuses=CLIENT_STATUSES,
    )


@bp.route("/admin/initial-access-tokens", methods=["GET", "POST"])
@staff_required(platform=True)
def admin_tokens(member: StaffMember) -> Response:
    """Issue and revoke initial access tokens for the registration API."""
    departments = db.session.scalars(db.select(Department).order_by(Department.name)).all()
    form = InitialAccessTokenForm()
    form.department.choices = choices(
        [(0, "No department")] + [(d.id, d.name) for d in departments]
    )
    revoke_form = ActionForm(prefix="revoke")
    new_token_value = None
    status = 200
    if form.submit.data and form.validate_on_submit():
        department = (
            db.session.get(Department, form.department.data) if form.department.data else None
        )
        try:
            _, new_token_value = issue_initial_access_token(
                description=form.description.data,
                created_by=_actor(member),
                department=department,
                pre_approved=form.pre_approved.data,
                max_uses=form.max_uses.data,
                lifetime=form.lifetime_days.data * 24 * 3600,
            )
        except RegistrationError as exc:
            form.description.errors = [*form.description.errors, str(exc)]
            status = 400
    elif form.is_submitted() and form.submit.data:
        status = 400
    tokens = db.session.scalars(
        db.select(InitialAccessToken).order_by(InitialAccessToken.id.desc()).limit(100)
    ).all()
    return (
        render_template(
            "staff/admin_tokens.html",
            member=member,
            form=form,
            revoke_form=revoke_form,
            tokens=tokens,
            new_token=new_token_value,
            now=utcnow(),
        ),
        status,
    )


@bp.post("/admin/initial-access-tokens/<int:token_id>/revoke")
@staff_required(platform=True)
def admin_revoke_token(member: StaffMember, token_id: int) -> Response:
    """Revoke an initial access token."""
    form = ActionForm(prefix="revoke")
    token = db.session.get(InitialAccessToken, token_id)
    if token is None:
        abort(404, "There is no such token.")
    if not form.validate_on_submit():
        abort(400, "Nothing was changed: use the button on the tokens page.")
    revoke_initial_access_token(token, actor=_actor(member))
    return redirect(url_for("departments.admin_tokens"))

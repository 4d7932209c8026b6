"""Department pages: department administrators register and manage their services; platform
administrators approve, suspend and reinstate services and issue initial access tokens. Staff
sign-in and the guards these pages use are idp/staff/."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from idp.departments.forms import (
    ActionForm,
    DepartmentWelshNameForm,
    InitialAccessTokenForm,
    KeysForm,
    PublicKeyError,
    ServiceForm,
    identity_claim_words,
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
    set_department_welsh_name,
    update_registration,
)
from idp.extensions import db
from idp.models import Client, Department, InitialAccessToken, StaffMember
from idp.models.client import CLIENT_STATUSES, find_client
from idp.models.timestamps import utcnow
from idp.staff.forms import choices
from idp.staff.guards import english_only, staff_required
from idp.staff.pages import staff_error

bp = english_only(Blueprint("departments", __name__))
# A refusal on these pages is said to staff, as on the sign-in pages.
bp.register_error_handler(HTTPException, staff_error)

DEPARTMENT_ACTIONS = ("disable", "enable")
PLATFORM_ACTIONS = ("approve", "suspend", "reinstate")


@dataclass(frozen=True)
class StatusAction:
    """A button that changes a service's status, and what the pages say about it. A platform
    administrator's change (approve, suspend, reinstate) reaches citizens of a department it
    is not theirs to run, so it is confirmed on a page of its own first (GOV.UK Design
    System: "Check a user really wants to do something"); the department's own switch is
    one press."""

    name: str
    label: str
    # Which statuses it applies to.
    applies_to: tuple[str, ...]
    question: str = ""
    consequence: str = ""
    confirm: str = ""
    done: str = ""
    warning: bool = False
    reason: bool = False

    @property
    def confirmed_first(self) -> bool:
        """Whether a confirmation page comes before the change."""
        return self.name in PLATFORM_ACTIONS


STATUS_ACTIONS = {
    action.name: action
    for action in (
        StatusAction(
            "approve",
            "Approve this service",
            ("pending",),
            question="Are you sure you want to approve this service?",
            consequence="Citizens can then sign in to it, with these settings exactly.",
            confirm="Yes, approve this service",
            done="The service is approved: citizens can now sign in to it.",
        ),
        StatusAction(
            "suspend",
            "Suspend this service",
            ("pending", "active", "disabled"),
            question="Are you sure you want to suspend this service?",
            consequence="Citizens cannot sign in to it until a platform administrator "
            "reinstates it, and its department cannot switch it back on.",
            confirm="Yes, suspend this service",
            done="The service is suspended: citizens cannot sign in to it.",
            warning=True,
            reason=True,
        ),
        StatusAction(
            "reinstate",
            "Reinstate this service",
            ("suspended",),
            question="Are you sure you want to reinstate this service?",
            consequence="It goes back to the status it had before it was suspended.",
            confirm="Yes, reinstate this service",
            done="The service is reinstated.",
        ),
        StatusAction(
            "disable",
            "Switch this service off",
            ("pending", "active"),
            done="The service is switched off: citizens cannot sign in to it.",
            warning=True,
            reason=True,
        ),
        StatusAction(
            "enable",
            "Switch this service back on",
            ("disabled",),
            done="The service is switched back on.",
        ),
    )
}
# A logo's address names its SHA-256 in lower-case hex (idp/departments/logos.py).
LOGO_DIGEST = re.compile(r"[0-9a-f]{64}")


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
        "client_name#cy": "client_name_cy",
        "scope": "scopes",
        "require_pkce": "pkce_optional",
    }
    field_name = names.get(exc.field or "", exc.field)
    field = getattr(form, field_name, None) if field_name else None
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.for_a_form()]
        return None
    return str(exc)


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


@bp.route("/departments/services/new/all-settings", methods=["GET", "POST"])
@staff_required()
def new_service(member: StaffMember) -> Response:
    """Register a new service with every setting on one page (for the rarer settings the
    question pages of register_pages.py do not ask); it waits for a platform administrator's
    approval."""
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


def identity_details(client: Client) -> dict[str, Any]:
    """The verified identity details the service registered for, in plain words, and (when
    they differ) those of the version a platform administrator approved."""
    asked = list(client.client_metadata.get("identity_claims", []))
    approved = client.reviewed_identity_claims
    return {
        "identity_details": identity_claim_words(asked),
        "approved_identity_details": (
            identity_claim_words(approved)
            if client.approved_version is not None and approved != asked
            else None
        ),
    }


def _service_page(member: StaffMember, client: Client, status: int = 200, **context: Any):
    """The service page with its forms."""
    context.setdefault("form", None)
    allowed = PLATFORM_ACTIONS if member.is_platform_admin else DEPARTMENT_ACTIONS
    done = STATUS_ACTIONS.get(request.args.get("done", ""))
    return (
        render_template(
            "staff/service.html",
            member=member,
            client=client,
            keys_form=context.pop("keys_form", None) or KeysForm(prefix="keys"),
            action_form=ActionForm(prefix="action"),
            status_actions=[
                STATUS_ACTIONS[name]
                for name in allowed
                if client.status in STATUS_ACTIONS[name].applies_to
            ],
            saved=request.args.get("saved"),
            done=done.done if done else None,
            **identity_details(client),
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


def _can_change(client: Client, action: StatusAction, form: ActionForm) -> bool:
    """Whether the change could be made now, so is worth confirming: one that cannot (a
    status it does not apply to, an approval of settings the department has changed since)
    is refused at once, with the reason, rather than after a confirmation."""
    seen = form.version.data
    return client.status in action.applies_to and (not seen or int(seen) == client.metadata_version)


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
    reason = (form.reason.data or "").strip() or None
    chosen = STATUS_ACTIONS[action]
    if (
        chosen.confirmed_first
        and form.confirmed.data != "yes"
        and _can_change(client, chosen, form)
    ):
        return render_template(
            "staff/confirm_status.html",
            member=member,
            client=client,
            form=form,
            action=chosen,
            version=form.version.data,
            reason=reason,
            **identity_details(client),
        )
    try:
        change_client_status(
            client,
            action,
            actor=_actor(member),
            platform_admin=member.is_platform_admin,
            reason=reason,
            version=int(form.version.data) if form.version.data else None,
        )
    except RegistrationError as exc:
        message = str(exc)
        abort(409, message[:1].upper() + message[1:] + ".")
    return redirect(url_for("departments.service", client_id=client.client_id, done=action))


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


@bp.get("/admin/departments")
@staff_required(platform=True)
def admin_departments(member: StaffMember) -> Response:
    """Every department, its name in Welsh and how many services it runs."""
    counts = dict(
        db.session.execute(
            db.select(Client.department_id, db.func.count(Client.id)).group_by(Client.department_id)
        ).all()
    )
    departments = db.session.scalars(db.select(Department).order_by(Department.name)).all()
    return render_template(
        "staff/admin_departments.html",
        member=member,
        departments=[(d, counts.get(d.id, 0)) for d in departments],
        changed=request.args.get("changed"),
    )


@bp.route("/admin/departments/<int:department_id>/welsh-name", methods=["GET", "POST"])
@staff_required(platform=True)
def admin_department_welsh_name(member: StaffMember, department_id: int) -> Response:
    """Give a department its name in Welsh (or take it away)."""
    department = db.session.get(Department, department_id) if department_id < 2**31 else None
    if department is None:
        abort(404, "There is no such department.")
    form = DepartmentWelshNameForm()
    if request.method == "GET":
        form.name_cy.data = department.name_cy or ""
    status = 200
    if form.validate_on_submit():
        try:
            set_department_welsh_name(department, form.name_cy.data, actor=_actor(member))
        except RegistrationError as exc:
            form.name_cy.errors = [*form.name_cy.errors, str(exc)]
        else:
            return redirect(url_for("departments.admin_departments", changed=department.id))
    if form.is_submitted():
        status = 400
    return (
        render_template(
            "staff/admin_department_welsh_name.html",
            member=member,
            form=form,
            department=department,
        ),
        status,
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
    token = db.session.get(InitialAccessToken, token_id) if token_id < 2**31 else None
    if token is None:
        abort(404, "There is no such token.")
    if not form.validate_on_submit():
        abort(400, "Nothing was changed: use the button on the tokens page.")
    revoke_initial_access_token(token, actor=_actor(member))
    return redirect(url_for("departments.admin_tokens"))

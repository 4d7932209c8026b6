"""Registering and managing department services (clients), and the tokens that allow it.

Every path that changes a registration (the RFC 7591/7592 API, the department and
administrator pages, the CLI, the demo file) comes through here, so the same checks and the
same audit events apply whichever way a department joins.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm.attributes import flag_modified

from idp import audit
from idp.departments.logos import LogoRefused, fetch_logo
from idp.departments.metadata import (
    SECRET_AUTH_METHODS,
    ClientMetadataError,
    sector_identifier,
    validate_client_metadata,
)
from idp.extensions import db
from idp.models import (
    AuthorizationCode,
    Client,
    Consent,
    Department,
    InitialAccessToken,
    LogoutDelivery,
    RefreshToken,
    SessionClient,
    Token,
    UsedClientAssertion,
)
from idp.models.client import (
    CLIENT_STATUS_ACTIVE,
    CLIENT_STATUS_DISABLED,
    CLIENT_STATUS_PENDING,
    CLIENT_STATUS_SUSPENDED,
    hash_client_secret,
    name_key,
)
from idp.models.timestamps import utcnow
from idp.security.secrets import hash_token, new_token
from idp.settings import current_settings

MIN_SECRET_LENGTH = 32


class RegistrationError(ValueError):
    """A change to a registration is not allowed; the message says why."""


@dataclass(frozen=True)
class Registered:
    """A new or changed registration, with the credentials shown only this once."""

    client: Client
    client_secret: str | None = None
    registration_access_token: str | None = None


CLIENT_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_id() -> str:
    """A random client identifier (it says nothing about the department); letters and digits
    only, so it never starts with '-' (a command line would read it as an option)."""
    return "".join(secrets.choice(CLIENT_ID_ALPHABET) for _ in range(24))


def new_client_secret() -> str:
    """A client secret with 256 bits of entropy."""
    return new_token(32)


def find_department(name: str) -> Department | None:
    """The department with this exact name."""
    return db.session.scalar(db.select(Department).filter_by(name=name))


def ensure_department(name: str, *, name_cy: str | None = None) -> Department:
    """The department with this name, created when missing (with its Welsh name, if given)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise RegistrationError("a department name must be 1 to 200 characters")
    department = find_department(name)
    if department is None:
        department = Department(name=name, name_cy=_welsh_name(name_cy))
        db.session.add(department)
        db.session.commit()
        audit.record("department.created", department=name)
    return department


def _welsh_name(name_cy: str | None) -> str | None:
    """A Welsh name checked like the English one; None or blank means none."""
    if name_cy is None or not name_cy.strip():
        return None
    name_cy = name_cy.strip()
    if len(name_cy) > 200 or not name_cy.isprintable():
        raise RegistrationError(
            "a department's Welsh name must be 1 to 200 characters, without control characters"
        )
    return name_cy


def set_department_welsh_name(department: Department, name_cy: str | None, actor: str) -> None:
    """Give the department its name in Welsh (shown on the citizen's pages read in Welsh), or
    take it away with None or a blank."""
    department.name_cy = _welsh_name(name_cy)
    db.session.commit()
    audit.record(
        "department.welsh_name_changed",
        department=department.name,
        welsh_name=department.name_cy,
        actor=actor,
    )


def _check_sector_unchanged(client: Client, clean: dict[str, Any]) -> str:
    """A client's subject type and pairwise sector are fixed: changing either would change
    every citizen's sub, and pairwise to public would let the service link citizens."""
    sector = sector_identifier(clean)
    if client.sector_identifier and clean["subject_type"] != client.subject_type:
        raise ClientMetadataError(
            f"subject_type cannot change from {client.subject_type} to "
            f"{clean['subject_type']} after registration: it would change every citizen's sub; "
            "register a new service instead"
        )
    if (
        client.sector_identifier
        and clean["subject_type"] == "pairwise"
        and client.subject_type == "pairwise"
        and sector != client.sector_identifier
    ):
        raise ClientMetadataError(
            f"sector_identifier_uri: this change would move the service from sector "
            f"{client.sector_identifier} to {sector}, which changes every citizen's sub; "
            f"register a sector_identifier_uri on {client.sector_identifier} that lists "
            f"the new redirect URIs"
        )
    return sector


def _active_namesake(client_name: str | None, exclude_id: int | None = None) -> Client | None:
    """Another active service citizens would see under the same name (case and spacing
    ignored), or None."""
    key = name_key(client_name)
    if key is None:
        return None
    query = db.select(Client).where(Client.name_key == key, Client.status == CLIENT_STATUS_ACTIVE)
    if exclude_id is not None:
        query = query.where(Client.id != exclude_id)
    return db.session.scalars(query.limit(1)).first()


def _names(metadata: dict[str, Any]) -> dict[str, str]:
    """A registration's names as citizens read them, by field: client_name and its names in
    other languages (client_name#cy), each as its name_key."""
    found = {}
    for field, value in metadata.items():
        if field == "client_name" or field.startswith("client_name#"):
            key = name_key(value)
            if key is not None:
                found[field] = key
    return found


def _check_name_free(clean: dict[str, Any], exclude_id: int | None = None) -> None:
    """A service may not take the name of another active service, in any language the pages
    are read in: citizens choose whom to trust by the name on the sign-in page, so two services
    must never share one (a Welsh name that is another service's English name included)."""
    name = clean.get("client_name")
    if _active_namesake(name, exclude_id) is not None:
        raise ClientMetadataError(
            f"client_name: {name!r} is already the name of another active service; citizens "
            "could not tell the two apart, so choose a different name"
        )
    wanted = _names(clean)
    query = db.select(Client.client_metadata).where(Client.status == CLIENT_STATUS_ACTIVE)
    if exclude_id is not None:
        query = query.where(Client.id != exclude_id)
    taken = {key for metadata in db.session.scalars(query) for key in _names(metadata).values()}
    for field, key in wanted.items():
        if key in taken:
            raise ClientMetadataError(
                f"{field}: {clean[field]!r} is already the name of another active service; "
                "citizens could not tell the two apart, so choose a different name"
            )


def _store_metadata(client: Client, clean: dict[str, Any]) -> None:
    """The metadata as a new version; the name key kept in step with client_name."""
    client.client_metadata = clean
    client.name_key = name_key(clean.get("client_name"))
    client.metadata_version = (client.metadata_version or 0) + 1


def _approve_current_version(client: Client) -> None:
    """The current metadata is the approved version (not committed); its settings are kept
    apart, so what the IdP acts on never includes a later change until that is approved."""
    client.approved_version = client.metadata_version
    client.approved_metadata = dict(client.client_metadata)
    flag_modified(client, "approved_version")


def _logo_values(logo_uri: str | None, client_id: str) -> dict[str, Any]:
    """Fetch and check the logo for an approval; the columns to store. A logo that cannot be
    used does not stop the approval: the service has no logo, and the reason is kept for the
    administrator and recorded."""
    values: dict[str, Any] = {
        "logo_content_type": None,
        "logo_sha256": None,
        "logo_image": None,
        "logo_problem": None,
    }
    if not logo_uri:
        return values
    try:
        logo = fetch_logo(logo_uri)
    except LogoRefused as exc:
        values["logo_problem"] = str(exc)[:300]
        audit.record(
            "client.logo_refused", "failure", client_id=client_id, reason=values["logo_problem"]
        )
        return values
    values.update(
        logo_content_type=logo.content_type, logo_sha256=logo.sha256, logo_image=logo.image
    )
    return values


def register_client(
    client_id: str,
    metadata: dict[str, Any],
    client_secret: str | None,
    department: Department | None = None,
) -> Client:
    """Create or update a client from a file (operator or demo); running twice changes nothing.

    The operator vouches for these clients, so they are active at once.
    """
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 128:
        raise ClientMetadataError("client_id must be text of 1 to 128 characters")
    clean = validate_client_metadata(metadata)
    method = clean["token_endpoint_auth_method"]
    if method in SECRET_AUTH_METHODS:
        if not client_secret:
            raise ClientMetadataError(f"client_secret is required for {method}")
        if len(client_secret) < MIN_SECRET_LENGTH:
            raise ClientMetadataError(
                f"client_secret must be at least {MIN_SECRET_LENGTH} characters"
            )
    elif client_secret:
        raise ClientMetadataError(f"client_secret must not be given for {method}")
    secret_hash = hash_client_secret(client_secret) if client_secret else None
    client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    created = client is None
    if created:
        client = Client(
            client_id=client_id,
            status=CLIENT_STATUS_ACTIVE,
            approved_at=utcnow(),
            metadata_version=0,
        )
        db.session.add(client)
    # The operator's file is authoritative: it may change a subject type or sector on purpose
    # (audited below); self-service changes may not.
    sector = sector_identifier(clean)
    changed = (
        created
        or client.client_metadata != clean
        or client.client_secret_hash != secret_hash
        or client.sector_identifier != sector
        or (department is not None and client.department_id != department.id)
    )
    if changed:
        if department is not None:
            client.department_id = department.id
        _store_metadata(client, clean)
        # The operator's file is its approval of exactly this version.
        _approve_current_version(client)
        for name, value in _logo_values(clean.get("logo_uri"), client_id).items():
            setattr(client, name, value)
        client.client_secret_hash = secret_hash
        client.sector_identifier = sector
        client.updated_at = utcnow()
    db.session.commit()
    if changed:
        audit.record(
            "client.registered" if created else "client.updated",
            client_id=client_id,
            via="file",
            subject_type=clean["subject_type"],
            sector=sector,
        )
    return client


def create_registration(
    metadata: Any,
    *,
    department: Department | None,
    approved: bool,
    via: str,
    actor: str | None = None,
    initial_access_token: str | None = None,
) -> Registered:
    """A new self-service registration (API or department page), pending unless approved.

    With initial_access_token, one of its uses is spent in the same transaction, so a token
    is never spent on a registration that failed, nor used more often than allowed.
    """
    clean = validate_client_metadata(metadata)
    _check_name_free(clean)
    if initial_access_token is not None and not spend_initial_access_token(initial_access_token):
        raise RegistrationError("the initial access token is not valid (used up or expired)")
    method = clean["token_endpoint_auth_method"]
    client_secret = new_client_secret() if method in SECRET_AUTH_METHODS else None
    registration_access_token = new_token(32)
    now = utcnow()
    client_id = new_client_id()
    # A pre-approved token is the platform's approval of this first version (logo included).
    logo = _logo_values(clean.get("logo_uri"), client_id) if approved else {}
    client = Client(
        client_id=client_id,
        client_metadata=clean,
        name_key=name_key(clean.get("client_name")),
        metadata_version=1,
        approved_version=1 if approved else None,
        approved_metadata=dict(clean) if approved else None,
        **logo,
        client_secret_hash=hash_client_secret(client_secret) if client_secret else None,
        status=CLIENT_STATUS_ACTIVE if approved else CLIENT_STATUS_PENDING,
        approved_at=now if approved else None,
        client_id_issued_at=now,
        updated_at=now,
        department_id=department.id if department else None,
        registration_access_token_hash=hash_token(registration_access_token),
        sector_identifier=sector_identifier(clean),
    )
    db.session.add(client)
    db.session.commit()
    audit.record(
        "client.registered",
        client_id=client.client_id,
        via=via,
        actor=actor,
        status=client.status,
        department=department.name if department else None,
    )
    return Registered(client, client_secret, registration_access_token)


# Changes a platform administrator must see before citizens meet them: where citizens are
# sent, what the service is called and shows, what it may ask for (scopes and verified identity
# details) and how it authenticates.
# Keys (jwks, jwks_uri) and contact details stay self-service, so departments can rotate keys.
MATERIAL_FIELDS = (
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "client_name",
    "logo_uri",
    "client_uri",
    "scope",
    "identity_claims",
    "token_endpoint_auth_method",
    "require_pkce",
    "sector_identifier_uri",
)


def _refuse_if_suspended(client: Client, change: str) -> None:
    """A suspended service stays as the platform left it until it is reinstated."""
    if client.status == CLIENT_STATUS_SUSPENDED:
        raise RegistrationError(
            f"this service is suspended by the platform, so it cannot be {change}; "
            "ask the platform team to reinstate it first"
        )


def update_registration(
    client: Client,
    metadata: Any,
    *,
    via: str,
    actor: str | None = None,
    rotate_registration_token: bool = False,
) -> Registered:
    """Replace a registration's metadata (RFC 7592 2.2: the request is the whole metadata).

    A material change to an approved service sends it back for approval (it stops working
    until then); with rotate_registration_token the registration access token is replaced.
    """
    _refuse_if_suspended(client, "changed")
    clean = validate_client_metadata(metadata)
    sector = _check_sector_unchanged(client, clean)
    if _names(clean) != _names(client.client_metadata) or not client.is_active:
        _check_name_free(clean, exclude_id=client.id)
    old = client.client_metadata
    changed_fields = sorted(
        name for name in set(old) | set(clean) if old.get(name) != clean.get(name)
    )
    material = [name for name in changed_fields if name in MATERIAL_FIELDS]
    previous_status = client.status
    previous_version = client.metadata_version
    # Only a version a platform administrator approved may be active: a non-material change
    # to the approved version carries the approval with it; anything else waits.
    carry_approval = not material and client.approval_is_current
    if material and client.status in (CLIENT_STATUS_ACTIVE, CLIENT_STATUS_DISABLED):
        client.status = CLIENT_STATUS_PENDING
    old_method = client.token_endpoint_auth_method
    new_method = clean["token_endpoint_auth_method"]
    client_secret = None
    if new_method in SECRET_AUTH_METHODS and not client.client_secret_hash:
        client_secret = new_client_secret()
        client.client_secret_hash = hash_client_secret(client_secret)
    elif new_method not in SECRET_AUTH_METHODS:
        client.client_secret_hash = None
    registration_access_token = None
    if rotate_registration_token:
        registration_access_token = new_token(32)
        client.registration_access_token_hash = hash_token(registration_access_token)
    if changed_fields:
        _store_metadata(client, clean)
        if carry_approval:
            _approve_current_version(client)
    # Written even when unchanged here, so an approval committed meanwhile by another process
    # (of the version this change replaces) cannot leave the new version active.
    flag_modified(client, "status")
    flag_modified(client, "approved_version")
    client.sector_identifier = sector
    client.updated_at = utcnow()
    if client.status != previous_status:
        _revoke_tokens(client)
    db.session.commit()
    audit.record(
        "client.updated",
        client_id=client.client_id,
        via=via,
        actor=actor,
        changed=changed_fields,
        status=client.status,
        previous_status=previous_status,
        version=client.metadata_version,
        previous_version=previous_version,
        auth_method_changed=old_method != new_method or None,
    )
    return Registered(client, client_secret, registration_access_token)


def delete_registration(client: Client, *, via: str, actor: str | None = None) -> None:
    """Remove a registration and everything issued to it (RFC 7592 2.3)."""
    _refuse_if_suspended(client, "deleted")
    delete_client(client, via=via, actor=actor)


@dataclass(frozen=True)
class Deleted:
    """What deleting a service removed."""

    client_id: str
    access_tokens: int
    refresh_tokens: int
    codes: int
    consents: int
    sessions: int
    logouts_cancelled: int


def delete_client(client: Client, *, via: str, actor: str | None = None) -> Deleted:
    """Remove a service and everything issued to it, in one transaction: its access and
    refresh tokens and codes stop working at once, citizens' consents to it go, it leaves the
    sessions it took part in (no logout token is sent to a service that no longer exists) and
    logout tokens still owed to it are recorded as failed. Its audit entries stay: they name
    the client_id as text, so the chain still verifies. Journeys in progress for it end at
    their next step: the client is no longer known."""
    client_id = client.client_id
    now = utcnow()

    def remove(model) -> int:
        return db.session.execute(
            delete(model)
            .where(model.client_id == client_id)
            .execution_options(synchronize_session=False)
        ).rowcount

    counts = {
        "access_tokens": remove(Token),
        "refresh_tokens": remove(RefreshToken),
        "codes": remove(AuthorizationCode),
        "consents": remove(Consent),
        "sessions": remove(SessionClient),
    }
    remove(UsedClientAssertion)
    # OIDC Back-Channel Logout 2.8: kept for `idp logouts list`, ended so no worker sends them
    # (a worker sending one now loses its claim, so its result is not recorded over this).
    counts["logouts_cancelled"] = db.session.execute(
        db.update(LogoutDelivery)
        .where(LogoutDelivery.client_id == client_id, LogoutDelivery.status == "pending")
        .values(
            status="failed",
            finished_at=now,
            claimed_until=None,
            last_error="the service was deleted",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.delete(client)
    db.session.commit()
    audit.record("client.deleted", client_id=client_id, via=via, actor=actor, **counts)
    return Deleted(client_id=client_id, **counts)


def rotate_client_secret(client: Client, *, actor: str) -> str:
    """A new client secret; the old one stops working at once."""
    _refuse_if_suspended(client, "changed")
    if client.token_endpoint_auth_method not in SECRET_AUTH_METHODS:
        raise RegistrationError(
            f"this service authenticates with {client.token_endpoint_auth_method}, "
            "not a client secret"
        )
    secret = new_client_secret()
    client.client_secret_hash = hash_client_secret(secret)
    client.updated_at = utcnow()
    db.session.commit()
    audit.record("client.secret_rotated", client_id=client.client_id, actor=actor)
    return secret


def set_client_keys(
    client: Client, *, jwks: dict | None = None, jwks_uri: str | None = None, actor: str
) -> None:
    """Give the service's public keys by value or by URL; it then uses private_key_jwt."""
    _refuse_if_suspended(client, "changed")
    metadata = {k: v for k, v in client.client_metadata.items() if k not in {"jwks", "jwks_uri"}}
    metadata["token_endpoint_auth_method"] = "private_key_jwt"
    if jwks is not None:
        metadata["jwks"] = jwks
    if jwks_uri is not None:
        metadata["jwks_uri"] = jwks_uri
    clean = validate_client_metadata(metadata)
    # Keys stay self-service: the approval of the version they replace carries over.
    carry_approval = client.approval_is_current
    _store_metadata(client, clean)
    if carry_approval:
        _approve_current_version(client)
    flag_modified(client, "approved_version")
    client.client_secret_hash = None
    client.updated_at = utcnow()
    db.session.commit()
    audit.record(
        "client.keys_changed",
        client_id=client.client_id,
        actor=actor,
        by="jwks_uri" if jwks_uri is not None else "jwks",
    )


# Who may move a service between which states: action -> (from, to, platform only, past tense).
_TRANSITIONS = {
    "approve": ({CLIENT_STATUS_PENDING}, CLIENT_STATUS_ACTIVE, True, "approved"),
    "suspend": (
        {CLIENT_STATUS_PENDING, CLIENT_STATUS_ACTIVE, CLIENT_STATUS_DISABLED},
        CLIENT_STATUS_SUSPENDED,
        True,
        "suspended",
    ),
    "reinstate": ({CLIENT_STATUS_SUSPENDED}, None, True, "reinstated"),
    "disable": (
        {CLIENT_STATUS_PENDING, CLIENT_STATUS_ACTIVE},
        CLIENT_STATUS_DISABLED,
        False,
        "disabled",
    ),
    "enable": ({CLIENT_STATUS_DISABLED}, None, False, "enabled"),
}


def _revoke_tokens(client: Client) -> None:
    """End the service's live access (in the caller's transaction)."""
    db.session.execute(
        db.update(Token)
        .where(Token.client_id == client.client_id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def change_client_status(
    client: Client,
    action: str,
    *,
    actor: str,
    platform_admin: bool,
    reason: str | None = None,
    version: int | None = None,
) -> None:
    """Approve, suspend, reinstate (platform administrators); disable, enable (departments).

    An approval is of one exact version of the metadata (the one the administrator looked
    at, when version is given); only while that version is current may the service be
    active, so no switch off and on, reinstatement or further edit makes an unreviewed change
    live. The change is one conditional UPDATE on the status and version it was checked
    against, so two people acting at once cannot undo each other's change unnoticed.
    """
    if action not in _TRANSITIONS:
        raise RegistrationError(f"unknown action {action!r}")
    allowed_from, target, needs_platform, past = _TRANSITIONS[action]
    if needs_platform and not platform_admin:
        raise RegistrationError(f"only a platform administrator can {action} a service")
    previous = client.status
    if previous not in allowed_from:
        article = "an" if previous[0] in "aeiou" else "a"
        raise RegistrationError(f"{article} {previous} service cannot be {past}")
    current_version = client.metadata_version
    if action == "approve" and version is not None and version != current_version:
        raise RegistrationError(
            f"this service changed while you were looking at it: you saw version {version} "
            f"and it is now version {current_version}; look at the new settings and approve "
            "again if they are right"
        )
    if target is None:
        if action == "reinstate":
            # Back to where the suspension found it (a department's switch-off included).
            target = client.status_before_suspension or CLIENT_STATUS_PENDING
        else:
            target = CLIENT_STATUS_ACTIVE
        if target == CLIENT_STATUS_ACTIVE and not client.approval_is_current:
            target = CLIENT_STATUS_PENDING  # this version still waits for approval
    if target == CLIENT_STATUS_ACTIVE:
        namesake = _active_namesake(client.client_metadata.get("client_name"), client.id)
        if namesake is not None:
            raise RegistrationError(
                f"this service cannot be {past}: its name {client.client_name!r} is the name "
                f"of the active service {namesake.client_id}, and citizens could not tell them "
                "apart; the department must rename one of them first"
            )
        try:
            _check_name_free(client.client_metadata, exclude_id=client.id)
        except ClientMetadataError as clash:
            raise RegistrationError(
                f"this service cannot be {past}: {clash}; the department must rename one of "
                "them first"
            ) from None
    now = utcnow()
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "approve":
        values["approved_version"] = current_version
        values["approved_metadata"] = dict(client.client_metadata)
        values.update(_logo_values(client.logo_uri, client.client_id))
    if target == CLIENT_STATUS_ACTIVE and client.approved_at is None:
        values["approved_at"] = now
    if target == CLIENT_STATUS_SUSPENDED:
        values["status_before_suspension"] = previous
    result = db.session.execute(
        db.update(Client)
        .where(
            Client.id == client.id,
            Client.status == previous,
            Client.metadata_version == current_version,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise RegistrationError(
            "someone else changed this service's status or settings at the same moment; look again"
        )
    if target != CLIENT_STATUS_ACTIVE:
        _revoke_tokens(client)
    db.session.commit()
    db.session.refresh(client)
    approval = (
        {"version": current_version, "metadata_sha256": client.metadata_sha256}
        if action == "approve"
        else {}
    )
    audit.record(
        f"client.{past}",
        client_id=client.client_id,
        actor=actor,
        previous_status=previous,
        status=target,
        reason=reason,
        **approval,
        logo=("stored" if client.logo_sha256 else "refused" if client.logo_problem else None)
        if action == "approve"
        else None,
    )


def issue_initial_access_token(
    *,
    description: str,
    created_by: str,
    department: Department | None = None,
    pre_approved: bool = False,
    max_uses: int = 1,
    lifetime: int | None = None,
) -> tuple[InitialAccessToken, str]:
    """A new initial access token (RFC 7591 3); the token itself is returned only here."""
    description = (description or "").strip()
    if not description or len(description) > 200:
        raise RegistrationError("describe who the token is for (1 to 200 characters)")
    if not 1 <= max_uses <= 1000:
        raise RegistrationError("a token allows 1 to 1000 registrations")
    lifetime = lifetime or current_settings().initial_access_token_lifetime
    if not 60 <= lifetime <= 90 * 24 * 3600:
        raise RegistrationError("a token must last between a minute and 90 days")
    value = new_token(32)
    token = InitialAccessToken(
        token_hash=hash_token(value),
        description=description,
        department_id=department.id if department else None,
        pre_approved=pre_approved,
        max_uses=max_uses,
        created_by=created_by,
        expires_at=utcnow() + timedelta(seconds=lifetime),
    )
    db.session.add(token)
    db.session.commit()
    audit.record(
        "initial_access_token.issued",
        actor=created_by,
        token_id=token.id,
        department=department.name if department else None,
        pre_approved=pre_approved,
        max_uses=max_uses,
    )
    return token, value


def revoke_initial_access_token(token: InitialAccessToken, *, actor: str) -> None:
    """Stop a token from allowing any more registrations."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
        audit.record("initial_access_token.revoked", actor=actor, token_id=token.id)


def spend_initial_access_token(value: str) -> InitialAccessToken | None:
    """Count one registration against a usable token; None when it is not usable.

    The count is one conditional UPDATE, so two processes cannot both spend the last use.
    """
    if not value or len(value) > 128:
        return None
    now = utcnow()
    token_hash = hash_token(value)
    result = db.session.execute(
        db.update(InitialAccessToken)
        .where(
            InitialAccessToken.token_hash == token_hash,
            InitialAccessToken.revoked_at.is_(None),
            InitialAccessToken.expires_at > now,
            InitialAccessToken.uses < InitialAccessToken.max_uses,
        )
        .values(uses=InitialAccessToken.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return None
    return db.session.scalar(db.select(InitialAccessToken).filter_by(token_hash=token_hash))


def find_initial_access_token(value: str) -> InitialAccessToken | None:
    """A usable initial access token with this value (read only; nothing is spent)."""
    if not value or len(value) > 128:
        return None
    token = db.session.scalar(db.select(InitialAccessToken).filter_by(token_hash=hash_token(value)))
    return token if token is not None and token.is_usable(utcnow()) else None


def find_client_by_registration_token(value: str) -> Client | None:
    """The client this registration access token manages."""
    if not value or len(value) > 128:
        return None
    return db.session.scalar(
        db.select(Client).filter_by(registration_access_token_hash=hash_token(value))
    )

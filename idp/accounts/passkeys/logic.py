"""Passkey ceremonies (WebAuthn Level 3): options, verification, storing, and their challenges.

The relying party is the issuer: its host name is the RP ID and its scheme://host[:port] the
one origin accepted. Every ceremony starts with options whose challenge is kept server side in
a WebAuthnChallenge row, found by the SHA-256 of a random handle that only the browser holds.
The row is claimed by one conditional UPDATE (unused, unexpired, same purpose and citizen), so
a challenge is answered at most once even when two IdP processes race, and it expires after
five minutes. Failed assertions count against the second_factor throttle of the citizen who
owns the credential; a sign count that goes backwards is refused and audited as a possible
cloned authenticator. Nothing here logs a credential, a challenge or a handle.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask_babel import gettext as _
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError, OperationalError
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from idp import audit
from idp.accounts.second_factor.logic import has_phone_number, totp_credential
from idp.extensions import db
from idp.mail import send_in_background
from idp.models import Citizen, Passkey, WebAuthnChallenge
from idp.models.timestamps import utcnow
from idp.security import throttle
from idp.security.secrets import hash_token
from idp.settings import current_settings

# What a challenge is for: adding a passkey on the account pages, adding the first second
# factor after sign-up, the second step of signing in, and signing in with a passkey alone.
REGISTER = "register"
SETUP = "setup"
SECOND_FACTOR = "second_factor"
SIGN_IN = "sign_in"
PURPOSES = (REGISTER, SETUP, SECOND_FACTOR, SIGN_IN)
REGISTRATION_PURPOSES = (REGISTER, SETUP)
AUTHENTICATION_PURPOSES = (SECOND_FACTOR, SIGN_IN)

CHALLENGE_LIFETIME = timedelta(minutes=5)
CHALLENGE_BYTES = 32
RP_NAME = "Government sign in"
NAME_MAX_LENGTH = 100
# A credential ID is at most 1023 bytes (WebAuthn Level 3 5.1): 1364 base64url characters.
CREDENTIAL_ID_MAX_LENGTH = 1364
# ES256 first: what platform authenticators and security keys make; EdDSA and RS256 (Windows
# Hello) too.
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]
# RFC 8176 2: a key bound to one device is "hwk"; a synced (backed-up) passkey is "swk".
HARDWARE_KEY = "hwk"
SOFTWARE_KEY = "swk"
THROTTLE_KIND = "second_factor"


class PasskeyError(Exception):
    """A ceremony that did not succeed: a code for the JSON answer, a message for the citizen."""

    def __init__(self, code: str, message: str, *, status: int = 400, retry_after: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class RelyingParty:
    """Who the passkeys are for: the RP ID (a host name) and the one origin accepted."""

    id: str
    origin: str


@dataclass(frozen=True)
class Ceremony:
    """Options to hand to the browser, and the handle that finds their challenge again."""

    handle: str
    options: dict[str, Any]


@dataclass(frozen=True)
class Authenticated:
    """A verified assertion: whose passkey it was, and the RFC 8176 method it proves."""

    citizen: Citizen
    passkey: Passkey
    method: str


# -- Messages the citizen sees ----------------------------------------------------------------


def _unreadable() -> PasskeyError:
    return PasskeyError(
        "invalid_request",
        _("Your browser sent a passkey response that could not be read. Try again."),
    )


def _expired() -> PasskeyError:
    return PasskeyError(
        "challenge_expired",
        _("The passkey request has expired or was already used. Try again."),
    )


def _not_accepted() -> PasskeyError:
    return PasskeyError(
        "verification_failed",
        _("That passkey could not be checked. Try again, or use another way to sign in."),
    )


def _unknown_credential() -> PasskeyError:
    return PasskeyError(
        "unknown_credential",
        _(
            "That passkey is not registered with any account. It may have been removed."
            " Sign in with your email address and password."
        ),
    )


def _not_yours() -> PasskeyError:
    return PasskeyError(
        "not_your_passkey",
        _("That passkey is not one of yours. Use a passkey you added to this account."),
    )


def _throttled(decision: throttle.Decision) -> PasskeyError:
    return PasskeyError(
        "too_many_attempts",
        _(
            "Too many attempts that did not work. Wait %(wait)s and try again.",
            wait=throttle.wait_in_words(decision.retry_after),
        ),
        status=429,
        retry_after=decision.retry_after,
    )


# -- The relying party and the citizen's passkeys ---------------------------------------------


def relying_party() -> RelyingParty:
    """The RP ID and origin, from the issuer (https://id.example.gov.uk/path -> id.example...)."""
    parts = urlsplit(current_settings().issuer)
    return RelyingParty(id=parts.hostname or "", origin=f"{parts.scheme}://{parts.netloc}")


def user_handle(citizen: Citizen) -> bytes:
    """The WebAuthn user.id: stable and opaque (no email, no database id), 32 bytes."""
    return hashlib.sha256(b"webauthn user handle\x00" + citizen.subject.encode()).digest()


def citizen_passkeys(citizen: Citizen) -> list[Passkey]:
    """The citizen's passkeys, oldest first."""
    return list(
        db.session.scalars(
            db.select(Passkey)
            .filter_by(citizen_id=citizen.id)
            .order_by(Passkey.created_at, Passkey.id)
        )
    )


def has_passkey(citizen: Citizen) -> bool:
    """Whether the citizen has at least one passkey."""
    return (
        db.session.scalar(db.select(Passkey.id).filter_by(citizen_id=citizen.id).limit(1))
        is not None
    )


def has_authenticator_app(citizen: Citizen) -> bool:
    """Whether the citizen has a confirmed authenticator app."""
    credential = totp_credential(citizen)
    return credential is not None and credential.confirmed_at is not None


def amr_method(passkey: Passkey) -> str:
    """hwk for a passkey bound to one device, swk for a synced one."""
    return (
        SOFTWARE_KEY if passkey.device_type == CredentialDeviceType.MULTI_DEVICE else HARDWARE_KEY
    )


def passkey_name(value: Any) -> str:
    """The name a citizen gave a passkey, tidied; "Passkey" when they gave none."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise PasskeyError("invalid_name", _("Enter a name for your passkey"))
    name = " ".join(value.split())
    if not name:
        return _("Passkey")
    if len(name) > NAME_MAX_LENGTH:
        raise PasskeyError(
            "invalid_name",
            _("The name must be %(max)d characters or fewer", max=NAME_MAX_LENGTH),
        )
    if any(not ch.isprintable() for ch in name):
        raise PasskeyError("invalid_name", _("The name must not contain control characters"))
    return name


def _descriptors(passkeys: list[Passkey]) -> list[PublicKeyCredentialDescriptor]:
    """Credential descriptors (ID and transports) for excludeCredentials or allowCredentials."""
    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(p.credential_id),
            transports=[AuthenticatorTransport(t) for t in (p.transports or []) if t in known]
            or None,
        )
        for p in passkeys
    ]


# -- Challenges -------------------------------------------------------------------------------


def begin_challenge(purpose: str, citizen: Citizen | None) -> tuple[str, bytes]:
    """A new challenge kept server side; the handle (for the browser) and the challenge."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown passkey ceremony {purpose!r}")
    _forget_expired_challenges()
    handle = secrets.token_urlsafe(32)
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    now = utcnow()
    db.session.add(
        WebAuthnChallenge(
            handle_hash=hash_token(handle),
            purpose=purpose,
            citizen_id=citizen.id if citizen else None,
            challenge=bytes_to_base64url(challenge),
            created_at=now,
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    db.session.commit()
    return handle, challenge


def _forget_expired_challenges() -> None:
    """Delete challenges that can no longer be answered (anyone can ask for one to sign in)."""
    try:
        db.session.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at < utcnow()))
        db.session.commit()
    except OperationalError:
        # Two processes tidying at once may deadlock on PostgreSQL: the other one tidies.
        db.session.rollback()


def take_challenge(purpose: str, handle: str | None, citizen: Citizen | None) -> bytes:
    """The challenge for this handle, used up now; refused if unknown, used, expired or not ours."""
    if not handle or not isinstance(handle, str) or len(handle) > 128:
        raise _expired()
    owner = (
        WebAuthnChallenge.citizen_id == citizen.id
        if citizen is not None
        else WebAuthnChallenge.citizen_id.is_(None)
    )
    # One conditional UPDATE: of two requests answering the same challenge, only one claims it.
    claimed = db.session.execute(
        update(WebAuthnChallenge)
        .where(
            WebAuthnChallenge.handle_hash == hash_token(handle),
            WebAuthnChallenge.purpose == purpose,
            WebAuthnChallenge.used_at.is_(None),
            WebAuthnChallenge.expires_at > utcnow(),
            owner,
        )
        .values(used_at=utcnow())
        .returning(WebAuthnChallenge.challenge)
        .execution_options(synchronize_session=False)
    ).first()
    db.session.commit()
    if claimed is None:
        raise _expired()
    return base64url_to_bytes(claimed.challenge)


# -- Registration -----------------------------------------------------------------------------


def registration_options(citizen: Citizen, purpose: str) -> Ceremony:
    """Options for navigator.credentials.create(): a discoverable credential, verified user."""
    if purpose not in REGISTRATION_PURPOSES:
        raise ValueError(f"not a registration ceremony: {purpose!r}")
    handle, challenge = begin_challenge(purpose, citizen)
    rp = relying_party()
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=RP_NAME,
        user_name=citizen.email,
        user_id=user_handle(citizen),
        user_display_name=citizen.name or citizen.email,
        challenge=challenge,
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            # Required so that the passkey can sign in on its own (a discoverable credential).
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(citizen_passkeys(citizen)),
        supported_pub_key_algs=ALGORITHMS,
    )
    return Ceremony(handle, options_to_json_dict(options))


def _parse_registration(body: Any) -> RegistrationCredential:
    """The credential of a registration answer, or a clear refusal."""
    credential = body.get("credential") if isinstance(body, dict) else None
    if not isinstance(credential, dict):
        raise _unreadable()
    credential_id = credential.get("id")
    if isinstance(credential_id, str) and len(credential_id) > CREDENTIAL_ID_MAX_LENGTH:
        raise _unreadable()
    try:
        return parse_registration_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError):
        raise _unreadable() from None


def register_passkey(citizen: Citizen, purpose: str, handle: str | None, body: Any) -> Passkey:
    """Check an answer to registration_options and store the new passkey."""
    if purpose not in REGISTRATION_PURPOSES:
        raise ValueError(f"not a registration ceremony: {purpose!r}")
    name = passkey_name(body.get("name") if isinstance(body, dict) else None)
    credential = _parse_registration(body)
    expected_challenge = take_challenge(purpose, handle, citizen)
    rp = relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except Exception as exc:  # the library parses CBOR and COSE that anyone can send
        _audit_failure("registration", citizen.id, exc)
        raise _not_accepted() from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if len(credential_id) > CREDENTIAL_ID_MAX_LENGTH:
        raise _unreadable()
    already = PasskeyError(
        "already_registered",
        _("That passkey is already registered. Use it to sign in, or add a different one."),
    )
    if db.session.scalar(db.select(Passkey.id).filter_by(credential_id=credential_id)):
        audit.record(
            "passkey.failed",
            outcome="failure",
            reason="credential already registered",
            citizen_id=citizen.id,
            ceremony="registration",
        )
        raise already
    passkey = Passkey(
        citizen_id=citizen.id,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=sorted({t.value for t in credential.response.transports or []}),
        device_type=verified.credential_device_type.value,
        backed_up=verified.credential_backed_up,
        aaguid=verified.aaguid,
        name=name,
        created_at=utcnow(),
    )
    db.session.add(passkey)
    try:
        db.session.commit()
    except IntegrityError:
        # The same credential registered by a concurrent request (the unique constraint).
        db.session.rollback()
        raise already from None
    audit.record(
        "passkey.added",
        citizen_id=citizen.id,
        passkey_id=passkey.id,
        device_type=passkey.device_type,
        aaguid=passkey.aaguid,
        first_second_factor=purpose == SETUP,
    )
    _tell_owner(
        citizen,
        _("A passkey was added to your account"),
        _(
            "A passkey called “%(name)s” was added to your government sign in account. It can"
            " sign in to your account on its own.",
            name=passkey.name,
        ),
        _(
            "To remove it, sign in and go to Your passkeys at %(url)s, then choose Remove"
            " next to its name.",
            url=f"{current_settings().issuer}/account/passkeys",
        ),
        _(
            "If this was not you, someone has got into your account: reset your password now"
            " at %(url)s and, when asked, remove every passkey you do not know (you can also"
            " remove them from Your passkeys).",
            url=f"{current_settings().issuer}/reset-password",
        ),
    )
    return passkey


def _tell_owner(citizen: Citizen, subject: str, *lines: str) -> None:
    """Every new or removed way to sign in is told to the owner (NIST SP 800-63B 6.1.2.1)."""

    if len(lines) == 1:
        lines = (
            *lines,
            _(
                "If this was not you, reset your password now, then remove passkeys you do"
                " not know from your account page."
            ),
        )
    send_in_background(citizen.email, subject, "\n\n".join(lines))


# -- Authentication ---------------------------------------------------------------------------


def authentication_options(purpose: str, citizen: Citizen | None) -> Ceremony:
    """Options for navigator.credentials.get(): the citizen's passkeys, or any (discoverable)."""
    if purpose not in AUTHENTICATION_PURPOSES:
        raise ValueError(f"not an authentication ceremony: {purpose!r}")
    if purpose == SECOND_FACTOR and citizen is None:
        raise ValueError("the second factor is for a signed-in citizen")
    handle, challenge = begin_challenge(purpose, citizen if purpose == SECOND_FACTOR else None)
    options = generate_authentication_options(
        rp_id=relying_party().id,
        challenge=challenge,
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        allow_credentials=_descriptors(citizen_passkeys(citizen))
        if purpose == SECOND_FACTOR
        else [],
        # A passkey alone must prove who holds it (a PIN or biometric); as the second step
        # after a password, possession is enough.
        user_verification=(
            UserVerificationRequirement.REQUIRED
            if purpose == SIGN_IN
            else UserVerificationRequirement.PREFERRED
        ),
    )
    return Ceremony(handle, options_to_json_dict(options))


def _parse_assertion(body: Any) -> AuthenticationCredential:
    """The credential of an authentication answer, or a clear refusal."""
    credential = body.get("credential") if isinstance(body, dict) else None
    if not isinstance(credential, dict):
        raise _unreadable()
    credential_id = credential.get("id")
    if not isinstance(credential_id, str) or len(credential_id) > CREDENTIAL_ID_MAX_LENGTH:
        raise _unreadable()
    try:
        return parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError, TypeError):
        raise _unreadable() from None


def authenticate(
    purpose: str, handle: str | None, body: Any, ip: str, citizen: Citizen | None = None
) -> Authenticated:
    """Check an answer to authentication_options: throttled, single use, signature and count.

    For the second factor the passkey must be the signed-in citizen's; for a sign-in it may be
    anyone's, and its user handle must be its owner's.
    """
    if purpose not in AUTHENTICATION_PURPOSES:
        raise ValueError(f"not an authentication ceremony: {purpose!r}")
    credential = _parse_assertion(body)
    credential_id = bytes_to_base64url(credential.raw_id)
    passkey = db.session.scalar(db.select(Passkey).filter_by(credential_id=credential_id))
    if purpose == SECOND_FACTOR:
        owner = citizen
    else:
        owner = db.session.get(Citizen, passkey.citizen_id) if passkey else None
    # Failures count against the account the attempt is for; an unknown passkey against itself
    # (and its IP address), so nobody can lock someone out with a made-up credential.
    key = f"citizen:{owner.id}" if owner else f"passkey:{credential_id}"
    decision = throttle.check(THROTTLE_KIND, key, ip)
    if not decision.allowed:
        _audit_throttled(decision, owner)
        raise _throttled(decision)
    expected_challenge = take_challenge(
        purpose, handle, citizen if purpose == SECOND_FACTOR else None
    )
    try:
        if passkey is None:
            raise _Refused(_unknown_credential(), "unknown credential")
        if purpose == SECOND_FACTOR and passkey.citizen_id != citizen.id:
            raise _Refused(_not_yours(), "another citizen's passkey")
        new_count, backed_up = _verify_assertion(
            purpose, credential, expected_challenge, passkey, owner
        )
        if not _record_use(passkey, new_count, backed_up):
            raise _Refused(
                _not_accepted(),
                "sign count did not increase: possible cloned authenticator",
                event="passkey.sign_count_regressed",
            )
    except _Refused as refused:
        decision = throttle.record_failure(THROTTLE_KIND, key, ip)
        audit.record(
            refused.event,
            outcome="failure",
            reason=refused.reason,
            citizen_id=owner.id if owner else None,
            passkey_id=passkey.id if passkey else None,
            ceremony=purpose,
        )
        if not decision.allowed:
            _audit_throttled(decision, owner)
            raise _throttled(decision) from None
        raise refused.error from None
    throttle.record_success(THROTTLE_KIND, key)
    return Authenticated(citizen=owner, passkey=passkey, method=amr_method(passkey))


class _Refused(Exception):
    """An assertion refused after its challenge was used: counted as a failed attempt."""

    def __init__(self, error: PasskeyError, reason: str, event: str = "passkey.failed"):
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.event = event


def _verify_assertion(
    purpose: str,
    credential: AuthenticationCredential,
    expected_challenge: bytes,
    passkey: Passkey,
    owner: Citizen,
) -> tuple[int, bool]:
    """The verified sign count and backup state, or _Refused with the reason."""
    returned_handle = credential.response.user_handle
    if purpose == SIGN_IN and returned_handle is None:
        raise _Refused(_not_accepted(), "no user handle in a passkey sign-in")
    if returned_handle is not None and not secrets.compare_digest(
        returned_handle, user_handle(owner)
    ):
        raise _Refused(_not_accepted(), "user handle is not the passkey owner's")
    rp = relying_party()
    arguments = {
        "credential": credential,
        "expected_challenge": expected_challenge,
        "expected_rp_id": rp.id,
        "expected_origin": rp.origin,
        "credential_public_key": passkey.public_key,
        "require_user_verification": purpose == SIGN_IN,
    }
    try:
        verified = verify_authentication_response(
            **arguments, credential_current_sign_count=passkey.sign_count
        )
    except Exception as exc:  # the library parses CBOR and COSE that anyone can send
        if passkey.sign_count and _valid_but_for_the_count(arguments):
            # WebAuthn Level 3 7.2 step 22: a signature counter that did not increase is a
            # sign that the authenticator may have been cloned.
            raise _Refused(
                _not_accepted(),
                "sign count did not increase: possible cloned authenticator",
                event="passkey.sign_count_regressed",
            ) from None
        raise _Refused(_not_accepted(), _reason(exc)) from None
    return verified.new_sign_count, verified.credential_backed_up


def _valid_but_for_the_count(arguments: dict[str, Any]) -> bool:
    """Whether the assertion verifies when the stored count is ignored."""
    try:
        verify_authentication_response(**arguments, credential_current_sign_count=0)
    except Exception:  # any failure means no
        return False
    return True


def _record_use(passkey: Passkey, new_count: int, backed_up: bool) -> bool:
    """Store the new count, backup state and time; False if a higher count got there first."""
    # Conditional, so that of two assertions checked at once against the same stored count
    # only counts that still go up are kept. Passkeys that do not count stay at 0.
    still_increasing = Passkey.sign_count < new_count if new_count else Passkey.sign_count == 0
    changed = db.session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, still_increasing)
        .values(sign_count=new_count, backed_up=backed_up, last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    db.session.refresh(passkey)
    return changed == 1


def _reason(exc: Exception) -> str:
    """What went wrong, for the audit record: the library's message (it names no secrets)."""
    if isinstance(exc, WebAuthnException):
        return str(exc)[:200]
    return f"malformed response ({type(exc).__name__})"


def _audit_failure(ceremony: str, citizen_id: int | None, exc: Exception) -> None:
    audit.record(
        "passkey.failed",
        outcome="failure",
        reason=_reason(exc),
        citizen_id=citizen_id,
        ceremony=ceremony,
    )


def _audit_throttled(decision: throttle.Decision, owner: Citizen | None) -> None:
    lockout = throttle.limits_for(THROTTLE_KIND).lockout_seconds
    who = {"citizen_id": owner.id} if owner else {}
    throttle.audit_refusal(decision, THROTTLE_KIND, lockout, **who)


# -- Removing ---------------------------------------------------------------------------------


def remove_passkey(citizen: Citizen, passkey_id: int) -> Passkey:
    """Remove one of the citizen's passkeys, unless it is their last second factor."""
    if not 0 < passkey_id < 2**31:
        raise LookupError("no such passkey")
    # Two removals at once must not both see the other passkey and leave none: lock the
    # citizen's row first (PostgreSQL; SQLite runs one writer at a time).
    db.session.execute(db.select(Citizen.id).where(Citizen.id == citizen.id).with_for_update())
    passkey = db.session.get(Passkey, passkey_id)
    if passkey is None or passkey.citizen_id != citizen.id:
        db.session.rollback()
        raise LookupError("no such passkey")
    others = db.session.scalar(
        db.select(db.func.count())
        .select_from(Passkey)
        .where(Passkey.citizen_id == citizen.id, Passkey.id != passkey.id)
    )
    if not others and not has_authenticator_app(citizen) and not has_phone_number(citizen):
        db.session.rollback()
        raise PasskeyError(
            "last_second_factor",
            _(
                "You cannot remove your only passkey: your account needs a second factor."
                " Add another passkey or an authenticator app first."
            ),
        )
    db.session.delete(passkey)
    db.session.commit()
    audit.record("passkey.removed", citizen_id=citizen.id, passkey_id=passkey_id)
    _tell_owner(
        citizen,
        _("A passkey was removed from your account"),
        _(
            "The passkey called “%(name)s” was removed from your government sign in account.",
            name=passkey.name,
        ),
    )
    return passkey


def remove_every_passkey(citizen: Citizen) -> list[Passkey]:
    """Remove all the citizen's passkeys, as they asked when resetting or changing their
    password (a passkey someone else added must not outlive the password they knew). The
    caller commits; the owner is told, and each removal audited, by passkeys_removed()."""
    passkeys = citizen_passkeys(citizen)
    for passkey in passkeys:
        db.session.delete(passkey)
    return passkeys


def passkeys_removed(citizen: Citizen, passkeys: list[Passkey], during: str) -> None:
    """After the commit: one audit record per passkey removed, and one email to the owner."""
    if not passkeys:
        return
    for passkey in passkeys:
        audit.record("passkey.removed", citizen_id=citizen.id, passkey_id=passkey.id, during=during)
    _tell_owner(
        citizen,
        _("Passkeys were removed from your account"),
        _(
            "You asked to remove your passkeys when you changed your password. These passkeys"
            " were removed from your government sign in account: %(names)s.",
            names=", ".join(f"“{p.name}”" for p in passkeys),
        ),
        _("They cannot sign in to your account any more. You can add a passkey again later."),
    )

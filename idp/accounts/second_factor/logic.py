"""Second factors: TOTP (an authenticator app, RFC 6238) and single-use recovery codes.

Enrolment stores an unconfirmed secret, shows it as a QR code and as text, and confirms it
once the citizen types a code from the app; confirmation issues ten recovery codes, shown
once and stored hashed. Each TOTP code works once: the accepted time step is recorded with
one conditional UPDATE, so a code cannot be replayed, even on another IdP process.

A second factor proven at sign-in steps the session up (step_up: a new session, recorded);
a recovery code used there is told to the owner by email.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets

import pyotp
import segno
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from idp import audit, clock
from idp.accounts.levels import vector_met
from idp.accounts.sessions import start_session
from idp.extensions import db
from idp.mail import MailError, send_mail
from idp.models import Citizen, Passkey, PhoneNumber, RecoveryCode, TotpCredential
from idp.models.timestamps import utcnow
from idp.security.passwords import hash_password, password_hasher
from idp.security.secrets import decrypt
from idp.settings import current_settings

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
# One step either side of now is accepted, for clocks that drift.
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
# Recovery codes: 10 characters from an alphabet without look-alikes (about 50 bits).
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 10
ISSUER_NAME = "Government sign in"
# RFC 4226 4 (R6): a shared secret of at least 128 bits, 160 recommended; 160 is required here.
MIN_TOTP_SECRET_BITS = 160
BASE32_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


def _fernet():
    """The key that encrypts secrets at rest (the one for signing keys)."""
    return current_app.config["IDP_KEY_FERNET"]


def encrypt_totp_secret(secret: str) -> str:
    """An authenticator app's secret as stored (encrypted at rest), for citizens and staff."""
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_totp_secret(encrypted: str) -> str:
    """A stored authenticator app secret, decrypted."""
    return decrypt(_fernet(), encrypted).decode()


def totp_credential(citizen: Citizen) -> TotpCredential | None:
    """The citizen's authenticator app, confirmed or not."""
    return db.session.scalar(db.select(TotpCredential).filter_by(citizen_id=citizen.id))


def has_second_factor(citizen: Citizen) -> bool:
    """Whether the citizen has a confirmed authenticator app, a passkey or a confirmed phone
    number for codes by text message."""

    credential = totp_credential(citizen)
    if credential is not None and credential.confirmed_at is not None:
        return True
    if has_phone_number(citizen):
        return True
    passkey = db.session.scalar(db.select(Passkey.id).filter_by(citizen_id=citizen.id).limit(1))
    return passkey is not None


def has_phone_number(citizen: Citizen) -> bool:
    """Whether the citizen has a mobile number for codes by text message (a row exists only
    once the number was confirmed with a code: accounts/text_messages)."""
    found = db.session.scalar(db.select(PhoneNumber.id).filter_by(citizen_id=citizen.id))
    return found is not None


def begin_totp_enrolment(citizen: Citizen, secret: str | None = None) -> str:
    """A new unconfirmed secret for the citizen's app (replacing an unconfirmed one)."""
    credential = totp_credential(citizen)
    if credential is not None and credential.confirmed_at is not None:
        raise ValueError("the citizen already has an authenticator app")
    secret = secret or pyotp.random_base32()
    encrypted = encrypt_totp_secret(secret)
    if credential is None:
        db.session.add(TotpCredential(citizen_id=citizen.id, secret_encrypted=encrypted))
    else:
        credential.secret_encrypted = encrypted
        credential.created_at = utcnow()
    db.session.commit()
    return secret


def totp_secret(credential: TotpCredential) -> str:
    """The shared secret, decrypted."""
    return decrypt_totp_secret(credential.secret_encrypted)


def provisioning_uri(citizen: Citizen, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return totp_uri(citizen.email, secret)


def totp_uri(account_name: str, secret: str, issuer_name: str = ISSUER_NAME) -> str:
    """The otpauth:// URI for an account name and secret, under the issuer name the app shows."""
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer_name)


def qr_code_svg(uri: str) -> str:
    """The QR code as inline SVG (no image request, nothing external)."""
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#0b0c0c", light="#ffffff")


def matching_totp_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code this is, within the allowed drift, or None."""
    code = (code or "").strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == TOTP_DIGITS):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    current = int(now // TOTP_STEP_SECONDS)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if secrets.compare_digest(totp.at(step * TOTP_STEP_SECONDS), code):
            return step
    return None


def check_totp(citizen: Citizen, code: str, *, confirming: bool = False) -> bool:
    """Whether code is a fresh code from the citizen's app; a used code never works again."""
    credential = totp_credential(citizen)
    if credential is None or (credential.confirmed_at is None) != confirming:
        return False
    step = matching_totp_step(totp_secret(credential), code, clock.time())
    if step is None:
        return False
    if not claim_totp_step(TotpCredential.last_used_step, credential.id, step):
        if _test_citizen_may_reuse(citizen, credential, step):
            audit.record("second_factor.test_code_reused", citizen_id=citizen.id, method="totp")
            return True
        audit.record("second_factor.replayed", outcome="failure", citizen_id=citizen.id)
        return False
    return True


def _test_citizen_may_reuse(citizen: Citizen, credential: TotpCredential, step: int) -> bool:
    """A test citizen's code again within its own step, so a department's parallel CI jobs do
    not refuse (and throttle) each other; only while IDP_ALLOW_TEST_CITIZENS is on. An older
    step never works again, and every other citizen's codes stay single-use (RFC 6238 5.2)."""
    if not (citizen.test_citizen and current_settings().allow_test_citizens):
        return False
    db.session.refresh(credential)
    return credential.last_used_step == step


def parse_totp_secret(text: str) -> str:
    """An authenticator key typed by an operator, normalised (upper case, no spaces or
    padding); ValueError says what is wrong with it."""
    secret = "".join((text or "").split()).replace("-", "").upper().rstrip("=")
    if not secret:
        raise ValueError("the authenticator key is empty")
    if not set(secret) <= BASE32_ALPHABET:
        raise ValueError("the authenticator key must be base32 (letters A-Z and digits 2-7)")
    try:
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    except binascii.Error:
        raise ValueError(
            "the authenticator key is not valid base32 (its length cannot be decoded)"
        ) from None
    if len(key) * 8 < MIN_TOTP_SECRET_BITS:
        raise ValueError(
            f"the authenticator key must hold at least {MIN_TOTP_SECRET_BITS} bits "
            f"(32 base32 characters); this one holds {len(key) * 8}"
        )
    return secret


def require_test_citizens_allowed() -> None:
    """ValueError unless IDP_ALLOW_TEST_CITIZENS is on."""
    if not current_settings().allow_test_citizens:
        raise ValueError(
            "test citizens are not allowed on this IdP: set IDP_ALLOW_TEST_CITIZENS=true "
            "(never in production)"
        )


def enrol_known_totp(citizen: Citizen, secret: str, *, test_citizen: bool, actor: str) -> None:
    """Give a new citizen a confirmed authenticator app with a key the operator chose (a
    department's automated tests), optionally as a test citizen; ValueError when it cannot."""
    if test_citizen:
        require_test_citizens_allowed()
    if totp_credential(citizen) is not None:
        raise ValueError("the citizen already has an authenticator app")
    db.session.add(
        TotpCredential(
            citizen_id=citizen.id,
            secret_encrypted=encrypt_totp_secret(parse_totp_secret(secret)),
            confirmed_at=utcnow(),
        )
    )
    citizen.test_citizen = test_citizen
    db.session.commit()
    audit.record(
        "second_factor.added",
        citizen_id=citizen.id,
        method="totp",
        actor=actor,
        test_citizen=test_citizen,
    )


def claim_totp_step(last_used_step: InstrumentedAttribute[int], row_id: int, step: int) -> bool:
    """Record step as used on the row with this id; False if it (or a later step) already was.

    RFC 6238 5.2: each step is accepted once, atomically: of two processes checking the same
    code, only one UPDATE matches the row. Citizens' and staff's apps both go through here.
    """
    model = last_used_step.class_
    claimed = db.session.execute(
        update(model)
        .where(model.id == row_id, last_used_step < step)
        .values({last_used_step: step})
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def confirm_totp(citizen: Citizen, code: str) -> list[str] | None:
    """Confirm enrolment with a code from the app; the new recovery codes, or None."""
    if not check_totp(citizen, code, confirming=True):
        return None
    credential = totp_credential(citizen)
    credential.confirmed_at = utcnow()
    db.session.commit()
    audit.record("second_factor.added", citizen_id=citizen.id, method="totp")
    return issue_recovery_codes(citizen)


def issue_recovery_codes(citizen: Citizen) -> list[str]:
    """Ten new single-use recovery codes (the old ones stop working), shown once."""
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    db.session.execute(db.delete(RecoveryCode).where(RecoveryCode.citizen_id == citizen.id))
    for code in codes:
        db.session.add(RecoveryCode(citizen_id=citizen.id, code_hash=hash_password(code)))
    db.session.commit()
    audit.record("recovery_codes.issued", citizen_id=citizen.id, count=len(codes))
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def use_recovery_code(citizen: Citizen, code: str) -> bool:
    """Spend one unused recovery code; False when it does not match one."""
    normalised = (code or "").strip().lower().replace("-", "").replace(" ", "")
    if len(normalised) != RECOVERY_CODE_LENGTH:
        return False
    hasher = password_hasher()
    for row in db.session.scalars(
        db.select(RecoveryCode).filter_by(citizen_id=citizen.id, used_at=None)
    ):
        try:
            hasher.verify(row.code_hash, normalised)
        except (VerificationError, InvalidHashError):
            continue  # not this code
        spent = db.session.execute(
            update(RecoveryCode)
            .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
            .values(used_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        if spent == 1:
            remaining = recovery_codes_left(citizen)
            audit.record("recovery_code.used", citizen_id=citizen.id, remaining=remaining)
            return True
    return False


def recovery_codes_left(citizen: Citizen) -> int:
    """How many recovery codes the citizen has not used."""
    return db.session.scalar(
        db.select(db.func.count())
        .select_from(RecoveryCode)
        .filter_by(citizen_id=citizen.id, used_at=None)
    )


# -- Signing in with the second factor ----------------------------------------------------------


def step_up(session, method: str, factor: str, during: str = "sign_in") -> None:
    """A new session (new identifier) that records the second factor; factor says which one
    (totp, sms, recovery_code, passkey), during whether at sign-in or setting it up. The record
    links the new session to the one the password made."""
    amr = list(dict.fromkeys([*(session.amr or []), method]))
    previous = audit.session_ref(session.sid)
    new = start_session(session.citizen, amr=amr)
    audit.record(
        "second_factor.succeeded",
        citizen_id=new.citizen_id,
        sid=new.sid,
        level=vector_met(new.amr),
        methods=new.amr,
        factor=factor,
        during=during,
        previous_session=previous,
    )


def tell_owner_of_recovery_code(citizen) -> None:
    """A recovery code was used: the owner hears of it, with how many are left."""
    left = recovery_codes_left(citizen)
    try:
        send_mail(
            citizen.email,
            _("A recovery code was used to sign in"),
            _(
                "Someone signed in to your government account with one of your recovery codes. "
                "You have %(left)d left. If this was not you, change your password now.",
                left=left,
            ),
        )
    except MailError as exc:
        # The sign-in goes on; the audit record keeps the event.
        logging.getLogger("idp").warning("recovery code email not sent: %s", exc)

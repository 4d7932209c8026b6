"""Second factors: TOTP (an authenticator app, RFC 6238) and single-use recovery codes.

Enrolment stores an unconfirmed secret, shows it as a QR code and as text, and confirms it
once the citizen types a code from the app; confirmation issues ten recovery codes, shown
once and stored hashed. Each TOTP code works once: the accepted time step is recorded with
one conditional UPDATE, so a code cannot be replayed, even on another IdP process.
"""

from __future__ import annotations

import secrets
import time

import pyotp
import segno
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from idp import audit
from idp.extensions import db
from idp.models import Citizen, RecoveryCode, TotpCredential
from idp.models.timestamps import utcnow
from idp.security.passwords import hash_password, password_hasher
from idp.security.secrets import decrypt

TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
# One step either side of now is accepted, for clocks that drift.
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
# Recovery codes: 10 characters from an alphabet without look-alikes (about 50 bits).
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 10
ISSUER_NAME = "Government sign in"


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
    """Whether the citizen has a confirmed authenticator app or a passkey."""
    from idp.models import Passkey

    credential = totp_credential(citizen)
    if credential is not None and credential.confirmed_at is not None:
        return True
    passkey = db.session.scalar(db.select(Passkey.id).filter_by(citizen_id=citizen.id).limit(1))
    return passkey is not None


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
    step = matching_totp_step(totp_secret(credential), code, time.time())
    if step is None:
        return False
    if not claim_totp_step(TotpCredential.last_used_step, credential.id, step):
        audit.record("second_factor.replayed", outcome="failure", citizen_id=citizen.id)
        return False
    return True


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

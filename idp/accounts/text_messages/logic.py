"""Codes by text message (SMS): a mobile number as a second factor, as GOV.UK One Login offers
to citizens who have no authenticator app.

NIST SP 800-63B treats a code sent to a phone number as a restricted authenticator (3.1.3.3):
the number can be moved to another SIM, or the message read on a locked screen. It still meets
Cm here, as One Login counts it (RFC 8176 amr "sms"), and every page that offers it says
plainly that an app or a passkey is safer.

A number counts only once a code sent to it was typed back (a PhoneNumber row); until then it
waits in its SmsCode row. As with email codes, the browser that asked keeps a random handle
in its signed session and the database keeps only the handle's hash and the code's keyed hash:
a code works in that browser only, once, for ten minutes, and five wrong codes spend it.
"""

from __future__ import annotations

import re
from datetime import timedelta

import phonenumbers
from flask import session
from flask_babel import gettext as _
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from idp.accounts.one_time_codes import (
    MAX_ATTEMPTS,
    Outcome,
    check_code,
    keyed_hash,
    new_code,
    row_for_session,
)
from idp.extensions import db
from idp.models import Citizen, PhoneNumber, SmsCode
from idp.models.timestamps import utcnow
from idp.security.secrets import hash_token, new_token

# "sign_in": the second step of signing in; "setup": the first second factor, straight after
# sign-up or sign-in; "change": a new number from the account pages; "reset": the second
# factor of a password reset (recovery/pages.py), after the code sent by email.
PURPOSES = ("sign_in", "setup", "change", "reset")
# NIST SP 800-63B 3.1.3.1 (rev 4; 5.1.3.1 in rev 3): an out-of-band secret is valid for ten
# minutes at most.
CODE_LIFETIME = timedelta(minutes=10)
# Where a number typed without a country code is from.
DEFAULT_REGION = "GB"
# Longer than any number with spaces, brackets and a country code.
MAX_TYPED_LENGTH = 32
# What a typed number may contain: digits, spaces, brackets, dots, dashes and a leading +.
_TYPED = re.compile(r"\+?[\d\s().-]+")
# Types a text message reaches. libphonenumber cannot tell a mobile from a landline in the
# North American plan (the US, Canada): their numbers are FIXED_LINE_OR_MOBILE, accepted so
# those citizens are not all refused.
MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})


class NumberError(ValueError):
    """A typed number that cannot receive codes; the message says why, for the page."""


def not_a_number_message() -> str:
    return _(
        "Enter a UK mobile number, like 07700 900 982, or an international one starting with"
        " + and the country code, like +33 6 12 34 56 78"
    )


def parse_mobile_number(typed: str) -> str:
    """A mobile number as typed (UK, or international with +), in E.164; NumberError says what
    is wrong with it: not a phone number, a landline, or another kind that gets no texts."""
    text = (typed or "").strip()
    if not text:
        raise NumberError(_("Enter a mobile phone number"))
    if len(text) > MAX_TYPED_LENGTH or not _TYPED.fullmatch(text):
        raise NumberError(not_a_number_message())
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except NumberParseException:
        raise NumberError(not_a_number_message()) from None
    if not phonenumbers.is_valid_number(parsed):
        raise NumberError(not_a_number_message())
    kind = phonenumbers.number_type(parsed)
    if kind == PhoneNumberType.FIXED_LINE:
        raise NumberError(
            _("That is a landline number. Enter a mobile phone number: codes come by text message")
        )
    if kind not in MOBILE_TYPES:
        raise NumberError(
            _(
                "That is not a mobile phone number (it may be a freephone, premium rate or"
                " internet number). Enter a mobile phone number"
            )
        )
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def ending(number: str) -> str:
    """The last four digits, the only part of a number a page shows ("ending 4321")."""
    return number[-4:]


def phone_number(citizen: Citizen) -> PhoneNumber | None:
    """The citizen's confirmed mobile number, if any."""
    return db.session.scalar(db.select(PhoneNumber).filter_by(citizen_id=citizen.id))


def save_number(citizen: Citizen, number: str) -> str | None:
    """Make number the citizen's (confirmed now); the number it replaced, if any."""
    current = phone_number(citizen)
    now = utcnow()
    if current is None:
        db.session.add(
            PhoneNumber(citizen_id=citizen.id, number=number, created_at=now, confirmed_at=now)
        )
        previous = None
    else:
        previous = current.number
        current.number, current.created_at, current.confirmed_at = number, now, now
    db.session.commit()
    return previous


def remove_number(citizen: Citizen) -> None:
    """The citizen gets no more codes by text message (and pending ones stop working)."""
    db.session.execute(db.delete(PhoneNumber).where(PhoneNumber.citizen_id == citizen.id))
    db.session.execute(db.delete(SmsCode).where(SmsCode.citizen_id == citizen.id))
    db.session.commit()


# -- Codes -------------------------------------------------------------------------------------


def _session_key(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown text message code purpose {purpose!r}")
    return f"sms_code:{purpose}"


def _code_hash(handle_hash: str, code: str) -> str:
    return keyed_hash("sms:", handle_hash, code)


def issue(purpose: str, citizen: Citizen, number: str) -> str:
    """A new code for this browser (replacing its earlier one for the purpose): the code to send."""
    handle = new_token(24)
    handle_hash = hash_token(handle)
    code = new_code()
    now = utcnow()
    db.session.add(
        SmsCode(
            handle_hash=handle_hash,
            purpose=purpose,
            citizen_id=citizen.id,
            number=number,
            code_hash=_code_hash(handle_hash, code),
            created_at=now,
            expires_at=now + CODE_LIFETIME,
        )
    )
    db.session.commit()
    session[_session_key(purpose)] = handle
    return code


def pending(purpose: str, citizen: Citizen) -> SmsCode | None:
    """This browser's unused code for the purpose and citizen (expired or not)."""
    row = row_for_session(SmsCode, _session_key(purpose), purpose)
    if row is None or row.used_at is not None or row.citizen_id != citizen.id:
        return None
    return row


def usable(row: SmsCode | None, number: str | None = None) -> bool:
    """Whether a code can still be typed (for this number, when given)."""
    return (
        row is not None
        and row.attempts < MAX_ATTEMPTS
        and utcnow() < row.expires_at
        and (number is None or row.number == number)
    )


def check(row: SmsCode, typed: str) -> Outcome:
    """Check a typed code (spaces and dashes ignored); a right one is spent at once."""
    return check_code(
        row,
        typed,
        _code_hash,
        lambda model, now: (model.used_at.is_(None), model.expires_at > now),
        lambda now: {"used_at": now},
    )


def forget(purpose: str) -> None:
    """Forget this browser's code for the purpose."""
    session.pop(_session_key(purpose), None)


def message(purpose: str, code: str) -> str:
    """The text message that carries a code: what it is for, how long it lasts, and the
    warning that nobody should ever be told it."""
    if purpose == "sign_in":
        first = _("%(code)s is your government sign in security code.", code=code)
    elif purpose == "reset":
        first = _(
            "%(code)s is your code to reset the password of your government sign in account.",
            code=code,
        )
    else:
        first = _(
            "%(code)s is your code to confirm this phone number for government sign in.",
            code=code,
        )
    return " ".join(
        [first, _("It expires in 10 minutes. Never share it: nobody from government will ask.")]
    )

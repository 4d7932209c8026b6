"""Reading what the IdP emailed, as a citizen reads their inbox (the local outbox)."""

from __future__ import annotations

import re
import time

from idp.mail import Mail, read_outbox

CODE = re.compile(r"\b(\d{6})\b")


def mails_to(idp, address: str) -> list[Mail]:
    """Every email sent to the address, newest first."""
    return [m for m in read_outbox(idp.app.config["IDP_SETTINGS"], limit=5000) if m.to == address]


def wait_for_mail(idp, address: str, count: int = 1, timeout: float = 10.0) -> Mail:
    """The newest email to the address once it has at least count (sent in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        mails = mails_to(idp, address)
        if len(mails) >= count:
            return mails[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no email number {count} to {address} within {timeout} s")
        time.sleep(0.05)


def code_in(mail: Mail) -> str:
    """The six-digit code an email carries."""
    match = CODE.search(mail.body)
    assert match, mail.body
    return match.group(1)


def texts_to(idp, number: str) -> list[Mail]:
    """Every text message sent to the number (E.164), newest first."""
    return [
        m
        for m in read_outbox(idp.app.config["IDP_SETTINGS"], limit=5000)
        if m.kind == "sms" and m.to == number
    ]


def wait_for_text(idp, number: str, count: int = 1, timeout: float = 10.0) -> Mail:
    """The newest text message to the number once it has at least count (sent in the
    background), as the citizen reads it on their phone."""
    deadline = time.monotonic() + timeout
    while True:
        texts = texts_to(idp, number)
        if len(texts) >= count:
            return texts[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no text message number {count} to {number} within {timeout} s")
        time.sleep(0.05)

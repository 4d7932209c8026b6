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

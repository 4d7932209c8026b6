"""Email to citizens and staff: through SMTP when IDP_SMTP_URL is set, otherwise into a local
outbox (a JSON Lines file in the instance folder, shown at /dev/outbox when IDP_DEV_PAGES is
on, as in the demo) so that the demo works with no mail server."""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import ssl
import threading
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from idp.models.timestamps import utcnow
from idp.settings import Settings, current_settings

log = logging.getLogger("idp.mail")

OUTBOX_FILE = "outbox.jsonl"
SMTP_TIMEOUT_SECONDS = 10
_outbox_lock = threading.Lock()
# A subject shows on lock screens and in notification previews: it never carries a code or a
# secret. Codes are six digits and recovery codes end in five, so a run of five or more digits
# in a subject is refused (NIST SP 800-63B 3.1.3.1: the code must reach only its owner).
_CODE_LIKE = re.compile(r"\d{5,}")


class MailError(Exception):
    """An email could not be handed to the mail server; the message says why (no content)."""


def check_subject(subject: str) -> None:
    """Refuse a subject that looks like it carries a code (a programming error: the code
    belongs in the body)."""
    if _CODE_LIKE.search(subject):
        raise ValueError("an email subject must not carry a code: put it in the body")


@dataclass(frozen=True)
class Mail:
    """One email, as the outbox keeps it."""

    to: str
    subject: str
    body: str
    sent_at: str


def outbox_path(settings: Settings) -> Path:
    """Where the local outbox lives."""
    return Path(settings.instance_path) / OUTBOX_FILE


def send_mail(to: str, subject: str, body: str) -> None:
    """Send one plain-text email."""
    check_subject(subject)
    settings = current_settings()
    mail = Mail(to=to, subject=subject, body=body, sent_at=utcnow().isoformat())
    if settings.smtp_url:
        _send_smtp(settings, mail)
    else:
        _append_to_outbox(settings, mail)


def send_in_background(to: str, subject: str, body: str) -> None:
    """Send from a thread: the page does not wait for the mail server, and takes as long
    whether or not an email was sent (so a page cannot tell who has an account)."""
    from flask import current_app

    check_subject(subject)  # here, not in the thread: the caller's request fails loudly
    app = current_app._get_current_object()

    def deliver() -> None:
        with app.app_context():
            try:
                send_mail(to, subject, body)
            except MailError as exc:
                # Not the subject: it may carry a one-time code.
                log.warning("an email was not sent: %s", exc)
            except Exception:
                log.exception("an email was not sent")

    threading.Thread(target=deliver, name="send-mail", daemon=True).start()


def _append_to_outbox(settings: Settings, mail: Mail) -> None:
    """Append to the outbox file (mode 0600: it holds one-time codes)."""
    path = outbox_path(settings)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = json.dumps(asdict(mail), ensure_ascii=False) + "\n"
    with _outbox_lock:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line)


def read_outbox(settings: Settings, limit: int = 50) -> list[Mail]:
    """The newest messages in the outbox, newest first."""
    path = outbox_path(settings)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    return [Mail(**json.loads(line)) for line in reversed(lines) if line.strip()]


def _send_smtp(settings: Settings, mail: Mail) -> None:
    """Hand the email to the SMTP server named by smtp_url (STARTTLS, or TLS for smtps)."""
    url = urlsplit(settings.smtp_url)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message.set_content(mail.body)
    context = ssl.create_default_context()
    try:
        if url.scheme == "smtps":
            server = smtplib.SMTP_SSL(
                url.hostname, url.port or 465, timeout=SMTP_TIMEOUT_SECONDS, context=context
            )
        else:
            server = smtplib.SMTP(url.hostname, url.port or 587, timeout=SMTP_TIMEOUT_SECONDS)
        with server:
            if url.scheme == "smtp" and server.has_extn("starttls"):
                server.starttls(context=context)
            if url.username:
                server.login(unquote(url.username), unquote(url.password or ""))
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(
            f"the mail server at {url.hostname} refused or failed: {type(exc).__name__}"
        ) from None

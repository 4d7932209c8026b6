"""Messages to citizens and staff, email and text messages, through one interface:

- with IDP_NOTIFY_API_KEY set, both go through GOV.UK Notify (idp/notify.py);
- otherwise email goes through SMTP when IDP_SMTP_URL is set;
- otherwise (and for text messages without Notify) into a local outbox: a JSON Lines file in
  the instance folder, shown at /dev/outbox when IDP_DEV_PAGES is on, as in the demo, so the
  demo works with no mail server and no Notify account.

Neither the subject, the body nor the number of a message is ever logged: they may carry a
one-time code, and a number is personal data.
"""

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

from idp import notify
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


EMAIL = "email"
SMS = "sms"


class MailError(Exception):
    """A message could not be handed to the mail server or to Notify; the text says why (never
    the message's content)."""


def check_subject(subject: str) -> None:
    """Refuse a subject that looks like it carries a code (a programming error: the code
    belongs in the body)."""
    if _CODE_LIKE.search(subject):
        raise ValueError("an email subject must not carry a code: put it in the body")


@dataclass(frozen=True)
class Mail:
    """One message, as the outbox keeps it: an email, or a text message (kind "sms", to a
    number in E.164, with no subject)."""

    to: str
    subject: str
    body: str
    sent_at: str
    # Lines written before text messages existed have no kind: they are emails.
    kind: str = EMAIL


def outbox_path(settings: Settings) -> Path:
    """Where the local outbox lives."""
    return Path(settings.instance_path) / OUTBOX_FILE


def send_mail(to: str, subject: str, body: str) -> None:
    """Send one plain-text email."""
    check_subject(subject)
    settings = current_settings()
    mail = Mail(to=to, subject=subject, body=body, sent_at=utcnow().isoformat())
    if settings.notify_api_key:
        _through_notify(notify.send_email, settings, to, subject, body)
    elif settings.smtp_url:
        _send_smtp(settings, mail)
    else:
        _append_to_outbox(settings, mail)


def send_text(to: str, body: str) -> None:
    """Send one text message to a mobile number in E.164 (through Notify, or the outbox)."""
    settings = current_settings()
    if settings.notify_api_key:
        _through_notify(notify.send_sms, settings, to, body)
    else:
        text = Mail(to=to, subject="", body=body, sent_at=utcnow().isoformat(), kind=SMS)
        _append_to_outbox(settings, text)


def _through_notify(send, settings: Settings, *message: str) -> None:
    """One message to Notify; its refusal (or silence) is a MailError like the mail server's."""
    try:
        send(settings, *message)
    except notify.NotifyError as exc:
        raise MailError(str(exc)) from None


def send_in_background(to: str, subject: str, body: str) -> None:
    """Send from a thread: the page does not wait for the mail server, and takes as long
    whether or not an email was sent (so a page cannot tell who has an account)."""
    check_subject(subject)  # here, not in the thread: the caller's request fails loudly
    _in_background(EMAIL, lambda: send_mail(to, subject, body))


def send_text_in_background(to: str, body: str) -> None:
    """Send a text message from a thread: the page does not wait for Notify."""
    _in_background(SMS, lambda: send_text(to, body))


def _in_background(kind: str, send) -> None:
    """Run send() in a thread with the app's context; a failure is logged by kind only."""
    from flask import current_app

    app = current_app._get_current_object()
    what = "an email" if kind == EMAIL else "a text message"

    def deliver() -> None:
        with app.app_context():
            try:
                send()
            except MailError as exc:
                # Not the subject, the body or the number: they may carry a one-time code.
                log.warning("%s was not sent: %s", what, exc)
            except Exception:
                log.exception("%s was not sent", what)

    threading.Thread(target=deliver, name=f"send-{kind}", daemon=True).start()


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

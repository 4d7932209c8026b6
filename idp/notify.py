"""GOV.UK Notify: the government's service for sending email and text messages, through its
own client library (notifications-python-client), when IDP_NOTIFY_API_KEY is set.

Each kind of message goes through one Notify template whose content is filled in by
personalisation: the email template has the subject "((subject))" and the body "((body))",
the text message template the body "((body))". So the IdP's words (and their Welsh) stay
here, in its own catalogue, and Notify needs no change when a message changes.

Nothing of a message is logged here: a body carries a one-time code.
"""

from __future__ import annotations

from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient

from idp.settings import Settings

# Seconds to wait for Notify's answer: a page never waits for it (messages go from a thread).
NOTIFY_TIMEOUT_SECONDS = 10


class NotifyError(Exception):
    """Notify did not take a message; the text says why (never the message's content)."""


def _client(settings: Settings) -> NotificationsAPIClient:
    """A client for one send: the library's client is not thread-safe (its docstring)."""
    return NotificationsAPIClient(
        settings.notify_api_key,
        base_url=settings.notify_base_url,
        timeout=NOTIFY_TIMEOUT_SECONDS,
    )


def send_email(settings: Settings, to: str, subject: str, body: str) -> None:
    """Hand an email to Notify."""
    try:
        _client(settings).send_email_notification(
            email_address=to,
            template_id=settings.notify_email_template_id,
            personalisation={"subject": subject, "body": body},
        )
    except APIError as exc:
        raise NotifyError(f"GOV.UK Notify refused an email (HTTP {exc.status_code})") from None


def send_sms(settings: Settings, to: str, body: str) -> None:
    """Hand a text message to Notify; to is an E.164 number."""
    try:
        _client(settings).send_sms_notification(
            phone_number=to,
            template_id=settings.notify_sms_template_id,
            personalisation={"body": body},
        )
    except APIError as exc:
        raise NotifyError(
            f"GOV.UK Notify refused a text message (HTTP {exc.status_code})"
        ) from None

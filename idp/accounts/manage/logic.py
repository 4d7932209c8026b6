"""The emails of the account pages: the codes a new address and a new app need, and the
notices that tell the owner of a change (sent in the background)."""

from __future__ import annotations

from flask_babel import format_datetime
from flask_babel import gettext as _

from idp.mail import send_in_background
from idp.models.timestamps import utcnow


def tell(address: str, subject: str, *lines: str) -> None:
    """Email the owner a notice, one paragraph a line."""
    send_in_background(address, subject, "\n\n".join(lines))


def now_in_words() -> str:
    """The time now, as the notices say it."""
    return format_datetime(utcnow(), "HH:mm 'UTC', d MMMM yyyy")


def new_address_letter(code: str | None) -> tuple[str, str]:
    if code is None:
        return (
            _("This email address already has a government sign in account"),
            "\n\n".join(
                [
                    _(
                        "Someone asked to move another government sign in account to this"
                        " email address. It already has an account, so nothing was changed."
                    ),
                    _("If this was not you, you can ignore this email."),
                ]
            ),
        )
    return (
        _("Your code to change your email address"),
        "\n\n".join(
            [
                _(
                    "Your code to use this address for your government sign in account is"
                    " %(code)s.",
                    code=code,
                ),
                _("Enter it on the page where you asked for it. It expires in 15 minutes."),
                _("If you did not ask for this, you can ignore this email."),
            ]
        ),
    )


def reverify_letter(code: str | None) -> tuple[str, str]:
    return (
        _("Your code to set up a new authenticator app"),
        "\n\n".join(
            [
                _(
                    "Someone signed in to your government sign in account asked to set up a"
                    " new authenticator app. Your code is %(code)s.",
                    code=code,
                ),
                _("It expires in 15 minutes."),
                _(
                    "If this was not you, someone knows your password and has your second"
                    " factor or a recovery code: reset your password now."
                ),
            ]
        ),
    )

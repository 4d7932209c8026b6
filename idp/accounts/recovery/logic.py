"""The emails of a password reset: the code, and the notice that the password changed (also
sent when the password is changed from the account pages)."""

from __future__ import annotations

from flask_babel import format_datetime
from flask_babel import gettext as _

from idp.mail import send_in_background
from idp.models import Citizen
from idp.models.timestamps import utcnow
from idp.settings import current_settings


def reset_letter(code: str | None) -> tuple[str, str] | None:
    if code is None:
        return None  # no account has the address: nothing is sent, the page looks the same
    return (
        _("Your code to reset your password"),
        "\n\n".join(
            [
                _(
                    "Someone, hopefully you, asked to reset the password of your government"
                    " sign in account. Your code is %(code)s.",
                    code=code,
                ),
                _("Enter it on the page where you asked for it. It expires in 15 minutes."),
                _(
                    "If this was not you, you can ignore this email. Your password has not"
                    " changed, and nobody can change it without this code and your second"
                    " factor."
                ),
            ]
        ),
    )


def tell_owner_of_new_password(citizen: Citizen, *, reset: bool) -> None:
    """The owner hears that the password changed, with what to do if it was not them."""
    issuer = current_settings().issuer
    when = format_datetime(utcnow(), "HH:mm 'UTC', d MMMM yyyy")
    send_in_background(
        citizen.email,
        _("Your password was changed"),
        "\n\n".join(
            [
                _(
                    "The password of your government sign in account was reset at %(time)s.",
                    time=when,
                )
                if reset
                else _(
                    "The password of your government sign in account was changed at %(time)s.",
                    time=when,
                ),
                _("We signed your account out of every other browser and service."),
                _(
                    "Passkeys stay on your account: check the list on your account page and"
                    " remove any you do not know."
                ),
                _(
                    "If this was not you, reset your password now at %(url)s and check the"
                    " services that know you on your account page.",
                    url=f"{issuer}/reset-password",
                ),
            ]
        ),
    )

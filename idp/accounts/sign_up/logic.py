"""The emails of signing up: the code, or (when the address already has an account) a note to
its owner instead, so the pages never tell whether an address has an account."""

from __future__ import annotations

from flask_babel import gettext as _

from idp.settings import current_settings


def sign_up_letter(code: str | None) -> tuple[str, str]:
    return (
        _("Your code to create an account"),
        "\n\n".join(
            [
                _("Your code to create your government sign in account is %(code)s.", code=code),
                _("Enter it on the page where you asked for it. It expires in 15 minutes."),
                _(
                    "If you did not ask to create an account, you can ignore this email:"
                    " nobody can create one with your address without this code."
                ),
            ]
        ),
    )


def already_registered_letter(code: str | None) -> tuple[str, str]:
    issuer = current_settings().issuer
    return (
        _("You already have a government sign in account"),
        "\n\n".join(
            [
                _(
                    "Someone asked to create a government sign in account with this email"
                    " address. You already have an account, so we did not create another."
                ),
                _("To sign in, go to %(url)s", url=f"{issuer}/sign-in"),
                _(
                    "If you have forgotten your password, reset it at %(url)s",
                    url=f"{issuer}/reset-password",
                ),
                _("If this was not you, you can ignore this email. Your account has not changed."),
            ]
        ),
    )

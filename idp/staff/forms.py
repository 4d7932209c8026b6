"""Staff sign-in forms (Flask-WTF, CSRF on every form)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length


def choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    """WTForms choices from (value, label) pairs."""
    return [SelectChoice(value, label) for value, label in pairs]


class StaffSignInForm(FlaskForm):
    """Email and password for staff."""

    email = EmailField(
        "Email address",
        validators=[DataRequired("Enter your email address"), Length(max=320)],
        render_kw={"autocomplete": "username", "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password")],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Sign in")


class StaffCodeForm(FlaskForm):
    """The 6-digit code from a staff member's authenticator app."""

    code = StringField(
        "Code from your authenticator app",
        validators=[DataRequired("Enter the code from your authenticator app"), Length(max=32)],
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "spellcheck": "false",
            "autocapitalize": "none",
        },
    )
    submit = SubmitField("Continue")


class SignOutForm(FlaskForm):
    """The staff sign-out button (CSRF-protected)."""

    action = HiddenField(validators=[DataRequired()])

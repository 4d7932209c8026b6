"""Citizen forms (Flask-WTF: CSRF on every form)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

EMAIL_MAX = 320


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField(
        _l("Email address"),
        validators=[DataRequired(_l("Enter your email address")), Length(max=EMAIL_MAX)],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password"))],
        render_kw={"autocomplete": "current-password"},
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


def email_field(label):
    """An email address field with the usual checks."""
    return EmailField(
        label,
        validators=[
            DataRequired(_l("Enter your email address")),
            Email(_l("Enter an email address in the correct format, like name@example.com")),
            Length(max=EMAIL_MAX, message=_l("Email address must be 320 characters or fewer")),
        ],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )


def _new_password_fields(label):
    password = PasswordField(
        label,
        validators=[DataRequired(_l("Enter a password"))],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("Confirm your password"),
        validators=[
            DataRequired(_l("Confirm your password")),
            EqualTo("password", _l("The passwords you entered do not match")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    return password, confirm


class EmailForm(FlaskForm):
    """An email address to send a code to (sign up, reset a password)."""

    email = email_field(_l("Email address"))
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class SignUpDetailsForm(FlaskForm):
    """The rest of a new account, once its email is proven: optional name, password twice."""

    given_name = StringField(_l("First name (optional)"), validators=[Optional(), Length(max=200)])
    family_name = StringField(_l("Last name (optional)"), validators=[Optional(), Length(max=200)])
    password, confirm = _new_password_fields(_l("Create a password"))
    journey = HiddenField()
    submit = SubmitField(_l("Create your account"))


class NewPasswordForm(FlaskForm):
    """A new password, twice (after a reset); and whether to remove the account's passkeys."""

    password, confirm = _new_password_fields(_l("New password"))
    # Shown only to a citizen with passkeys: a passkey signs in on its own, so one added by
    # someone else would outlive the password they knew.
    remove_passkeys = BooleanField(_l("Remove all these passkeys from my account"))
    journey = HiddenField()
    submit = SubmitField(_l("Save your new password"))


class ButtonForm(FlaskForm):
    """A single button (send another code, remove...): a POST with a CSRF token."""

    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class ConsentForm(FlaskForm):
    """Allow or refuse sharing with a department."""

    allow = SubmitField(_l("Allow"))
    deny = SubmitField(_l("Do not allow"))


class SignOutForm(FlaskForm):
    """A button: signing out is a POST with a CSRF token."""

    submit = SubmitField(_l("Sign out"))


class CodeForm(FlaskForm):
    """A one-time code: from an authenticator app, or a recovery code."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(_l("Enter the code")), Length(max=32)],
        render_kw={
            "autocomplete": "one-time-code",
            "spellcheck": "false",
            "autocapitalize": "none",
        },
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))

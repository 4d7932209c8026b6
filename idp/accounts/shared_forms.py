"""The citizen's forms that several features share, and the fields their own forms are built
from (Flask-WTF: CSRF on every form). A form one feature uses is in that feature's forms.py."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length

EMAIL_MAX = 320


def email_field(label):
    """An email address field with the usual checks."""
    return EmailField(
        label,
        validators=[
            DataRequired(_l("Enter your email address")),
            # Before the format: the page shows a field's first error, and this is the reason.
            Length(max=EMAIL_MAX, message=_l("Email address must be 320 characters or fewer")),
            Email(_l("Enter an email address in the correct format, like name@example.com")),
        ],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )


def new_password_fields(label):
    """A new password and its confirmation."""
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


def current_password_field():
    """The current password, asked again before a change (page_helpers.with_password)."""
    return PasswordField(
        _l("Your current password"),
        validators=[DataRequired(_l("Enter your current password"))],
        render_kw={"autocomplete": "current-password"},
    )


class NewPasswordForm(FlaskForm):
    """A new password, twice (after a reset); and whether to remove the account's passkeys."""

    password, confirm = new_password_fields(_l("New password"))
    # Shown only to a citizen with passkeys: a passkey signs in on its own, so one added by
    # someone else would outlive the password they knew.
    remove_passkeys = BooleanField(_l("Remove all these passkeys from my account"))
    journey = HiddenField()
    submit = SubmitField(_l("Save your new password"))


class PasswordOnlyForm(FlaskForm):
    """The current password, to confirm an action (new recovery codes, a new app, a passkey)."""

    current_password = current_password_field()
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

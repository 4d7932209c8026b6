"""The forms of the email-code steps (Flask-WTF): the address a code goes to, and the button
that sends another. The code itself is typed in shared_forms.CodeForm."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField

from idp.accounts.shared_forms import email_field


class EmailForm(FlaskForm):
    """An email address to send a code to (sign up, reset a password)."""

    email = email_field(_l("Email address"))
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class ButtonForm(FlaskForm):
    """A single button (send another code, remove...): a POST with a CSRF token."""

    journey = HiddenField()
    submit = SubmitField(_l("Continue"))

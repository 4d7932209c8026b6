"""The sign-in forms (Flask-WTF): the email address, then the password on its own page."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Length

from idp.accounts.shared_forms import EMAIL_MAX


class SignInEmailForm(FlaskForm):
    """The email address: the first question of signing in."""

    email = EmailField(
        _l("Enter your email address"),
        validators=[
            DataRequired(_l("Enter your email address")),
            Length(max=EMAIL_MAX, message=_l("Email address must be 320 characters or fewer")),
        ],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class SignInPasswordForm(FlaskForm):
    """The password, for the address typed on the page before."""

    password = PasswordField(
        _l("Enter your password"),
        validators=[DataRequired(_l("Enter your password"))],
        render_kw={"autocomplete": "current-password"},
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))

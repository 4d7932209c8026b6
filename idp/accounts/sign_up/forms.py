"""The sign-up forms (Flask-WTF): the details asked once the email address is proven, one
thing per page: the name, then the password."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import Length, Optional

from idp.accounts.shared_forms import new_password_fields


class SignUpNamesForm(FlaskForm):
    """The citizen's name, optional: a department that needs it asks for the profile scope."""

    given_name = StringField(
        _l("First name (optional)"),
        validators=[
            Optional(),
            Length(max=200, message=_l("First name must be 200 characters or fewer")),
        ],
        render_kw={"autocomplete": "given-name", "spellcheck": "false"},
    )
    family_name = StringField(
        _l("Last name (optional)"),
        validators=[
            Optional(),
            Length(max=200, message=_l("Last name must be 200 characters or fewer")),
        ],
        render_kw={"autocomplete": "family-name", "spellcheck": "false"},
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class SignUpPasswordForm(FlaskForm):
    """The new account's password, twice."""

    password, confirm = new_password_fields(_l("Create a password"))
    journey = HiddenField()
    submit = SubmitField(_l("Create your account"))

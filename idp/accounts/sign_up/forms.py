"""The sign-up form (Flask-WTF): the details asked once the email address is proven."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import Length, Optional

from idp.accounts.shared_forms import new_password_fields


class SignUpDetailsForm(FlaskForm):
    """The rest of a new account, once its email is proven: optional name, password twice."""

    given_name = StringField(_l("First name (optional)"), validators=[Optional(), Length(max=200)])
    family_name = StringField(_l("Last name (optional)"), validators=[Optional(), Length(max=200)])
    password, confirm = new_password_fields(_l("Create a password"))
    journey = HiddenField()
    submit = SubmitField(_l("Create your account"))

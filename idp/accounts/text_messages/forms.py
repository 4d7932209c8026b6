"""The forms of codes by text message (Flask-WTF): a mobile number to send codes to, with the
current password when it is changed from the account pages. The code itself is typed in
shared_forms.CodeForm; the number is checked by logic.parse_mobile_number."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired

from idp.accounts.shared_forms import current_password_field


def phone_number_field(label):
    """A mobile number as typed; empty is refused here, the rest by parse_mobile_number."""
    return StringField(
        label,
        validators=[DataRequired(_l("Enter a mobile phone number"))],
        render_kw={"type": "tel", "autocomplete": "tel", "spellcheck": "false"},
    )


class PhoneNumberForm(FlaskForm):
    """The mobile number for the first second factor (after sign-up or sign-in)."""

    phone_number = phone_number_field(_l("UK mobile phone number, or international with +"))
    journey = HiddenField()
    submit = SubmitField(_l("Send a code"))


class ChangePhoneNumberForm(FlaskForm):
    """The current password and a new mobile number (account pages)."""

    current_password = current_password_field()
    phone_number = phone_number_field(_l("New mobile phone number"))
    submit = SubmitField(_l("Send a code"))

"""The forms of the account pages (Flask-WTF): each asks for the current password again."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField
from wtforms.validators import DataRequired

from idp.accounts.shared_forms import NewPasswordForm, current_password_field, email_field


class ChangePasswordForm(NewPasswordForm):
    """The current password, then the new one twice."""

    current_password = current_password_field()


class ChangeEmailForm(FlaskForm):
    """The current password and the new address."""

    current_password = current_password_field()
    email = email_field(_l("New email address"))
    submit = SubmitField(_l("Continue"))


class DeleteAccountForm(FlaskForm):
    """The current password and an explicit confirmation."""

    current_password = current_password_field()
    confirm = BooleanField(
        _l("I understand that my account will be deleted and cannot be brought back"),
        validators=[DataRequired(_l("Confirm that you want to delete your account"))],
    )
    submit = SubmitField(_l("Delete my account"))

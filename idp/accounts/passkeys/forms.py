"""The passkey pages' form (Flask-WTF). Adding a passkey asks for the current password with
shared_forms.PasswordOnlyForm."""

from flask_wtf import FlaskForm


class PasskeyForm(FlaskForm):
    """A button that changes a passkey: only the CSRF token."""

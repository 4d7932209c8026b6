"""Citizen forms (Flask-WTF: CSRF on every form)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

EMAIL_MAX = 320


class SignInForm(FlaskForm):
    """Email and password."""

    email = EmailField(
        "Email address",
        validators=[DataRequired("Enter your email address"), Length(max=EMAIL_MAX)],
        render_kw={"autocomplete": "email", "spellcheck": "false"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired("Enter your password")],
        render_kw={"autocomplete": "current-password"},
    )
    journey = HiddenField()
    submit = SubmitField("Continue")


class SignUpForm(FlaskForm):
    """A new account: email, password (twice), optional name."""

    email = EmailField(
        "Email address",
        validators=[
            DataRequired("Enter your email address"),
            Email("Enter an email address in the correct format, like name@example.com"),
            Length(max=EMAIL_MAX, message="Email address must be 320 characters or fewer"),
        ],
    )
    given_name = StringField("First name (optional)", validators=[Optional(), Length(max=200)])
    family_name = StringField("Last name (optional)", validators=[Optional(), Length(max=200)])
    password = PasswordField(
        "Create a password",
        validators=[DataRequired("Enter a password")],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Confirm your password",
        validators=[
            DataRequired("Confirm your password"),
            EqualTo("password", "The passwords you entered do not match"),
        ],
    )
    journey = HiddenField()
    submit = SubmitField("Create your account")


class ConsentForm(FlaskForm):
    """Allow or refuse sharing with a department."""

    allow = SubmitField("Allow")
    deny = SubmitField("Do not allow")


class SignOutForm(FlaskForm):
    """A button: signing out is a POST with a CSRF token."""

    submit = SubmitField("Sign out")

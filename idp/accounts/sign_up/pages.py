"""Creating an account (the `accounts` blueprint): the email address, the code sent to it,
then the name and the password, each on its own page; the second factor is set up straight
after (second_factor)."""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for
from flask import session as flask_session

from idp.accounts import recent_password
from idp.accounts.blueprint import bp
from idp.accounts.citizens import AccountError, create_citizen, find_citizen_by_email
from idp.accounts.email_codes import logic as email_codes
from idp.accounts.email_codes.pages import code_page, email_page, send_again_page, send_code
from idp.accounts.page_helpers import journey_context
from idp.accounts.sessions import start_session
from idp.accounts.sign_up.forms import SignUpNamesForm, SignUpPasswordForm
from idp.accounts.sign_up.logic import already_registered_letter, sign_up_letter


@bp.route("/sign-up", methods=["GET", "POST"])
def sign_up() -> Response:
    """Creating an account, step 1: the email address, which gets a code."""
    context = journey_context(request.values.get("journey"))
    next_url = url_for("accounts.sign_up_code", journey=context["journey"])
    return email_page("sign_up.html", _send_sign_up_code, next_url, **context)


def _sign_up_urls(journey: str | None) -> dict:
    return {
        "action": url_for("accounts.sign_up_code", journey=journey),
        "resend": url_for("accounts.sign_up_resend", journey=journey),
        "restart": url_for("accounts.sign_up", journey=journey),
    }


def _send_sign_up_code(address: str):
    existing = find_citizen_by_email(address)
    # The same page either way: sign-up never tells whether an address has an account.
    # The owner of a taken address hears by email instead, and no code will work.
    return send_code(
        "sign_up",
        address,
        sign_up_letter if existing is None else already_registered_letter,
        deliverable=existing is None,
    )


@bp.route("/sign-up/check-email", methods=["GET", "POST"])
def sign_up_code() -> Response:
    """Creating an account, step 2: the code from the email."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.pending("sign_up")
    if row is None:
        return redirect(url_for("accounts.sign_up", journey=context["journey"]))
    return code_page(
        row,
        _sign_up_urls(context["journey"]),
        lambda: redirect(url_for("accounts.sign_up_details", journey=context["journey"])),
        **context,
    )


@bp.post("/sign-up/send-again")
def sign_up_resend() -> Response:
    """Another code for the same address (the old one stops working)."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.pending("sign_up")
    if row is None:
        return redirect(url_for("accounts.sign_up", journey=context["journey"]))
    urls = _sign_up_urls(context["journey"])
    return send_again_page(row, urls, lambda: _send_sign_up_code(row.email), **context)


# The name typed on the names page, kept for the password page in the browser's signed Flask
# session, and forgotten once the account exists.
TYPED_NAMES = "sign_up_names"


@bp.route("/sign-up/your-details", methods=["GET", "POST"])
def sign_up_details() -> Response:
    """Creating an account, step 3 (email proven): the citizen's name, on its own page."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.verified("sign_up")
    if row is None:
        return redirect(url_for("accounts.sign_up", journey=context["journey"]))
    form = SignUpNamesForm()
    if request.method == "GET":
        form.journey.data = context["journey"]
        typed = flask_session.get(TYPED_NAMES) or {}
        form.given_name.data = typed.get("given_name")
        form.family_name.data = typed.get("family_name")
    elif form.validate_on_submit():
        flask_session[TYPED_NAMES] = {
            "given_name": form.given_name.data or "",
            "family_name": form.family_name.data or "",
        }
        return redirect(url_for("accounts.sign_up_password", journey=form.journey.data or None))
    status = 400 if request.method == "POST" else 200
    page = render_template("sign_up_details.html", form=form, email=row.email, **context)
    return page, status


@bp.route("/sign-up/password", methods=["GET", "POST"])
def sign_up_password() -> Response:
    """Creating an account, step 4: the password; then the second factor is set up."""
    context = journey_context(request.values.get("journey"))
    row = email_codes.verified("sign_up")
    if row is None:
        return redirect(url_for("accounts.sign_up", journey=context["journey"]))
    names = flask_session.get(TYPED_NAMES)
    if names is None:
        return redirect(url_for("accounts.sign_up_details", journey=context["journey"]))
    form = SignUpPasswordForm()
    if request.method == "GET":
        form.journey.data = context["journey"]
    elif form.validate_on_submit():
        try:
            citizen = create_citizen(
                row.email,
                form.password.data,
                given_name=names.get("given_name") or None,
                family_name=names.get("family_name") or None,
                email_code=row,
            )
        except AccountError as exc:
            if exc.field == "password":
                form.password.errors.append(str(exc))
            else:
                email_codes.forget("sign_up")
                return render_template("error.html", message=str(exc)), 400
        else:
            email_codes.forget("sign_up")
            flask_session.pop(TYPED_NAMES, None)
            # Every account has a second factor: set it up straight away.
            recent_password.typed(start_session(citizen, amr=["pwd"]))
            return redirect(url_for("two_factor.setup", journey=form.journey.data or None))
    status = 400 if request.method == "POST" else 200
    page = render_template("sign_up_password.html", form=form, **context)
    return page, status

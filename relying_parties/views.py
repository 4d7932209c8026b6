"""The pages every department service has: start, sign in, callback, account, sign out."""

from datetime import datetime

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from relying_parties.account import forget_sign_in, remember_sign_in, signed_in_account
from relying_parties.client import (
    complete_sign_in,
    current_department,
    sign_in_redirect,
    sign_out_redirect,
)
from relying_parties.errors import IdentityProviderUnavailable, SignInError
from relying_parties.keys import public_jwks

blueprint = Blueprint("department", __name__, template_folder="templates")


@blueprint.get("/")
def start() -> str:
    """The service's start page."""
    return render_template("rp/start.html", account=signed_in_account())


@blueprint.get("/sign-in")
def sign_in() -> Response:
    """Send the citizen to the IdP."""
    return sign_in_redirect(current_department(), request.args.get("prompt"))


@blueprint.get("/auth/callback")
def callback() -> Response:
    """Finish the sign-in the IdP sent the citizen back from."""
    remember_sign_in(complete_sign_in(current_department(), request.args))
    return redirect(url_for(".account"))


@blueprint.get("/account")
def account() -> Response | str:
    """Show what the department learned about the signed-in citizen."""
    citizen = signed_in_account()
    if citizen is None:
        return redirect(url_for(".start"))
    return render_template("rp/account.html", account=citizen)


@blueprint.post("/sign-out")
def sign_out() -> Response:
    """Sign the citizen out of this service, then of the IdP (RP-initiated logout)."""
    kept = forget_sign_in() or {}
    return sign_out_redirect(current_department(), kept.get("id_token"))


@blueprint.get("/jwks.json")
def jwks() -> Response | tuple[Response, int]:
    """The service's public key, fetched by the IdP to check private_key_jwt assertions."""
    signing_key = current_department().signing_key
    if signing_key is None:
        return jsonify(
            error="not_found",
            error_description="This service authenticates with a client secret, not keys.",
        ), 404
    response = jsonify(public_jwks(signing_key))
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


@blueprint.get("/health")
def health() -> dict:
    """Liveness check for the launcher."""
    return {"status": "ok"}


@blueprint.app_template_filter("lower_first")
def lower_first(text: str) -> str:
    """'Your tax account' becomes 'your tax account', for use mid-sentence."""
    return text[:1].lower() + text[1:]


@blueprint.app_template_filter("utc_time")
def utc_time(moment: datetime) -> str:
    """Format a UTC time as '5 March 2025 at 14:03:09 UTC'."""
    return f"{moment.day} {moment:%B %Y at %H:%M:%S} UTC"


@blueprint.app_errorhandler(SignInError)
def sign_in_failed(error: SignInError) -> tuple[str, int]:
    """Explain why the sign-in did not finish."""
    current_app.logger.warning("sign-in failed: %s: %r", error.error, error.description)
    return render_template("rp/error.html", error=error), error.status


@blueprint.app_errorhandler(IdentityProviderUnavailable)
def identity_provider_unavailable(error: IdentityProviderUnavailable) -> tuple[str, int]:
    """Say that sign-in is down, without a stack trace."""
    current_app.logger.warning("sign-in service unavailable: %s", error.reason)
    return render_template("rp/unavailable.html"), 503


@blueprint.app_errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[str, int]:
    """A plain page for not found, method not allowed and unexpected failures."""
    return render_template("rp/http_error.html", error=error), error.code or 500

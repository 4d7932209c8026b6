"""The pages every department service has: start, sign in, callback, account, sign out, and
the back-channel logout endpoint the IdP calls."""

from datetime import date, datetime

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Response

from relying_parties.account import forget_sign_in, remember_sign_in, signed_in_account
from relying_parties.backchannel import LogoutTokenError, check_logout_token
from relying_parties.client import (
    complete_sign_in,
    current_department,
    sign_in_redirect,
    sign_out_redirect,
)
from relying_parties.ended_sessions import EndedSessionsUnavailable, ReplayedLogoutToken
from relying_parties.errors import IdentityProviderUnavailable, SignInError
from relying_parties.identity import RETURN_CODE_WORDS
from relying_parties.keys import public_jwks
from relying_parties.settings import BACKCHANNEL_LOGOUT_PATH

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A logout token is a few hundred bytes; nothing bigger is read.
MAX_LOGOUT_REQUEST_BYTES = 16 * 1024

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


@blueprint.post(BACKCHANNEL_LOGOUT_PATH)
def backchannel_logout() -> Response:
    """OIDC Back-Channel Logout 1.0: end every sign-in from the IdP session the token names.

    Server to server: no cookie is read or set, so no CSRF check applies. 200 with an empty
    body once the logout is recorded, otherwise 400 with an OAuth error naming the reason.
    """
    department = current_department()
    try:
        logout = check_logout_token(
            logout_token_from_request(), department.settings, department.idp_keys
        )
        department.ended_sessions.end(logout)
    except LogoutTokenError as error:
        return logout_refused(str(error))
    except ReplayedLogoutToken:
        return logout_refused("the logout token has been used before (jti)")
    except IdentityProviderUnavailable as error:
        current_app.logger.warning("back-channel logout: %s", error.reason)
        return logout_deferred("the service could not fetch the IdP's keys to check the token")
    except EndedSessionsUnavailable as error:
        current_app.logger.error("back-channel logout: could not record the logout: %s", error)
        return logout_deferred("the service could not record the logout")
    except Exception as error:  # noqa: BLE001 - the IdP gets a 503 to retry, never a trace
        current_app.logger.error(
            "back-channel logout failed unexpectedly: %s", type(error).__name__
        )
        return logout_deferred("the service could not process the logout token")
    current_app.logger.info("back-channel logout: ended an IdP session's sign-ins")
    response = Response(status=200)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route(BACKCHANNEL_LOGOUT_PATH, methods=["GET", "PUT", "PATCH", "DELETE"])
def backchannel_logout_by_another_method() -> Response:
    """The IdP sends logout tokens with POST only: 405, naming the method to use."""
    response = logout_refused(f"the logout token must be sent with POST, not {request.method}")
    response.status_code = 405
    response.headers["Allow"] = "POST"
    return response


def logout_token_from_request() -> str:
    """The single logout_token parameter of a form-encoded POST body."""
    if request.mimetype != FORM_CONTENT_TYPE:
        raise LogoutTokenError(f"the logout token must be sent as {FORM_CONTENT_TYPE}")
    request.max_content_length = MAX_LOGOUT_REQUEST_BYTES
    try:
        tokens = request.form.getlist("logout_token")
    except RequestEntityTooLarge:
        raise LogoutTokenError("the request is too large to hold a logout token") from None
    if not tokens or not tokens[0]:
        raise LogoutTokenError("the request has no logout_token")
    if len(tokens) > 1:
        raise LogoutTokenError("the request has more than one logout_token")
    return tokens[0]


def logout_refused(description: str) -> Response:
    """Back-Channel Logout 2.8: 400 invalid_request; the log names the reason, not the token."""
    current_app.logger.warning("back-channel logout refused: %s", description)
    response = jsonify(error="invalid_request", error_description=description)
    response.status_code = 400
    response.headers["Cache-Control"] = "no-store"
    return response


def logout_deferred(description: str) -> Response:
    """A failure on the service's side, not the token's: 503, so the IdP tries again later
    (it retries 5xx answers with back-off, and takes a 400 as final)."""
    response = jsonify(error="temporarily_unavailable", error_description=description)
    response.status_code = 503
    response.headers["Cache-Control"] = "no-store"
    response.headers["Retry-After"] = "5"
    return response


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


@blueprint.app_template_filter("return_code_words")
def return_code_words(code: str) -> str:
    """Why the citizen could not prove their identity online, in words."""
    return RETURN_CODE_WORDS.get(code, "The sign-in service could not confirm your identity.")


@blueprint.app_template_filter("long_date")
def long_date(value: str | None) -> str:
    """An ISO date as GOV.UK writes dates ('8 July 1965'); as given when it is not one."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return value or ""
    return f"{day.day} {day:%B %Y}"


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

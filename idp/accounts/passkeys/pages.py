"""Passkeys (WebAuthn): a second factor, and a sign-in on their own.

Each ceremony is two JSON requests from static/passkeys.js: options (which start a challenge)
and the browser's answer. The handle that finds the challenge again is kept in Flask's signed
session cookie, per purpose, so an answer only counts in the browser that asked for it (a
captured answer cannot be replayed from elsewhere) and a page never sees the handle. Errors
are JSON {"error": code, "message": text for the citizen} with a 4xx status; successes are
{"redirect": where the page goes next}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request, url_for
from flask import session as flask_session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from idp import audit
from idp.accounts import recent_password
from idp.accounts.guards import fully_signed_in, signed_in
from idp.accounts.levels import vector_met
from idp.accounts.page_helpers import continue_journey, journey_context, with_password
from idp.accounts.passkeys import logic as ceremonies
from idp.accounts.passkeys.forms import PasskeyForm
from idp.accounts.passkeys.logic import PasskeyError
from idp.accounts.second_factor.logic import has_second_factor, issue_recovery_codes, step_up
from idp.accounts.sessions import current_session, start_session
from idp.accounts.shared_forms import PasswordOnlyForm

bp = Blueprint("passkeys", __name__)

# Flask session keys: the handles of ceremonies in progress, and recovery codes to show.
HANDLES = "passkey_ceremonies"
RECOVERY_CODES_DUE = "passkey_recovery_codes_due"
JSON_ENDPOINTS = frozenset(
    {
        "passkeys.register_options",
        "passkeys.register",
        "passkeys.setup_options",
        "passkeys.setup",
        "passkeys.second_factor_options",
        "passkeys.second_factor",
        "passkeys.sign_in_options",
        "passkeys.sign_in",
    }
)


# -- Parse and answer -------------------------------------------------------------------------


def _json_body() -> Any:
    """The request's JSON body ({} when empty), or a PasskeyError."""
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise PasskeyError(
            "too_large", _("The passkey response is too large. Try again."), status=413
        ) from None
    if not raw.strip():
        return {}
    if request.mimetype != "application/json":
        raise PasskeyError("invalid_request", _("Send the passkey response as JSON."))
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise PasskeyError(
            "invalid_json",
            _("Your browser sent a passkey response that could not be read. Try again."),
        ) from None


def _error(error: PasskeyError) -> tuple[Response, int, dict]:
    """The JSON answer to a ceremony that did not work."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    return jsonify({"error": error.code, "message": error.message}), error.status, headers


def _go(response: Response) -> Response:
    """Where the page goes next, from a redirect, as JSON."""
    return jsonify({"redirect": response.location})


def _sign_in_again(elsewhere: Response) -> tuple[Response, int]:
    """401: the page's session ended; it goes where a page load would have gone."""
    body = {
        "error": "sign_in_required",
        "message": _("You are not signed in any more. Sign in and try again."),
        "redirect": elsewhere.location,
    }
    return jsonify(body), 401


def _keep_handle(purpose: str, handle: str) -> None:
    """Remember the handle of the ceremony this browser started (one per purpose)."""
    handles = dict(flask_session.get(HANDLES) or {})
    handles[purpose] = handle
    flask_session[HANDLES] = handles


def _take_handle(purpose: str) -> str | None:
    """The handle of this browser's ceremony, forgotten here (the challenge is used up)."""
    handles = dict(flask_session.get(HANDLES) or {})
    handle = handles.pop(purpose, None)
    flask_session[HANDLES] = handles
    return handle


def _options(ceremony: ceremonies.Ceremony, purpose: str) -> Response:
    """The options as JSON, the handle kept in this browser."""
    _keep_handle(purpose, ceremony.handle)
    return jsonify(ceremony.options)


def _start(
    purpose: str,
    make: Callable[[], ceremonies.Ceremony],
    refusal: tuple[Response, int] | None = None,
    check_body: Callable[[Any], object] = lambda body: None,
) -> Response | tuple:
    """Start a ceremony: the refusal when there is one, a JSON error for a body that is not
    right, else the options (make()) with the handle kept in this browser."""
    if refusal:
        return refusal
    try:
        check_body(_json_body())
    except PasskeyError as error:
        return _error(error)
    return _options(make(), purpose)


@bp.errorhandler(CSRFError)
def csrf_refused(error: CSRFError):
    """A ceremony without this site's CSRF token: JSON for the script, a page for a form."""
    message = _("This form has expired or was not sent from this site. Go back and try again.")
    if request.endpoint in JSON_ENDPOINTS:
        return jsonify({"error": "csrf", "message": message}), 400
    return render_template("error.html", message=message), 400


# -- Your passkeys (account pages) ------------------------------------------------------------


@bp.get("/account/passkeys")
@fully_signed_in
def manage(*, current) -> Response:
    """The citizen's passkeys, with add and remove."""
    return _passkeys_page(current.citizen, done=request.args.get("done"))


def _passkeys_page(citizen, done: str | None = None, error: str | None = None, status=200):
    return (
        render_template(
            "passkeys.html",
            passkeys=ceremonies.citizen_passkeys(citizen),
            form=PasskeyForm(),
            done=done,
            error=error,
        ),
        status,
    )


@bp.route("/account/passkeys/add", methods=["GET", "POST"])
@fully_signed_in
def add(*, current) -> Response:
    """Adding a passkey starts with the current password; then the browser makes the passkey.
    A passkey signs in on its own (Cl.Cm), so adding one is a credential change like any other:
    it needs the password at that moment (recent_password.py), not only a session."""

    def confirmed():
        return render_template("passkeys_add.html", confirmed=True)

    return with_password(PasswordOnlyForm(), current.citizen, confirmed, "passkeys_add.html")


def _password_confirmed(session, password_step: str) -> tuple[Response, int] | None:
    """None when this browser typed the password for this session moments ago; else a refusal
    that sends the page to the password step."""
    if recent_password.recent(session):
        return None
    recent_password.forget()
    body = {
        "error": "password_required",
        "message": _("To add a passkey, enter your current password first."),
        "redirect": password_step,
    }
    return jsonify(body), 403


@bp.post("/account/passkeys/options")
@fully_signed_in(refused=_sign_in_again)
def register_options(*, current) -> Response:
    """Start adding a passkey (after the current password)."""
    purpose = ceremonies.REGISTER
    return _start(
        purpose,
        lambda: ceremonies.registration_options(current.citizen, purpose),
        _password_confirmed(current, url_for("passkeys.add")),
        lambda body: ceremonies.passkey_name(body.get("name") if isinstance(body, dict) else None),
    )


@bp.post("/account/passkeys")
@fully_signed_in(refused=_sign_in_again)
def register(*, current) -> Response:
    """Finish adding a passkey: check the browser's answer and store the passkey. One typed
    password adds one passkey."""
    refusal = _password_confirmed(current, url_for("passkeys.add"))
    if refusal:
        return refusal
    purpose = ceremonies.REGISTER
    try:
        body = _json_body()
        ceremonies.register_passkey(current.citizen, purpose, _take_handle(purpose), body)
    except PasskeyError as error:
        return _error(error)
    recent_password.forget()
    return jsonify({"redirect": url_for("passkeys.manage", done="added")})


@bp.post("/account/passkeys/<int:passkey_id>/remove")
@fully_signed_in
def remove(passkey_id: int, *, current) -> Response:
    """Remove a passkey, unless it is the account's last second factor."""
    if not PasskeyForm().validate_on_submit():
        abort(400, _("Nothing was changed: use the button on your passkeys page."))
    try:
        ceremonies.remove_passkey(current.citizen, passkey_id)
    except LookupError:
        abort(404, _("That passkey is not on your account."))
    except PasskeyError as error:
        return _passkeys_page(current.citizen, error=error.message, status=400)
    return redirect(url_for("passkeys.manage", done="removed"))


# -- A passkey instead of an authenticator app, straight after sign-up ------------------------


def _not_ready_to_set_up(session) -> tuple[Response, int] | None:
    """None when the signed-in citizen has no second factor yet and typed the password moments
    ago (the first second factor signs in too: recent_password.py); else a JSON refusal."""
    journey = request.args.get("journey")
    if has_second_factor(session.citizen):
        refusal = {
            "error": "already_set_up",
            "message": _("Your account already has a second factor."),
            "redirect": continue_journey(journey).location,
        }
        return jsonify(refusal), 400
    return _password_confirmed(session, url_for("two_factor.setup_password", journey=journey))


@bp.post("/two-factor/setup/passkey/options")
@signed_in(refused=_sign_in_again)
def setup_options(*, current) -> Response:
    """Start protecting a new account with a passkey."""
    purpose = ceremonies.SETUP
    return _start(
        purpose,
        lambda: ceremonies.registration_options(current.citizen, purpose),
        _not_ready_to_set_up(current),
    )


@bp.post("/two-factor/setup/passkey")
@signed_in(refused=_sign_in_again)
def setup(*, current) -> Response:
    """Finish: store the passkey, step the session up, then show the recovery codes."""
    refusal = _not_ready_to_set_up(current)
    if refusal:
        return refusal
    purpose = ceremonies.SETUP
    try:
        body = _json_body()
        passkey = ceremonies.register_passkey(current.citizen, purpose, _take_handle(purpose), body)
    except PasskeyError as error:
        return _error(error)
    step_up(current, ceremonies.amr_method(passkey), "passkey", during="setup")
    flask_session[RECOVERY_CODES_DUE] = passkey.citizen_id
    journey = journey_context(request.args.get("journey"))["journey"]
    return jsonify({"redirect": url_for("passkeys.setup_recovery_codes", journey=journey)})


@bp.get("/two-factor/setup/passkey/recovery-codes")
def setup_recovery_codes() -> Response:
    """The ten recovery codes, issued once, the moment they can be shown."""
    context = journey_context(request.args.get("journey"))
    session = current_session()
    due = flask_session.pop(RECOVERY_CODES_DUE, None)
    if session is None or due != session.citizen_id:
        return continue_journey(context["journey"])
    codes = issue_recovery_codes(session.citizen)
    return render_template("passkeys_recovery_codes.html", codes=codes, **context)


# -- The second step of signing in ------------------------------------------------------------


def _no_passkey(session) -> tuple[Response, int] | None:
    """None when the signed-in citizen has a passkey; else a JSON refusal."""
    if ceremonies.has_passkey(session.citizen):
        return None
    refusal = {
        "error": "no_passkey",
        "message": _("Your account has no passkey. Use your authenticator app."),
    }
    return jsonify(refusal), 400


@bp.post("/sign-in/second-factor/passkey/options")
@signed_in(refused=_sign_in_again)
def second_factor_options(*, current) -> Response:
    """Start the second step with one of the citizen's passkeys."""
    purpose = ceremonies.SECOND_FACTOR
    return _start(
        purpose,
        lambda: ceremonies.authentication_options(purpose, current.citizen),
        _no_passkey(current),
    )


@bp.post("/sign-in/second-factor/passkey")
@signed_in(refused=_sign_in_again)
def second_factor(*, current) -> Response:
    """Finish the second step: a new session with hwk or swk, then on with the journey."""
    refusal = _no_passkey(current)
    if refusal:
        return refusal
    purpose = ceremonies.SECOND_FACTOR
    try:
        body = _json_body()
        result = ceremonies.authenticate(
            purpose, _take_handle(purpose), body, request.remote_addr or "", current.citizen
        )
    except PasskeyError as error:
        return _error(error)
    step_up(current, result.method, "passkey")
    return _go(continue_journey(request.args.get("journey")))


# -- Signing in with a passkey alone ----------------------------------------------------------


@bp.post("/sign-in/passkey/options")
def sign_in_options() -> Response:
    """Start a sign-in with any passkey the browser or device offers (discoverable)."""
    purpose = ceremonies.SIGN_IN
    return _start(purpose, lambda: ceremonies.authentication_options(purpose, None))


@bp.post("/sign-in/passkey")
def sign_in() -> Response:
    """Finish: a new session meeting Cl.Cm, then on with the journey (or the account page)."""
    purpose = ceremonies.SIGN_IN
    try:
        body = _json_body()
        result = ceremonies.authenticate(
            purpose, _take_handle(purpose), body, request.remote_addr or ""
        )
    except PasskeyError as error:
        return _error(error)
    session = start_session(result.citizen, amr=[result.method])
    audit.record(
        "sign_in.passkey_succeeded",
        citizen_id=result.citizen.id,
        sid=session.sid,
        level=vector_met(session.amr),
        methods=session.amr,
        passkey_id=result.passkey.id,
    )
    return _go(continue_journey(request.args.get("journey")))

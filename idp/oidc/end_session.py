"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a department signs the
citizen out of the IdP.

With a valid `id_token_hint` for this browser's session, the citizen is signed out at once.
Either way the citizen ends on the IdP's "You have signed out" page, which names the services
they were signed out of; it is not skipped, so the citizen always sees that it worked. When the
hint was valid and the department gave its registered `post_logout_redirect_uri` (exact match,
in the approved version of an active service's settings), the page has a "Continue to
<service>" link there, with the department's `state` (RP-Initiated Logout 1.0 section 3; the
spec lets the OP show its own page first). Without a hint, or with one that fails validation,
the citizen is asked to confirm first, and the page offers no way back: a request anyone can
forge never sends the browser anywhere (section 3: an unverified post_logout_redirect_uri must
not be used), even to a URI a department registered. A service that is not active, or whose
newer settings wait for approval, is never returned to either.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import jwt
from flask import Blueprint, Response, g, render_template, request
from flask_babel import gettext as _

from idp import audit, clock
from idp.accounts.sessions import current_session
from idp.accounts.shared_forms import SignOutForm
from idp.accounts.sign_in.logic import sign_out_browser
from idp.models import Client
from idp.models.client import registered_client
from idp.oidc.backchannel import sids_known_to_departments
from idp.oidc.claims import subject_for
from idp.oidc.keys import SUPPORTED_ALGS, public_jwks
from idp.settings import current_settings

bp = Blueprint("end_session", __name__)

MAX_PARAMETER_LENGTH = 4096
LOGOUT_PARAMETERS = (
    "id_token_hint",
    "post_logout_redirect_uri",
    "state",
    "client_id",
    "ui_locales",
)


@dataclass
class LogoutRequest:
    """What a department asked for, once checked."""

    client: Client | None
    hint_valid: bool
    hint_sid: str | None
    hint_sub: str | None
    return_to: str | None  # a registered post_logout_redirect_uri, or None
    state: str | None


def _verified_hint(hint: str) -> dict | None:
    """The ID token's claims if the IdP signed it (expired is fine: OIDC RP-Initiated 2)."""
    try:
        header = jwt.get_unverified_header(hint)
        keys = [k for k in public_jwks()["keys"] if k.get("kid") == header.get("kid")]
        if not keys or header.get("alg") not in SUPPORTED_ALGS:
            return None
        if header.get("typ") not in (None, "JWT"):
            return None  # a logout token (logout+jwt) or anything else is not an ID token
        return jwt.decode(
            hint,
            jwt.PyJWK(keys[0]),
            algorithms=[header["alg"]],
            issuer=current_settings().issuer,
            options={"verify_exp": False, "verify_aud": False, "require": ["iss", "aud", "sub"]},
            # PyJWT checks iat against the real clock; idp.clock is ahead only in tests (else 0).
            leeway=clock.offset(),
        )
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        return None


def _may_return_to(client: Client, uri: str | None) -> bool:
    """Only an active service with a current approval is returned to, and only at a
    post_logout_redirect_uri a platform administrator approved: a change waiting for
    approval, or a suspended or switched-off service, gets the IdP's signed-out page
    (RFC 9700 4.11.2: a redirect URI nobody reviewed is an open redirect)."""
    return (
        client.is_active
        and client.approval_is_current
        and uri in client.reviewed_post_logout_redirect_uris
    )


def parse_request(values) -> LogoutRequest:
    """Check the parameters; nothing here trusts a URI the department did not register."""
    get = lambda name: (values.get(name) or "")[:MAX_PARAMETER_LENGTH] or None  # noqa: E731
    claims = _verified_hint(get("id_token_hint")) if get("id_token_hint") else None
    client = None
    if claims is not None:
        audience = claims.get("aud")
        audience = audience[0] if isinstance(audience, list) and audience else audience
        client = registered_client(audience) if isinstance(audience, str) else None
        if client is None or (get("client_id") and get("client_id") != client.client_id):
            claims, client = None, None
    if client is None and get("client_id"):
        client = registered_client(get("client_id"))
    uri = get("post_logout_redirect_uri")
    # Only a hint the IdP signed says which department asks: a client_id alone is anyone's.
    trusted = claims is not None and client is not None
    return_to = uri if trusted and _may_return_to(client, uri) else None
    return LogoutRequest(
        client=client,
        hint_valid=claims is not None,
        hint_sid=claims.get("sid") if claims else None,
        hint_sub=claims.get("sub") if claims else None,
        return_to=return_to,
        state=get("state"),
    )


def _hint_matches(logout: LogoutRequest, session) -> bool:
    """The hint names this browser's session (by sid, else by the department's sub)."""
    if not logout.hint_valid or session is None:
        return False
    if logout.hint_sid:
        # The department may know the session by the sid it had before the citizen signed in
        # again in this browser (the session was carried over with a new sid).
        return logout.hint_sid == session.sid or logout.hint_sid in sids_known_to_departments(
            session.id
        )
    return logout.hint_sub == subject_for(session.citizen, logout.client)


def return_address(logout: LogoutRequest) -> str | None:
    """The registered post_logout_redirect_uri with the department's state, or None."""
    if not logout.return_to:
        return None
    query = urlencode({"state": logout.state}) if logout.state else ""
    separator = "&" if "?" in logout.return_to else "?"
    return logout.return_to + (separator + query if query else "")


def _finish(logout: LogoutRequest, services: list[Client]) -> Response:
    """The signed-out page: the services signed out of, and the way back to the department
    when it registered one (a link the citizen follows, never an automatic redirect)."""
    g.clear_session_cookie = True
    return render_template(
        "signed_out.html",
        client=logout.client,
        services=services,
        return_to=return_address(logout),
    )


def _sign_out(session, logout: LogoutRequest, how: str) -> list[Client]:
    """RP-initiated logout: recorded with the department that asked (when it is known); the
    services the citizen was signed out of."""
    if session is None:
        return []
    audit.record(
        "citizen.signed_out_by_service",
        citizen_id=session.citizen_id,
        client_id=logout.client.client_id if logout.client else None,
        sid=session.sid,
        confirmed_by=how,
        hint_valid=logout.hint_valid,
    )
    return sign_out_browser(session, reason="signed out by a service")


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response:
    """The end_session_endpoint."""
    logout = parse_request(request.values)
    session = current_session()
    form = SignOutForm()
    if request.method == "POST" and request.form.get("confirm") == "yes":
        if not form.validate_on_submit():
            return render_template("error.html", message=_("The form has expired.")), 400
        return _finish(logout, _sign_out(session, logout, "citizen"))
    if _hint_matches(logout, session):
        return _finish(logout, _sign_out(session, logout, "id_token_hint"))
    if session is None:
        # Nobody is signed in here: nothing to confirm.
        return _finish(logout, [])
    return render_template(
        "confirm_sign_out.html",
        form=form,
        client=logout.client,
        values={
            k: v[:MAX_PARAMETER_LENGTH] for k, v in request.values.items() if k in LOGOUT_PARAMETERS
        },
        hint_failed=request.values.get("id_token_hint") is not None and not logout.hint_valid,
    )

"""The authorization endpoint (OIDC Core 3.1.2): validate, sign in, consent, issue a code.

A request goes through these steps in order (proceed() below takes them one by one, and a
journey resumed after sign-in or consent starts again at step 1 with the stored request):

1. Trust: the client_id is registered, the redirect_uri is one of its own and no parameter
   is repeated (idp/oidc/redirect_uri.py); otherwise an error page, never a redirect.
2. The service is active; otherwise the "service unavailable" page.
3. Authlib validates the request (RFC 6749 4.1.1: response_type=code, redirect_uri, scope),
   then the IdP's own checks run in order (idp/oidc/authorization_checks.py: CHECKS); a
   refusal is redirected to the service with state and iss.
4. Sign-in: none yet, prompt=login, or older than max_age sends the citizen to sign in.
5. The level asked for (vtr): a session short of it is sent to its second factor.
5b. The identity confidence asked for (vtr "Cl.Cm.P1"/"Cl.Cm.P2"): a citizen whose proved
   identity is short of it is sent to the identity check (/identity/start); one who came back
   from a check that did not prove enough goes back to the department, with a code whose
   userinfo says why (returnCode) if the department asked for that claim, else with
   access_denied. With prompt=none: interaction_required (OIDC Core 3.1.2.6).
6. Consent: the first time, prompt=consent, new scopes or new verified details send the citizen
   to the consent page.
   With prompt=none, steps 4 to 6 answer login_required, interaction_required (5b) or
   consent_required instead.
7. The journey ends, once (a double click sees the expired journey page).
8. The code is issued (idp/oidc/grants/authorization_code.py) and the citizen redirected
   back with code, state and iss (RFC 9207).
"""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import AccessDeniedError, OAuth2Error, scope_to_list
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
)
from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from idp import audit
from idp.accounts.levels import achieved_vector, requested_vectors
from idp.accounts.sessions import SignIn, current_session, current_sign_in
from idp.accounts.shared_forms import ConsentForm
from idp.accounts.text_messages.logic import phone_number as confirmed_mobile
from idp.extensions import csrf, db
from idp.models import BrowserSession, Citizen, Client, Consent, Interaction
from idp.models.client import registered_client
from idp.models.timestamps import utcnow
from idp.oidc.authorization_server import authorization_server
from idp.oidc.claims import released_claims
from idp.oidc.identity_claims import (
    describe_details,
    details_to_consent,
    finished_check_since,
    identity_short,
    proved_grant,
    return_code_grant,
)
from idp.oidc.journey import (
    AuthorizationRequest,
    find_interaction,
    finish_interaction,
    interaction_params,
    start_interaction,
)
from idp.oidc.records import ResourceOwner
from idp.oidc.redirect_uri import untrusted_request_problem
from idp.settings import current_settings

bp = Blueprint("authorize", __name__)


def error_page(message: str, status: int = 400) -> tuple[str, int]:
    """An HTML error page, for errors that must not be redirected."""
    return render_template("error.html", message=message), status


def error_response(error: OAuth2Error, oauth_request: AuthorizationRequest) -> Response:
    """Redirect the error to the client with state and iss, or show a page when untrusted."""
    client = registered_client(oauth_request.payload.client_id or "")
    audit.record(
        "authorization.failed",
        outcome="failure",
        reason=error.error,
        client_id=client.client_id if client else None,
    )
    if not error.redirect_uri:
        return error_page(error.description or error.error)
    server = authorization_server()
    error.state = oauth_request.payload.state
    response = server.handle_error_response(oauth_request, error)
    server.issuer_parameter.add_issuer_parameter(server, response)
    return response


def client_unavailable_page(client: Client) -> tuple[str, int]:
    """A registered service that may not be used now (pending, suspended or disabled).

    Its redirect URIs are not trusted while it is not active (RFC 9700 4.11.2), so the
    citizen is told here rather than sent back with unauthorized_client.
    """
    audit.record(
        "authorization.failed",
        outcome="failure",
        reason="unauthorized_client",
        client_id=client.client_id,
        client_status=client.status,
    )
    return render_template("service_unavailable.html", client=client), 403


def _signed_in_during(session: BrowserSession | SignIn, interaction: Interaction | None) -> bool:
    """Whether the citizen authenticated in this browser after this journey began."""
    return interaction is not None and session.auth_time >= interaction.created_at


def needs_authentication(
    session: BrowserSession | SignIn | None, data: MultiDict, interaction: Interaction | None
) -> bool:
    """No session, prompt=login, or an auth_time older than max_age (OIDC Core 3.1.2.1)."""
    if session is None:
        return True
    if _signed_in_during(session, interaction):
        return False
    prompts = (data.get("prompt") or "").split()
    if "login" in prompts:
        return True
    max_age = data.get("max_age")
    if max_age is not None:
        return utcnow() - session.auth_time > timedelta(seconds=int(max_age))
    return False


# The scopes and verified details already agreed, read at every authorization request: built once.
_CONSENTED_SCOPE = select(Consent.__table__.c.scope, Consent.__table__.c.identity_claims).where(
    Consent.__table__.c.citizen_id == bindparam("citizen_id"),
    Consent.__table__.c.client_id == bindparam("client_id"),
)


def needs_consent(
    session: BrowserSession | SignIn,
    client: Client,
    scope: str,
    data: MultiDict,
    interaction: Interaction | None,
    details: list[str] | None = None,
) -> bool:
    """First time a department asks, prompt=consent, new scopes, or verified details (identity
    claims) the citizen has not agreed to give it."""
    if interaction is not None and interaction.consented_sid == session.sid:
        # This very sign-in agreed on the consent page of this journey.
        return False
    if "consent" in (data.get("prompt") or "").split():
        return True
    asked = {"citizen_id": session.citizen_id, "client_id": client.client_id}
    row = db.session.connection().execute(_CONSENTED_SCOPE, asked).first()
    if row is None:
        return True
    consented, consented_details = row
    if not set(details or ()).issubset(consented_details or ()):
        return True
    return not set(scope_to_list(scope)).issubset(scope_to_list(consented))


def _untrusted_reason(client: Client | None, params: MultiDict) -> str:
    """Why a request was not trusted with a redirect, for the audit record."""
    if client is None:
        return "unknown_client"
    if client.check_redirect_uri(params.get("redirect_uri", "")):
        return "repeated_parameter"
    return "untrusted_redirect_uri"


def proceed(params: MultiDict, interaction: Interaction | None) -> Response:
    """Take an authorization request as far as it can go: sign-in, consent, or a code."""
    # 1. Trust: no redirect to a client or URI that is not known.
    problem = untrusted_request_problem(params.to_dict(flat=False))
    client = registered_client(params.get("client_id", ""))
    if problem:
        # Only a registered client_id is recorded: anything else might be anything.
        audit.record(
            "authorization.failed",
            outcome="failure",
            reason=_untrusted_reason(client, params),
            client_id=client.client_id if client else None,
        )
        return error_page(problem)
    # 2. The service is active.
    if client is not None and not client.is_active:
        return client_unavailable_page(client)
    # 3. Authlib's validation, then the IdP's checks (authorization_checks.CHECKS).
    oauth_request = AuthorizationRequest(params)
    session = current_sign_in()
    citizen = ResourceOwner(session.citizen_id) if session else None
    server = authorization_server()
    try:
        grant = server.get_consent_grant(oauth_request, end_user=citizen)
    except OAuth2Error as error:
        return error_response(error, oauth_request)
    data = oauth_request.payload.data
    prompts = (data.get("prompt") or "").split()

    # 4. Sign-in.
    if needs_authentication(session, data, interaction):
        if "none" in prompts:
            return error_response(
                LoginRequiredError(redirect_uri=grant.redirect_uri), oauth_request
            )
        interaction = interaction or start_interaction(params)
        return redirect(url_for("accounts.sign_in", journey=interaction.handle))

    # 5. The level asked for.
    if (
        achieved_vector(session.amr or [], requested_vectors(data), session.password_enough_alone)
        is None
    ):
        # A password-only session asked for Cl.Cm: the second factor only, not the password.
        if "none" in prompts:
            return error_response(
                LoginRequiredError(redirect_uri=grant.redirect_uri), oauth_request
            )
        interaction = interaction or start_interaction(params)
        return redirect(url_for("two_factor.second_factor", journey=interaction.handle))

    # 5b. The identity confidence asked for.
    details: list[str] = []
    not_proved: str | None = None
    if identity_short(session.citizen_id, data):
        if "none" in prompts:
            return error_response(
                InteractionRequiredError(redirect_uri=grant.redirect_uri), oauth_request
            )
        check = interaction and finished_check_since(session.citizen_id, interaction.created_at)
        if not check:
            interaction = interaction or start_interaction(params)
            return redirect(url_for("identity.start", journey=interaction.handle))
        # Back from a check that did not prove enough: back to the department, told why.
        not_proved = check.return_code or "X"
        oauth_request.identity_grant = return_code_grant(grant.client, data, not_proved)
        if oauth_request.identity_grant is None:
            if not finish_interaction(interaction):
                return expired_journey_page()
            _record_not_proved(session.citizen_id, grant.client, not_proved, told=False)
            refused = AccessDeniedError(
                description="The citizen could not prove their identity to the level asked.",
                redirect_uri=grant.redirect_uri,
            )
            return error_response(refused, oauth_request)
    else:
        oauth_request.identity_grant = proved_grant(grant.client, data, session.citizen_id)
        details = details_to_consent(grant.client, data, session.citizen_id)

    # 6. Consent.
    if needs_consent(session, grant.client, oauth_request.scope, data, interaction, details):
        if "none" in prompts:
            return error_response(
                ConsentRequiredError(redirect_uri=grant.redirect_uri), oauth_request
            )
        interaction = interaction or start_interaction(params)
        return redirect(url_for("authorize.consent", journey=interaction.handle))

    # 7. The journey ends, once.
    if interaction is not None and not finish_interaction(interaction):
        # Another request (a double click) already finished this journey.
        return expired_journey_page()
    if not_proved is not None:
        _record_not_proved(session.citizen_id, grant.client, not_proved, told=True)
    # 8. The code.
    return server.create_authorization_response(
        request=oauth_request, grant_user=citizen, grant=grant
    )


def _record_not_proved(citizen_id: int, client: Client, return_code: str, told: bool) -> None:
    """The citizen goes back to the department without a proved identity: with a code whose
    userinfo says why (told), or with access_denied."""
    audit.record(
        "identity.not_proved_returned",
        citizen_id=citizen_id,
        client_id=client.client_id,
        return_code=return_code,
        told=told,
    )


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize() -> Response:
    """OIDC Core 3.1.2.1: the request arrives by GET or by form POST."""
    return proceed(MultiDict(request.values.items(multi=True)), None)


@bp.get("/authorize/resume")
def resume() -> Response:
    """Continue a journey after sign-in or consent."""
    interaction = find_interaction(request.args.get("journey"))
    if interaction is None:
        return expired_journey_page()
    return proceed(interaction_params(interaction), interaction)


def expired_journey_page() -> tuple[str, int]:
    """The journey is unknown or too old: start again at the department."""
    return error_page(
        _(
            "Your sign-in took too long or the link is no longer valid. "
            "Go back to the service you were using and start again."
        )
    )


@bp.route("/consent", methods=["GET", "POST"])
def consent() -> Response:
    """Ask the citizen whether the department may receive the listed information."""
    interaction = find_interaction(request.args.get("journey"))
    if interaction is None:
        return expired_journey_page()
    params = interaction_params(interaction)
    client = registered_client(params.get("client_id", ""))
    if client is not None and not client.is_active:
        return client_unavailable_page(client)
    session = current_session()
    if needs_authentication(session, params, interaction):
        return redirect(url_for("accounts.sign_in", journey=interaction.handle))
    oauth_request = AuthorizationRequest(params)
    server = authorization_server()
    try:
        grant = server.get_consent_grant(oauth_request, end_user=session.citizen)
    except OAuth2Error as error:
        return error_response(error, oauth_request)
    form = ConsentForm()
    details = details_to_consent(grant.client, params, session.citizen_id)
    if form.validate_on_submit():
        if form.allow.data:
            record_consent(session.citizen, grant.client, oauth_request.scope, details)
            interaction.consented_sid = session.sid
            db.session.commit()
            return redirect(url_for("authorize.resume", journey=interaction.handle))
        audit.record(
            "consent.refused",
            outcome="failure",
            reason="declined",
            citizen_id=session.citizen_id,
            client_id=grant.client.client_id,
            scope=oauth_request.scope,
        )
        if not finish_interaction(interaction):
            return expired_journey_page()
        refused = AccessDeniedError(
            description="The citizen chose not to share their information with this service.",
            redirect_uri=grant.redirect_uri,
        )
        return error_response(refused, oauth_request)
    return render_template(
        "consent.html",
        form=form,
        client=grant.client,
        claims=released_claims(grant.client, oauth_request.scope, citizen_with_mobile(session)),
        identity_details=describe_details(details),
        offline_hours=offline_access_hours(grant.client),
        journey=interaction.handle,
    )


def citizen_with_mobile(session) -> Citizen:
    """The signed-in citizen, with the mobile number confirmed for text messages (if any) as
    userinfo reads it (mobile_number), for the consent page's list."""
    citizen = session.citizen
    phone = confirmed_mobile(citizen)
    citizen.mobile_number = phone.number if phone else None
    return citizen


def offline_access_hours(client: Client) -> int | None:
    """How long a department registered for refresh tokens may keep the citizen signed in
    without them (OIDC Core 11: offline access needs the citizen's consent), else None. Such a
    department gets refresh tokens whether or not it asks offline_access, so it is told always.
    """
    if not client.check_grant_type("refresh_token"):
        return None
    return max(1, current_settings().refresh_token_lifetime // 3600)


def record_consent(
    citizen: Citizen, client: Client, scope: str, details: list[str] | None = None
) -> None:
    """Remember what the citizen agreed to share with this department: the scopes, and the
    verified details (identity claims) listed on the page."""
    for attempt in range(2):
        consent = db.session.scalar(
            db.select(Consent).filter_by(citizen_id=citizen.id, client_id=client.client_id)
        )
        if consent is None:
            consent = Consent(
                citizen_id=citizen.id,
                client_id=client.client_id,
                scope=scope,
                identity_claims=list(details) if details else None,
            )
            db.session.add(consent)
        else:
            granted = scope_to_list(consent.scope) + scope_to_list(scope)
            consent.scope = " ".join(dict.fromkeys(granted))
            if details:
                agreed = list(consent.identity_claims or []) + list(details)
                consent.identity_claims = list(dict.fromkeys(agreed))
            consent.granted_at = utcnow()
        try:
            db.session.commit()
            break
        except IntegrityError:
            # A second tab or a double click inserted it first: update that row instead.
            db.session.rollback()
            if attempt:
                raise
    audit.record(
        "consent.given",
        citizen_id=citizen.id,
        client_id=client.client_id,
        scope=scope,
        identity_claims=list(details or []),
    )

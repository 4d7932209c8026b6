"""Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592): the API
through which departments register their services, beside the staff pages that do the same.

POST /register with an initial access token creates a registration; the response carries a
registration access token that reads (GET), replaces (PUT) and deletes (DELETE) it at
/register/<client_id>. Written with Flask rather than Authlib's registration endpoints:
those always return a client_secret (even to private_key_jwt and public clients), answer a
missing token with 403 access_denied instead of RFC 6750's 401, and refuse bad updates
without saying why.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, jsonify, request

from idp import audit
from idp.departments.metadata import ClientMetadataError
from idp.departments.services import (
    Registered,
    RegistrationError,
    create_registration,
    delete_registration,
    find_client_by_registration_token,
    find_initial_access_token,
    update_registration,
)
from idp.extensions import csrf
from idp.models import Client
from idp.models.client import find_client
from idp.oidc.failure_limits import limit_failures
from idp.settings import current_settings

bp = Blueprint("registration", __name__)
csrf.exempt(bp)

# RFC 7592 2.2: fields a client must not send when it replaces its registration.
SERVER_ASSIGNED = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


def _error(error: str, description: str, status: int = 400) -> Response:
    """An RFC 7591 3.2.2 error response."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _token_error(description: str | None) -> Response:
    """RFC 6750 3.1: 401 with a Bearer challenge (bare when no token was sent at all)."""
    if description is None:
        response = jsonify(
            {"error": "invalid_token", "error_description": "A bearer token is required."}
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="registration"'
    else:
        response = jsonify({"error": "invalid_token", "error_description": description})
        response.headers["WWW-Authenticate"] = 'Bearer realm="registration", error="invalid_token"'
    response.status_code = 401
    response.headers["Cache-Control"] = "no-store"
    return response


def _bearer_token() -> str | None:
    """The bearer token of the Authorization header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _json_body() -> dict[str, Any] | Response:
    """The request's JSON object, or an error response saying what is wrong with it."""
    if request.mimetype != "application/json":
        return _error("invalid_client_metadata", "Send the client metadata as application/json.")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        data = None  # nested deeper than any metadata could be
    if not isinstance(data, dict):
        return _error("invalid_client_metadata", "The request body must be a JSON object.")
    return data


def _authentication_failed(method: str, reason: str, client: Client | None = None) -> None:
    """A request at the registration endpoint without a valid bearer token (never the token)."""
    audit.record(
        "client.authentication_failed",
        "failure",
        reason=reason,
        client_id=client.client_id if client else None,
        endpoint="registration",
        method=method,
    )


def _refused(client: Client, reason: str, change: str) -> None:
    """A change to a registration refused (the client authenticated)."""
    audit.record(
        "client.registration_refused",
        "failure",
        reason=reason,
        client_id=client.client_id,
        change=change,
        via="api",
    )


def _metadata_error(exc: ClientMetadataError, client_id: str | None = None) -> Response:
    """A refused registration, recorded with the field at fault."""
    audit.record(
        "client.registration_refused",
        outcome="failure",
        reason=exc.error,
        client_id=client_id,
        change="update" if client_id else "register",
        via="api",
        field=exc.field,
    )
    return _error(exc.error, str(exc))


def client_information(
    client: Client, registered: Registered | None = None, registration_access_token: str = ""
) -> dict[str, Any]:
    """RFC 7591 3.2.1 / RFC 7592 3: the registration as the client should see it."""
    body: dict[str, Any] = dict(client.client_metadata)
    body["client_id"] = client.client_id
    body["client_id_issued_at"] = int(client.client_id_issued_at.timestamp())
    if registered is not None and registered.client_secret:
        body["client_secret"] = registered.client_secret
        body["client_secret_expires_at"] = 0
    body["registration_access_token"] = (
        registered.registration_access_token
        if registered is not None and registered.registration_access_token
        else registration_access_token
    )
    # Built from the issuer, not the request's Host, so every IdP instance gives the same URI.
    body["registration_client_uri"] = (
        f"{current_settings().issuer}/register/{quote(client.client_id, safe='')}"
    )
    return body


def _respond(body: dict[str, Any], status: int) -> Response:
    """JSON that no cache may keep (it holds credentials)."""
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/register")
@limit_failures("register")
def register() -> Response:
    """RFC 7591 3.1: register a new client with an initial access token."""
    value = _bearer_token()
    if value is None:
        _authentication_failed("initial_access_token", "no_token")
        return _token_error(None)
    token = find_initial_access_token(value)
    if token is None:
        _authentication_failed("initial_access_token", "invalid_token")
        return _token_error("The initial access token is not valid (unknown, used or expired).")
    data = _json_body()
    if isinstance(data, Response):
        return data
    try:
        registered = create_registration(
            data,
            department=token.department,
            approved=token.pre_approved,
            via="api",
            actor=f"initial access token {token.id}",
            initial_access_token=value,
        )
    except ClientMetadataError as exc:
        return _metadata_error(exc)
    except RegistrationError as exc:
        _authentication_failed("initial_access_token", "token_used_up")
        return _token_error(str(exc))
    return _respond(client_information(registered.client, registered), 201)


def _managed_client(client_id: str) -> Client | Response:
    """The client whose registration access token was presented, for this URL only."""
    value = _bearer_token()
    named = find_client(client_id)  # only a registered client_id goes into the record
    if value is None:
        _authentication_failed("registration_access_token", "no_token", named)
        return _token_error(None)
    client = find_client_by_registration_token(value)
    if client is None or client.client_id != client_id:
        # RFC 7592 2: a token for another client, or for none, is simply not valid here.
        reason = "invalid_token" if client is None else "another_clients_token"
        _authentication_failed("registration_access_token", reason, named)
        return _token_error("The registration access token is not valid for this client.")
    return client


@bp.route("/register/<client_id>", methods=["GET", "PUT", "DELETE"])
@limit_failures("register")
def configuration(client_id: str) -> Response:
    """RFC 7592: read, replace or delete a registration."""
    client = _managed_client(client_id)
    if isinstance(client, Response):
        return client
    token = _bearer_token() or ""
    if request.method == "GET":
        audit.record("client.registration_read", client_id=client.client_id, via="api")
        return _respond(client_information(client, registration_access_token=token), 200)
    if request.method == "DELETE":
        try:
            delete_registration(client, via="api")
        except RegistrationError as exc:
            _refused(client, "access_denied", "delete")
            return _error("access_denied", str(exc), 403)
        response = Response(status=204)
        response.headers["Cache-Control"] = "no-store"
        return response
    data = _json_body()
    if isinstance(data, Response):
        return data
    for name in SERVER_ASSIGNED:
        if name in data:
            _refused(client, "invalid_request", "update")
            return _error("invalid_request", f"{name} is assigned by the IdP and must not be sent.")
    if data.get("client_id") != client.client_id:
        _refused(client, "invalid_request", "update")
        return _error("invalid_request", "client_id is required and must be this client's id.")
    if "client_secret" in data and not client.check_client_secret(str(data["client_secret"])):
        # The secret sent is never recorded: only that it did not match.
        _refused(client, "wrong_secret", "update")
        return _error("invalid_request", "client_secret does not match the current secret.")
    metadata = {k: v for k, v in data.items() if k not in {"client_id", "client_secret"}}
    try:
        # RFC 7592 3: a new registration access token with every change; the old one ends.
        registered = update_registration(
            client, metadata, via="api", rotate_registration_token=True
        )
    except ClientMetadataError as exc:
        return _metadata_error(exc, client.client_id)
    except RegistrationError as exc:
        _refused(client, "access_denied", "update")
        return _error("access_denied", str(exc), 403)
    return _respond(client_information(client, registered, token), 200)

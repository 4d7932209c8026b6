"""RFC 7591 Dynamic Client Registration, and RFC 7592 management, for a service that registers
itself with the IdP when it starts.

Call sequence (relying_parties.council is the sample that registers this way):

    registered = register_dynamically(
        issuer,
        council.registration_metadata(base_url, client_name),
        initial_access_token,
        instance_path / "council-registration.json",
    )
    settings = council.settings_from_registration(
        registered, name=..., department=..., base_url=base_url, issuer=issuer, colour=...
    )
    app = council.create_app(settings)

register_dynamically() waits for the IdP to start listening, so it can run in a background
thread started at the same moment as the IdP. The store file (mode 0600) keeps the client
secret and registration access token between starts; neither is ever logged.
"""

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import requests

from relying_parties.files import write_owner_only
from relying_parties.settings import discovery_url

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_ATTEMPTS = 5
DEFAULT_RETRY_DELAY_SECONDS = 0.5
# Metadata the service compares at each start, updating the registration if it changed.
MANAGED_METADATA = (
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "client_name",
    "scope",
)
# RFC 7592 2: the answers that mean the registration no longer exists or is not ours.
REGISTRATION_GONE = frozenset({401, 403, 404})


class RegistrationError(Exception):
    """The service could not register with the IdP; the message says why, never with secrets."""

    def __init__(self, message: str, error: str) -> None:
        """Keep a short error code (the IdP's own, when it gave one) beside the message."""
        super().__init__(message)
        self.error = error


@dataclass(frozen=True)
class RegisteredClient:
    """What the IdP issued: the client's credentials, and how to manage its registration."""

    client_id: str
    client_secret: str = field(repr=False)
    registration_access_token: str = field(repr=False)
    registration_client_uri: str


@dataclass(frozen=True)
class _Connection:
    """How to talk to the IdP: per-request timeout, and retries while it is not listening."""

    timeout: float
    attempts: int
    retry_delay: float

    def send(
        self, method: str, url: str, bearer: str | None = None, body: Mapping | None = None
    ) -> requests.Response:
        """Send one request, retrying with back-off only if no connection could be made."""
        headers = {"Accept": "application/json"}
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        failure: requests.ConnectionError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return requests.request(
                    method,
                    url,
                    headers=headers,
                    json=body,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.ConnectionError as error:
                # Nothing reached the IdP, so even a POST is safe to send again.
                failure = error
                if attempt < self.attempts:
                    log.info("the IdP is not answering yet (attempt %d); retrying", attempt)
                    time.sleep(self.retry_delay * 2 ** (attempt - 1))
            except requests.RequestException as error:
                raise RegistrationError(f"{method} {url} failed: {error}", "unreachable") from error
        raise RegistrationError(
            f"could not reach the IdP at {url} after {self.attempts} attempts: {failure}",
            "unreachable",
        ) from failure


def register_dynamically(
    issuer: str,
    metadata: Mapping[str, Any],
    initial_access_token: str,
    store_path: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    attempts: int = DEFAULT_ATTEMPTS,
    retry_delay: float = DEFAULT_RETRY_DELAY_SECONDS,
) -> RegisteredClient:
    """Confirm (and update) the registration saved in store_path, or register afresh."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, not {attempts}")
    connection = _Connection(timeout=timeout, attempts=attempts, retry_delay=retry_delay)
    endpoint = registration_endpoint(issuer, connection)
    stored = load_registration(store_path, issuer)
    registered = None
    if stored is not None:
        registered = confirm_registration(stored, metadata, connection)
        if registered is None:
            log.warning("the IdP no longer knows client %s; registering again", stored.client_id)
    if registered is None:
        registered = create_registration(endpoint, metadata, initial_access_token, connection)
    save_registration(store_path, issuer, registered)
    return registered


def registration_endpoint(issuer: str, connection: _Connection) -> str:
    """The registration_endpoint from the IdP's discovery document, once its issuer checks."""
    url = discovery_url(issuer)
    response = connection.send("GET", url)
    if response.status_code != 200:
        raise RegistrationError(f"{url} answered HTTP {response.status_code}", "invalid_discovery")
    document = _json_object(response, url)
    # OIDC Discovery 4.3: the document must name the issuer we asked.
    if document.get("issuer") != issuer:
        raise RegistrationError(
            f"{url} names issuer {document.get('issuer')!r}, expected {issuer!r}",
            "invalid_discovery",
        )
    endpoint = document.get("registration_endpoint")
    if not _is_http_url(endpoint):
        raise RegistrationError(
            f"the IdP does not offer dynamic client registration: {url} has no "
            "registration_endpoint",
            "invalid_discovery",
        )
    return endpoint


def create_registration(
    endpoint: str, metadata: Mapping[str, Any], initial_access_token: str, connection: _Connection
) -> RegisteredClient:
    """RFC 7591 3: POST the metadata with the initial access token; expect 201 Created."""
    response = connection.send("POST", endpoint, bearer=initial_access_token, body=metadata)
    if response.status_code != 201:
        raise _refusal("registration", response, expected=201)
    answer = _json_object(response, endpoint)
    registered = _registered_client(answer)
    _check_auth_method(metadata, answer)
    log.info("registered with the IdP as client %s", registered.client_id)
    return registered


def confirm_registration(
    stored: RegisteredClient, metadata: Mapping[str, Any], connection: _Connection
) -> RegisteredClient | None:
    """RFC 7592 2.1 read, then 2.2 update if the metadata changed; None if it is gone."""
    response = connection.send(
        "GET", stored.registration_client_uri, bearer=stored.registration_access_token
    )
    if response.status_code in REGISTRATION_GONE:
        return None
    if response.status_code != 200:
        raise _refusal("reading the saved registration", response, expected=200)
    current = _json_object(response, stored.registration_client_uri)
    if current.get("client_id") != stored.client_id:
        raise RegistrationError(
            f"{stored.registration_client_uri} describes client {current.get('client_id')!r}, "
            f"not {stored.client_id!r}",
            "invalid_response",
        )
    registered = _with_rotated_credentials(stored, current)
    changed = [name for name in MANAGED_METADATA if _differs(name, metadata, current)]
    if changed:
        log.info("updating client %s at the IdP: %s changed", stored.client_id, ", ".join(changed))
        response = connection.send(
            "PUT",
            registered.registration_client_uri,
            bearer=registered.registration_access_token,
            body={**metadata, "client_id": registered.client_id},
        )
        if response.status_code != 200:
            raise _refusal("updating the registration", response, expected=200)
        current = _json_object(response, registered.registration_client_uri)
        registered = _with_rotated_credentials(registered, current)
    _check_auth_method(metadata, current)
    return registered


def load_registration(store_path: Path, issuer: str) -> RegisteredClient | None:
    """The registration saved at store_path for this issuer, if there is one."""
    if not store_path.exists():
        return None
    try:
        saved = json.loads(store_path.read_text(encoding="utf-8"))
        saved_issuer = saved.pop("issuer")
        registered = _registered_client(saved)
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RegistrationError):
        # Say nothing of what the file holds: it may be a secret.
        raise RegistrationError(
            f"{store_path} does not hold a saved registration; delete it to register again",
            "invalid_store",
        ) from None
    if saved_issuer != issuer:
        log.warning("%s holds a registration with another IdP; registering again", store_path)
        return None
    return registered


def save_registration(store_path: Path, issuer: str, registered: RegisteredClient) -> None:
    """Keep the registration for the next start, readable by this user only."""
    saved = {"issuer": issuer, **asdict(registered)}
    write_owner_only(store_path, json.dumps(saved, indent=2).encode("utf-8"), replace=True)


def _registered_client(answer: Mapping[str, Any]) -> RegisteredClient:
    """The credentials in a registration response or a saved registration, all present."""
    names = ("client_id", "client_secret", "registration_access_token", "registration_client_uri")
    missing = [name for name in names if not isinstance(answer.get(name), str) or not answer[name]]
    if missing:
        raise RegistrationError(
            f"the IdP's registration response lacks {', '.join(missing)}", "invalid_response"
        )
    registered = RegisteredClient(**{name: answer[name] for name in names})
    _check_client_uri(registered.registration_client_uri)
    return registered


def _with_rotated_credentials(
    registered: RegisteredClient, answer: Mapping[str, Any]
) -> RegisteredClient:
    """RFC 7592 2.1: a new client secret or access token in a response replaces the old one."""
    names = ("client_secret", "registration_access_token", "registration_client_uri")
    rotated = {name: answer[name] for name in names if isinstance(answer.get(name), str)}
    updated = replace(registered, **{name: value for name, value in rotated.items() if value})
    _check_client_uri(updated.registration_client_uri)
    return updated


def _check_client_uri(uri: str) -> None:
    """The registration access token is only ever sent to an http(s) URL."""
    if not _is_http_url(uri):
        raise RegistrationError(
            f"the IdP gave registration_client_uri {uri!r}, which is not an http(s) URL",
            "invalid_response",
        )


def _check_auth_method(wanted: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
    """The IdP must not have registered another way of authenticating than the one asked."""
    asked = wanted.get("token_endpoint_auth_method")
    given = answer.get("token_endpoint_auth_method", asked)
    if given != asked:
        raise RegistrationError(
            f"the IdP registered token_endpoint_auth_method {given!r}, not {asked!r}",
            "invalid_response",
        )


def _differs(name: str, wanted: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether the IdP holds a different value for name than the service now wants."""
    if name not in wanted:
        return False
    return _comparable(name, wanted[name]) != _comparable(name, current.get(name))


def _comparable(name: str, value: Any) -> Any:
    """Lists of URIs and the words of a scope compare regardless of order."""
    if name == "scope" and isinstance(value, str):
        return sorted(value.split())
    if isinstance(value, list | tuple):
        return sorted(map(str, value))
    return value


def _refusal(action: str, response: requests.Response, expected: int) -> RegistrationError:
    """An error naming what the IdP said: RFC 7591 3.2.2 error and error_description."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        description = answer.get("error_description")
        detail = f"{answer['error']}: {description}" if description else answer["error"]
        return RegistrationError(
            f"the IdP refused {action} (HTTP {response.status_code}): {detail}", answer["error"]
        )
    return RegistrationError(
        f"{action} failed: the IdP answered HTTP {response.status_code}, expected {expected}",
        "invalid_response",
    )


def _json_object(response: requests.Response, url: str) -> dict:
    """The response's JSON object, or an error naming the URL that sent something else."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise RegistrationError(f"{url} did not answer with a JSON object", "invalid_response")
    return answer


def _is_http_url(value: object) -> bool:
    """Whether value is an http(s) URL."""
    return isinstance(value, str) and value.startswith(("https://", "http://"))

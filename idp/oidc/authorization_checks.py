"""The IdP's own checks on every authorization request, in the order they run (CHECKS).

Authlib first validates what RFC 6749 4.1.1 defines (client_id, redirect_uri, response_type);
then each check below runs in turn, and the first to refuse
answers the request. A refusal is an OAuth error redirected to the department with its
state and iss (RFC 6749 4.1.2.1), since the client and redirect URI are known by then.
The order is the refusal a department sees when a request has several faults: keep it.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import (
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
    scope_to_list,
)

from idp.accounts.levels import InvalidVectorOfTrust, parse_vtr
from idp.models import Client
from idp.oidc.identity_claims import InvalidClaimsRequest, check_identity_request
from idp.oidc.pkce import PKCE

PROMPT_VALUES = {"none", "login", "consent", "select_account"}
MAX_NONCE_LENGTH = 512
MAX_STATE_LENGTH = 2048


class RequestNotSupportedError(InvalidRequestError):
    """OIDC Core 3.1.2.6: request objects are not supported."""

    error = "request_not_supported"
    description = "Request objects are not supported."


class RequestUriNotSupportedError(InvalidRequestError):
    """OIDC Core 3.1.2.6: request_uri is not supported."""

    error = "request_uri_not_supported"
    description = "request_uri is not supported."


def check_pkce(grant) -> None:
    """RFC 7636: an S256 code_challenge, or none where the client may do without (pkce.py)."""
    PKCE().validate_code_challenge(grant, redirect_uri=None)  # the redirect URI plays no part


def check_no_nul_characters(grant) -> None:
    """Nothing legitimate holds NUL, and PostgreSQL text cannot store it."""
    values = grant.request.payload.datalist.values()
    if any("\x00" in value for repeated in values for value in repeated):
        raise InvalidRequestError("Parameters must not contain NUL characters.")


def check_client_status(grant) -> None:
    """Only an active service may sign citizens in (pending, suspended or disabled may not)."""
    client: Client = grant.request.client
    if not client.is_active:
        raise UnauthorizedClientError("This service is not active on the IdP.")


def check_openid_scope(grant) -> None:
    """OIDC Core 3.1.2.1: the scope must contain openid; this IdP serves OpenID only."""
    if "openid" not in (scope_to_list(grant.request.payload.data.get("scope")) or []):
        raise InvalidScopeError("The scope must contain openid.")


def check_request_object(grant) -> None:
    """OIDC Core 6: request objects are not supported here, and say so."""
    data = grant.request.payload.data
    if "request" in data:
        raise RequestNotSupportedError()
    if "request_uri" in data:
        raise RequestUriNotSupportedError()


def check_response_mode(grant) -> None:
    """Only the query response mode (OAuth 2.0 Multiple Response Type Encoding Practices)."""
    response_mode = grant.request.payload.data.get("response_mode")
    if response_mode not in (None, "query"):
        raise InvalidRequestError("Only response_mode=query is supported.")


def check_prompt(grant) -> None:
    """OIDC Core 3.1.2.1: prompt is a space-separated list of known values."""
    prompts = (grant.request.payload.data.get("prompt") or "").split()
    unknown = [p for p in prompts if p not in PROMPT_VALUES]
    if unknown:
        raise InvalidRequestError("Unsupported prompt value.")


def check_max_age(grant) -> None:
    """OIDC Core 3.1.2.1: max_age is a whole number of seconds."""
    max_age = grant.request.payload.data.get("max_age")
    # ASCII only: isdigit() alone accepts digits such as superscript two, which int() refuses.
    if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 9):
        raise InvalidRequestError("max_age must be a whole number of seconds.")


def check_vtr(grant) -> None:
    """The vector of trust asked for (GOV.UK One Login's vtr) is one this IdP knows."""
    vtr = grant.request.payload.data.get("vtr")
    if vtr is not None:
        try:
            parse_vtr(vtr)
        except InvalidVectorOfTrust as exc:
            raise InvalidRequestError(str(exc).replace('"', "'")) from None


def check_identity_claims(grant) -> None:
    """The claims parameter (OIDC Core 5.5) is well formed, names only identity claims the
    department is registered for, and comes with an identity confidence in vtr; P1 or P2 is
    asked only by a department registered for identity claims (idp/oidc/identity_claims.py)."""
    try:
        check_identity_request(grant.request.client, grant.request.payload.data)
    except InvalidClaimsRequest as exc:
        raise InvalidRequestError(str(exc).replace('"', "'").replace("\\", "/")) from None


def check_nonce_length(grant) -> None:
    """A bounded nonce: it is stored with the code and returned in the ID token."""
    if len(grant.request.payload.data.get("nonce") or "") > MAX_NONCE_LENGTH:
        raise InvalidRequestError("nonce is too long (512 characters at most).")


def check_state_length(grant) -> None:
    """A bounded state: it is stored with the journey and returned in the redirect."""
    if len(grant.request.payload.data.get("state") or "") > MAX_STATE_LENGTH:
        raise InvalidRequestError("state is too long (2048 characters at most).")


CHECKS = [
    check_pkce,
    check_no_nul_characters,
    check_client_status,
    check_openid_scope,
    check_request_object,
    check_response_mode,
    check_prompt,
    check_max_age,
    check_vtr,
    check_identity_claims,
    check_nonce_length,
    check_state_length,
]


class AuthorizationPolicy:
    """The checks above as one hook of the code grant, run in the order of CHECKS."""

    def __call__(self, grant):
        """Register the checks on the grant."""
        grant.register_hook("after_validate_authorization_request_payload", self.validate_request)

    def validate_request(self, grant, redirect_uri):
        """Run every check in order; the first refusal stops the request."""
        for check in CHECKS:
            check(grant)

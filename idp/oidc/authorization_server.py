"""The Authlib authorization server class: how requests are built and errors answered.

Which grants, extensions and endpoints it holds is idp/oidc/server.py's wiring.
"""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    OAuth2Error,
    OAuth2Request,
    UnsupportedResponseTypeError,
)
from flask import current_app, g

from idp.oidc.redirect_uri import trusted_redirect_uri


class IdPAuthorizationServer(AuthorizationServer):
    """Authlib's Flask server, taking stored authorization requests and answering errors well."""

    def authenticate_client(self, request, methods, endpoint="token"):
        """As Authlib; a client that proved who it is (any method but none) is kept for the
        failure limits (idp/oidc/failure_limits.py), which count only a client's own failures
        against it. A public client only names itself, which anyone can do, so its requests
        are counted against the IP address alone."""
        client = super().authenticate_client(request, methods, endpoint)
        if not client.is_public:
            g.authenticated_client_id = client.client_id
        return client

    def create_oauth2_request(self, request):
        """Use an already-built request (a resumed journey) as it is."""
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def validate_requested_scope(self, scope):
        """Any scope may be asked for: OIDC Core 3.1.2.1 says scope values that are not
        understood are ignored, so the grant keeps only those the client may have
        (Client.get_allowed_scope) instead of refusing the request with invalid_scope."""

    def get_authorization_grant(self, request):
        """Only the code flow. Authlib would echo any other response_type in the error's
        description, and fail on characters RFC 6749 does not allow there."""
        response_type = request.payload.response_type
        if response_type != "code":
            raise UnsupportedResponseTypeError(
                response_type,
                "Only response_type=code is supported.",
                redirect_uri=trusted_redirect_uri(request.payload),
            )
        return super().get_authorization_grant(request)

    def get_consent_grant(self, request=None, end_user=None):
        """As Authlib, but errors found before the grant's own checks (a repeated parameter)
        are redirected too once the client and its redirect URI are known (RFC 6749 4.1.2.1)."""
        request = self.create_oauth2_request(request)
        try:
            return super().get_consent_grant(request, end_user)
        except OAuth2Error as error:
            if error.redirect_uri is None and not isinstance(error, InvalidClientError):
                error.redirect_uri = trusted_redirect_uri(request.payload)
            raise

    def handle_error_response(self, request, error):
        """invalid_client is always 401 with WWW-Authenticate (RFC 6749 5.2). The error and
        request are kept for the audit record (the endpoints record refusals)."""
        g.oauth_error, g.oauth_request = error, request
        if isinstance(error, InvalidClientError):
            error.status_code = 401
        return super().handle_error_response(request, error)


def authorization_server() -> IdPAuthorizationServer:
    """The authorization server of the current app."""
    return current_app.extensions["authorization_server"]

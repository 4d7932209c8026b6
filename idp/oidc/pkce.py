"""PKCE (RFC 7636, RFC 9700 2.1.1): S256 only; required unless a confidential client
registered it optional, and then the response is bound with a nonce instead.

At the authorization request the challenge is checked by check_pkce, in its place in
idp/oidc/authorization_checks.py; at the token request Authlib checks the code_verifier
against it (the hook this extension registers).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from idp.models import Client


class PKCE(CodeChallenge):
    """PKCE with S256 only; required unless a confidential client registered it optional."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def __call__(self, grant):
        """Register the token request's check only: the authorization request's is
        check_pkce, run in order with the IdP's other checks."""
        grant.register_hook("after_validate_token_request", self.validate_code_verifier)

    def validate_code_challenge(self, grant, redirect_uri):
        """Refuse plain, a challenge without a method, and a missing challenge where required."""
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        method = data.get("code_challenge_method")
        if challenge and not method:
            raise InvalidRequestError("code_challenge_method is required; only S256 is supported.")
        if method == "plain":
            raise InvalidRequestError("code_challenge_method plain is not allowed; use S256.")
        if method and method not in self.SUPPORTED_CODE_CHALLENGE_METHOD:
            raise InvalidRequestError("Unsupported code_challenge_method; use S256.")
        if not challenge:
            if method:
                raise InvalidRequestError("Missing code_challenge.")
            client: Client = grant.request.client
            if client.require_pkce:
                raise InvalidRequestError(
                    "PKCE is required: send code_challenge with code_challenge_method=S256."
                )
            if not data.get("nonce"):
                # A client registered without PKCE must bind the response with a nonce.
                raise InvalidRequestError("Missing nonce: required when PKCE is not used.")
        super().validate_code_challenge(grant, redirect_uri)

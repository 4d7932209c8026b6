"""Why a sign-in did not finish, in words a citizen can act on."""

from dataclasses import dataclass

# RFC 6749 4.1.2.1 and OIDC Core 3.1.2.6 error codes, explained for the citizen.
AUTHORIZATION_ERROR_EXPLANATIONS = {
    "access_denied": "You chose not to sign in, or did not agree to share your details.",
    "login_required": "You need to sign in again.",
    "interaction_required": "You need to go back to the sign-in service to continue.",
    "consent_required": "You need to agree to share your details with this service.",
    "account_selection_required": "You need to choose which account to use.",
    "invalid_request": "The sign-in request from this service was not valid.",
    "invalid_scope": "This service asked for details it is not allowed to see.",
    "unauthorized_client": "This service is not allowed to sign people in this way.",
    "unsupported_response_type": "This service asked to sign you in in a way that is not "
    "supported.",
    "server_error": "Something went wrong with the sign-in service.",
    "temporarily_unavailable": "The sign-in service is busy. Try again in a few minutes.",
}


@dataclass
class SignInError(Exception):
    """A sign-in that could not be completed, shown to the citizen as a friendly page."""

    title: str
    error: str
    description: str | None = None
    status: int = 400

    @property
    def explanation(self) -> str:
        """Plain-English meaning of the error code, if it is a standard one."""
        return AUTHORIZATION_ERROR_EXPLANATIONS.get(self.error, "")


class IdentityProviderUnavailable(Exception):
    """The IdP could not be reached or did not describe itself properly."""

    def __init__(self, reason: str) -> None:
        """Keep the reason for the page and the log."""
        super().__init__(reason)
        self.reason = reason

"""What makes one department service different from another."""

import re
from dataclasses import dataclass

TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "private_key_jwt")
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


@dataclass(frozen=True)
class DepartmentSettings:
    """One department service's identity, client registration and look."""

    name: str
    department: str
    client_id: str
    base_url: str
    issuer: str
    token_endpoint_auth_method: str
    client_secret: str | None = None
    private_key_path: str | None = None
    scope: str = "openid email phone profile"
    colour: str = "#1d70b8"
    instance_path: str | None = None
    secret_key: str | None = None

    def __post_init__(self) -> None:
        """Reject settings the service could not sign anyone in with."""
        method = self.token_endpoint_auth_method
        if method not in TOKEN_ENDPOINT_AUTH_METHODS:
            raise ValueError(
                f"{self.client_id}: token_endpoint_auth_method must be one of "
                f"{', '.join(TOKEN_ENDPOINT_AUTH_METHODS)}, not {method!r}"
            )
        if method == "client_secret_basic" and not self.client_secret:
            raise ValueError(f"{self.client_id}: client_secret_basic needs a client_secret")
        if method == "private_key_jwt" and not self.private_key_path:
            raise ValueError(f"{self.client_id}: private_key_jwt needs a private_key_path")
        for field in ("base_url", "issuer"):
            if not getattr(self, field).startswith(("https://", "http://")):
                raise ValueError(f"{self.client_id}: {field} must be an http(s) URL")
        if "openid" not in self.scope.split():
            raise ValueError(f"{self.client_id}: scope must include 'openid'")
        if not _COLOUR.fullmatch(self.colour):
            raise ValueError(
                f"{self.client_id}: colour must look like #1d70b8, not {self.colour!r}"
            )

    @property
    def uses_private_key_jwt(self) -> bool:
        """Whether the service signs its token requests with its own private key."""
        method = self.token_endpoint_auth_method
        return method == "private_key_jwt"

    @property
    def redirect_uri(self) -> str:
        """The callback URL to register with the IdP."""
        return f"{self.base_url.rstrip('/')}/auth/callback"

    @property
    def jwks_uri(self) -> str:
        """Where the IdP fetches this service's public key (private_key_jwt only)."""
        return f"{self.base_url.rstrip('/')}/jwks.json"

    @property
    def server_metadata_url(self) -> str:
        """The IdP's OpenID Connect discovery document."""
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"

"""What makes one department service different from another."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# RFC 7591 2 token_endpoint_auth_method values this service can use.
TOKEN_ENDPOINT_AUTH_METHODS = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
)
SECRET_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
# Authorization request parameters the service sets itself, which settings may not replace.
RESERVED_AUTHORIZE_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "scope",
        "prompt",
        "code_verifier",
    }
)
CALLBACK_PATH = "/auth/callback"
BACKCHANNEL_LOGOUT_PATH = "/backchannel-logout"
# The algorithms the IdP signs ID tokens (and so logout tokens) with; ES256 is its default.
ID_TOKEN_ALGS = ("ES256", "RS256")
DEFAULT_ID_TOKEN_ALG = "ES256"
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


def service_url(base_url: str, path: str) -> str:
    """An absolute URL on the service, whether or not base_url ends in a slash."""
    return f"{base_url.rstrip('/')}{path}"


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
    # Extra authorization request parameters, e.g. {"vtr": '["Cl.Cm"]'}.
    authorize_params: Mapping[str, str] = field(default_factory=dict, hash=False)
    # The vector of trust (ID token vot claim) a sign-in must have, or None to accept any.
    required_vot: str | None = None
    # The identity confidence (GOV.UK One Login's "P2") the service needs, checked in the core
    # identity JWT's vot; None for a service that needs no proved identity. The service asks for
    # it with vtr and claims in authorize_params.
    identity_level: str | None = None
    # The id_token_signed_response_alg the service registered: logout tokens must use it.
    # None leaves it to the sample (ES256, the IdP's default, unless the sample says otherwise).
    id_token_signed_response_alg: str | None = None
    # Registered backchannel_logout_session_required: logout tokens must then carry a sid.
    backchannel_logout_session_required: bool = True

    def __post_init__(self) -> None:
        """Reject settings the service could not sign anyone in with."""
        self._check_client_authentication()
        for name in ("base_url", "issuer"):
            if not getattr(self, name).startswith(("https://", "http://")):
                raise ValueError(f"{self.client_id}: {name} must be an http(s) URL")
        if "openid" not in self.scope.split():
            raise ValueError(f"{self.client_id}: scope must include 'openid'")
        if not _COLOUR.fullmatch(self.colour):
            raise ValueError(
                f"{self.client_id}: colour must look like #1d70b8, not {self.colour!r}"
            )
        self._check_authorize_params()
        alg = self.id_token_signed_response_alg
        if alg is not None and alg not in ID_TOKEN_ALGS:
            raise ValueError(
                f"{self.client_id}: id_token_signed_response_alg must be one of "
                f"{', '.join(ID_TOKEN_ALGS)}, not {alg!r}"
            )
        if not isinstance(self.backchannel_logout_session_required, bool):
            raise ValueError(
                f"{self.client_id}: backchannel_logout_session_required must be true or false"
            )
        if self.required_vot is not None and (
            not isinstance(self.required_vot, str) or not self.required_vot.strip()
        ):
            raise ValueError(
                f"{self.client_id}: required_vot must be a vector of trust such as 'Cl.Cm', "
                f"not {self.required_vot!r}"
            )

        if self.identity_level is not None and self.identity_level not in ("P1", "P2"):
            raise ValueError(
                f"{self.client_id}: identity_level must be P1 or P2, not {self.identity_level!r}"
            )

    def _check_client_authentication(self) -> None:
        """The credential the token endpoint auth method needs, and no other."""
        method = self.token_endpoint_auth_method
        if method not in TOKEN_ENDPOINT_AUTH_METHODS:
            raise ValueError(
                f"{self.client_id}: token_endpoint_auth_method must be one of "
                f"{', '.join(TOKEN_ENDPOINT_AUTH_METHODS)}, not {method!r}"
            )
        if method in SECRET_AUTH_METHODS and not self.client_secret:
            raise ValueError(f"{self.client_id}: {method} needs a client_secret")
        if method == "private_key_jwt" and not self.private_key_path:
            raise ValueError(f"{self.client_id}: private_key_jwt needs a private_key_path")
        if method == "none" and (self.client_secret or self.private_key_path):
            raise ValueError(
                f"{self.client_id}: a public client (token_endpoint_auth_method 'none') "
                "must have neither a client_secret nor a private_key_path"
            )

    def _check_authorize_params(self) -> None:
        """Extra authorization parameters are strings that leave the protocol's own alone."""
        params = self.authorize_params
        if not isinstance(params, Mapping):
            raise ValueError(f"{self.client_id}: authorize_params must be a mapping")
        for name, value in params.items():
            if not isinstance(name, str) or not name or not isinstance(value, str):
                raise ValueError(
                    f"{self.client_id}: authorize_params must map names to text, "
                    f"not {name!r}: {value!r}"
                )
            if name in RESERVED_AUTHORIZE_PARAMS or name.startswith("code_challenge"):
                raise ValueError(
                    f"{self.client_id}: authorize_params may not set {name!r}; "
                    "the service sets it itself"
                )
        # A read-only copy, so that the frozen settings cannot change under the service.
        object.__setattr__(self, "authorize_params", MappingProxyType(dict(params)))

    @property
    def uses_private_key_jwt(self) -> bool:
        """Whether the service signs its token requests with its own private key."""
        return self.token_endpoint_auth_method == "private_key_jwt"

    @property
    def redirect_uri(self) -> str:
        """The callback URL to register with the IdP."""
        return service_url(self.base_url, CALLBACK_PATH)

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where the IdP may send the citizen after signing out: the start page."""
        return service_url(self.base_url, "/")

    @property
    def backchannel_logout_uri(self) -> str:
        """Where the IdP POSTs a logout token when a citizen's single sign-on session ends."""
        return service_url(self.base_url, BACKCHANNEL_LOGOUT_PATH)

    @property
    def logout_token_alg(self) -> str:
        """The one algorithm a logout token may be signed with: the registered ID token one."""
        return self.id_token_signed_response_alg or DEFAULT_ID_TOKEN_ALG

    @property
    def jwks_uri(self) -> str:
        """Where the IdP can fetch this service's public key (private_key_jwt only)."""
        return service_url(self.base_url, "/jwks.json")

    @property
    def server_metadata_url(self) -> str:
        """The IdP's OpenID Connect discovery document."""
        return discovery_url(self.issuer)


def discovery_url(issuer: str) -> str:
    """OIDC Discovery 4: the issuer's openid-configuration document."""
    return service_url(issuer, "/.well-known/openid-configuration")

"""A local council's sample council tax service, which registers itself with the IdP.

Unlike the other samples it has no client_id until it starts: it registers through the IdP's
RFC 7591 API with an initial access token, then builds its settings from the result:

    registered = register_dynamically(
        issuer, registration_metadata(base_url, client_name), initial_access_token, store_path
    )
    app = create_app(
        settings_from_registration(
            registered, name=..., department=..., base_url=base_url, issuer=issuer, colour=...
        )
    )

See relying_parties.registration for what register_dynamically() does on each start.
"""

from typing import Any

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app
from relying_parties.registration import RegisteredClient
from relying_parties.settings import BACKCHANNEL_LOGOUT_PATH, CALLBACK_PATH, service_url

TOKEN_ENDPOINT_AUTH_METHOD = "client_secret_post"
SCOPE = "openid email"
ID_TOKEN_SIGNED_RESPONSE_ALG = "ES256"


def registration_metadata(base_url: str, client_name: str) -> dict[str, Any]:
    """The RFC 7591 client metadata the council registers with."""
    return {
        "redirect_uris": [service_url(base_url, CALLBACK_PATH)],
        "post_logout_redirect_uris": [service_url(base_url, "/")],
        # OIDC Back-Channel Logout: the IdP tells the service when a citizen's session ends.
        "backchannel_logout_uri": service_url(base_url, BACKCHANNEL_LOGOUT_PATH),
        "backchannel_logout_session_required": True,
        "client_name": client_name,
        "token_endpoint_auth_method": TOKEN_ENDPOINT_AUTH_METHOD,
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": SCOPE,
        "subject_type": "pairwise",
        "id_token_signed_response_alg": ID_TOKEN_SIGNED_RESPONSE_ALG,
    }


def settings_from_registration(registered: RegisteredClient, **values: Any) -> DepartmentSettings:
    """Settings from values (name, department, base_url, issuer, ...) and the registration."""
    return DepartmentSettings(
        client_id=registered.client_id,
        client_secret=registered.client_secret,
        token_endpoint_auth_method=TOKEN_ENDPOINT_AUTH_METHOD,
        scope=SCOPE,
        id_token_signed_response_alg=ID_TOKEN_SIGNED_RESPONSE_ALG,
        backchannel_logout_session_required=True,
        **values,
    )


def create_app(settings: DepartmentSettings) -> Flask:
    """The council tax service."""
    return create_department_app(settings, __name__)

"""OpenID Provider metadata (OIDC Discovery 1.0 section 3): exactly what is supported."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.http import generate_etag

from idp.accounts.identity.vocabulary import IDENTITY_CLAIMS
from idp.accounts.levels import MEDIUM, OFFERED_IDENTITY_LEVELS, VECTORS
from idp.oidc.claims import SCOPE_CLAIMS, SCOPES_SUPPORTED, SUBJECT_TYPES
from idp.oidc.client_auth import ASSERTION_ALGORITHMS, TOKEN_ENDPOINT_AUTH_METHODS
from idp.oidc.grants import GRANT_TYPES
from idp.oidc.keys import SUPPORTED_ALGS
from idp.oidc.revocation import AUTHENTICATED_METHODS
from idp.settings import current_settings

bp = Blueprint("discovery", __name__)

# Departments may cache the metadata this long: it changes only with a new IdP release
# (keys rotate in the JWKS, not here); conditional GETs (ETag) keep refetches cheap.
DISCOVERY_MAX_AGE = 3600


def provider_metadata() -> dict[str, Any]:
    """The discovery document."""
    settings = current_settings()
    issuer = settings.issuer
    claims: list[str] = [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "sid",
        "amr",
        "acr",
        "vot",
        "vtm",
    ]
    for names in SCOPE_CLAIMS.values():
        claims.extend(n for n in names if n not in claims)
    claims.extend(IDENTITY_CLAIMS)
    identity_vectors = [f"{MEDIUM}.{level}" for level in OFFERED_IDENTITY_LEVELS]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "registration_endpoint": f"{issuer}/register",
        "end_session_endpoint": f"{issuer}/logout",
        # Back-Channel Logout 1.0: logout tokens carry sid as well as sub.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint_auth_methods_supported": AUTHENTICATED_METHODS,
        "introspection_endpoint_auth_methods_supported": AUTHENTICATED_METHODS,
        "jwks_uri": f"{issuer}/jwks.json",
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": list(GRANT_TYPES),
        "subject_types_supported": list(SUBJECT_TYPES),
        "id_token_signing_alg_values_supported": list(SUPPORTED_ALGS),
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        # OIDC Core 5.5, for the identity claims (userinfo member), as GOV.UK One Login.
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent"],
        # Levels of assurance: vectors of trust (GOV.UK One Login), also accepted as acr_values.
        "vtr_values_supported": [*VECTORS, *identity_vectors],
        # What the vot values mean (the vtm of ID tokens and coreIdentityJWTs), as One Login.
        "trustmarks": f"{issuer}/trustmark",
        "acr_values_supported": list(VECTORS),
        "ui_locales_supported": list(settings.ui_locales_supported),
        "claim_types_supported": ["normal"],
    }


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """Discovery, cacheable; the document depends on the settings only, so each process
    serialises and hashes it once."""
    cached = current_app.extensions.get("idp_discovery")
    if cached is None:
        body = jsonify(provider_metadata()).get_data()
        cached = current_app.extensions["idp_discovery"] = (body, generate_etag(body))
    body, etag = cached
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={DISCOVERY_MAX_AGE}"
    response.set_etag(etag)
    return response.make_conditional(request)


@bp.after_app_request
def never_cache_errors(response: Response) -> Response:
    """Errors under /.well-known/ (405, 404) are never stored by caches: the app leaves caching
    on these paths to the views, and 404 and 405 are heuristically cacheable (RFC 9110 15.1)."""
    if request.path.startswith("/.well-known/") and response.status_code >= 400:
        response.headers["Cache-Control"] = "no-store"
    return response

"""The authorization server's wiring: which grant, extension, client authentication method
and endpoint Authlib runs, each from its own module.

Authlib does the protocol; the IdP fills its hooks:
  grants/authorization_code.py  the code grant (RFC 6749 4.1)
  grants/refresh_token.py       the refresh token grant (RFC 6749 6), rotating
  pkce.py                       PKCE, S256 only (RFC 7636)
  id_token.py                   the ID token (OIDC Core 2)
  authorization_checks.py       the IdP's own checks on an authorization request, in order
  tokens.py                     storing codes and tokens by their hashes, revoking them
  client_auth.py                client authentication (RFC 6749 2.3.1, RFC 7523)
  issuer_identification.py      iss in authorization responses (RFC 9207)
  revocation.py                 revocation (RFC 7009) and introspection (RFC 7662)
  authorization_server.py       the server class itself: requests and error responses
"""

from __future__ import annotations

from flask import Flask

from idp.models.client import registered_client
from idp.oidc.authorization_checks import AuthorizationPolicy
from idp.oidc.authorization_server import IdPAuthorizationServer
from idp.oidc.client_auth import (
    ClientAuthentication,
    PrivateKeyJWT,
    authenticate_client_secret_basic,
    authenticate_client_secret_post,
)
from idp.oidc.grants.authorization_code import AuthorizationCodeGrant
from idp.oidc.grants.refresh_token import RefreshTokenGrant
from idp.oidc.id_token import OpenIDCode, OpenIDRefresh
from idp.oidc.issuer_identification import Issuer
from idp.oidc.pkce import PKCE
from idp.oidc.revocation import IntrospectionEndpoint, RevocationEndpoint
from idp.oidc.tokens import save_token
from idp.security.secrets import new_token


def _random_token(*_args, **_kwargs) -> str:
    return new_token(32)


def create_authorization_server(app: Flask) -> IdPAuthorizationServer:
    """A server for this app: the code grant, client authentication and the iss parameter."""
    settings = app.config["IDP_SETTINGS"]
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {
        "authorization_code": settings.access_token_lifetime,
        "refresh_token": settings.access_token_lifetime,
    }
    # Opaque tokens of 256 random bits, URL-safe (43 characters), one read of the system's
    # random source each. Refresh tokens go only to departments registered for the
    # refresh_token grant (Authlib asks the grant before it calls the generator).
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = _random_token
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = _random_token
    server = IdPAuthorizationServer(app, query_client=registered_client, save_token=save_token)
    server.register_grant(AuthorizationCodeGrant, [PKCE(), OpenIDCode(), AuthorizationPolicy()])
    server.register_grant(RefreshTokenGrant, [OpenIDRefresh()])
    # Method selection and refusals are client_auth.py's (either secret method for a secret).
    server._client_auth = ClientAuthentication(registered_client)
    server.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    server.register_client_auth_method("client_secret_post", authenticate_client_secret_post)
    server.register_client_auth_method(
        "private_key_jwt", PrivateKeyJWT(settings.issuer, settings.issuer + "/token")
    )
    server.issuer_parameter = Issuer()
    server.register_extension(server.issuer_parameter)
    server.register_endpoint(RevocationEndpoint)
    server.register_endpoint(IntrospectionEndpoint)
    app.extensions["authorization_server"] = server
    return server

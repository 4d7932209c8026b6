"""pyoidc (the `oic` package), its documented relying-party flow: provider_config from the
issuer, static client registration info, the authorization request with state and nonce,
parse_response of the callback, do_access_token_request (pyoidc verifies the ID token: signature
from the JWKS, iss, aud, nonce and at_hash), do_user_info_request with its default method (POST,
the token in the form body), refresh, and RP-initiated logout built by pyoidc from the ID token.

pyoidc sends no PKCE, so the department registers "require_pkce": false (with a nonce, which
pyoidc always sends). pyoidc has no call for token revocation."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest
from oic import rndstr
from oic.oic import Client
from oic.oic.message import AuthorizationResponse, OpenIDSchema, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.interop.journey import query, sign_in_at_the_idp, sign_out_at_the_idp

CALLBACK = "https://fishing.example.gov.uk/oidc/callback"
SIGNED_OUT = "https://fishing.example.gov.uk/signed-out"


@pytest.fixture
def department(idp, make_client) -> Client:
    """The department's pyoidc client: the IdP's configuration and its registration."""
    registered = make_client(
        "pyoidc-fishing",
        redirect_uri=CALLBACK,
        scope="openid email profile",
        grant_types=["authorization_code", "refresh_token"],
        post_logout_redirect_uris=[SIGNED_OUT],
        require_pkce=False,
    )
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(idp.issuer)
    client.store_registration_info(
        RegistrationResponse(
            client_id=registered.client_id,
            client_secret=registered.client_secret,
            redirect_uris=[CALLBACK],
        )
    )
    return client


def test_pyoidc_whole_journey(idp, citizen, browser, department):
    client = department
    state, nonce = rndstr(), rndstr()
    request = client.construct_AuthorizationRequest(
        request_args={
            "client_id": client.client_id,
            "response_type": "code",
            "scope": ["openid", "email", "offline_access"],
            "nonce": nonce,
            "redirect_uri": CALLBACK,
            "state": state,
        }
    )
    callback_url = sign_in_at_the_idp(
        browser, request.request(client.authorization_endpoint), citizen
    )

    response = client.parse_response(
        AuthorizationResponse, info=urlsplit(callback_url).query, sformat="urlencoded"
    )
    assert response["state"] == state
    tokens = client.do_access_token_request(
        state=state,
        request_args={"code": response["code"]},
        authn_method="client_secret_basic",
    )
    assert "error" not in tokens, tokens.to_dict()
    id_token = tokens["id_token"]  # verified by pyoidc, at_hash included
    assert id_token["iss"] == idp.issuer
    assert id_token["nonce"] == nonce
    assert id_token["vot"] == "Cl.Cm"
    assert tokens["refresh_token"]

    # pyoidc's default UserInfo call: POST with access_token in the form body.
    userinfo = client.do_user_info_request(state=state)
    assert isinstance(userinfo, OpenIDSchema), userinfo.to_dict()
    assert userinfo["sub"] == id_token["sub"]
    assert userinfo["email"] == citizen["email"]

    refreshed = client.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    assert "error" not in refreshed, refreshed.to_dict()
    assert refreshed["access_token"] != tokens["access_token"]
    assert client.do_user_info_request(state=state)["sub"] == id_token["sub"]

    # RP-initiated logout: pyoidc puts the ID token it keeps for this state in the hint.
    end_session = client.construct_EndSessionRequest(
        state=state,
        request_args={
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "bye-" + secrets.token_hex(4),
        },
    )
    back = sign_out_at_the_idp(browser, end_session.request(client.end_session_endpoint))
    assert back.startswith(SIGNED_OUT)
    assert query(back)["state"] == end_session["state"]

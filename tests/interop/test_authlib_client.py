"""Authlib's Flask client, as its documentation sets it up (server_metadata_url, client_kwargs
with the scope and PKCE): sign-in with both factors, the ID token checked by Authlib itself
(signature from the JWKS, iss, aud, nonce, at_hash), UserInfo, refresh, revocation, and
RP-initiated logout with the ID token as hint."""

from __future__ import annotations

import pytest
from authlib.integrations.flask_client import OAuth
from flask import Flask, session, url_for

from tests.interop.journey import discovery_url, query, sign_in_at_the_idp, sign_out_at_the_idp

CALLBACK = "https://tax.example.gov.uk/auth/callback"
SIGNED_OUT = "https://tax.example.gov.uk/signed-out"


def department_app(idp, client_id: str, client_secret: str) -> Flask:
    """A department's Flask app with Authlib's client, configured as Authlib documents it."""
    app = Flask(__name__)
    app.secret_key = "department session key"
    app.config.update(SERVER_NAME="tax.example.gov.uk", PREFERRED_URL_SCHEME="https")
    oauth = OAuth(app)
    oauth.register(
        name="govsignin",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=discovery_url(idp),
        client_kwargs={"scope": "openid email offline_access", "code_challenge_method": "S256"},
    )

    @app.get("/login")
    def login():
        return oauth.govsignin.authorize_redirect(url_for("auth", _external=True))

    @app.get("/auth/callback")
    def auth():
        token = oauth.govsignin.authorize_access_token()
        session["token"] = token
        return {"token": token, "userinfo": dict(token["userinfo"])}

    @app.get("/me")
    def me():
        return dict(oauth.govsignin.userinfo(token=session["token"]))

    app.extensions["govsignin"] = oauth.govsignin
    return app


@pytest.fixture
def department(idp, make_client):
    registered = make_client(
        "authlib-tax",
        redirect_uri=CALLBACK,
        scope="openid email",
        grant_types=["authorization_code", "refresh_token"],
        post_logout_redirect_uris=[SIGNED_OUT],
        subject_type="pairwise",
    )
    return department_app(idp, registered.client_id, registered.client_secret)


def test_authlib_flask_client_whole_journey(idp, citizen, browser, department):
    rp = department.test_client()

    # Sign in: Authlib builds the authorization request (state, nonce, PKCE S256).
    start = rp.get("/login")
    assert start.status_code == 302
    callback_url = sign_in_at_the_idp(browser, start.headers["location"], citizen)

    # Authlib redeems the code and validates the ID token (signature, iss, aud, nonce, at_hash).
    signed_in = rp.get(callback_url.removeprefix("https://tax.example.gov.uk"))
    assert signed_in.status_code == 200, signed_in.text
    token, claims = signed_in.json["token"], signed_in.json["userinfo"]
    assert claims["iss"] == idp.issuer
    assert claims["aud"] == "authlib-tax"
    assert claims["vot"] == "Cl.Cm" and claims["amr"] == ["pwd", "otp"]
    assert token["refresh_token"]
    assert token["scope"] == "openid email offline_access"

    # UserInfo with Authlib's default (the token in the Authorization header).
    me = rp.get("/me")
    assert me.status_code == 200, me.text
    assert me.json == {"sub": claims["sub"], "email": citizen["email"], "email_verified": True}

    client = department.extensions["govsignin"]
    with department.app_context():
        metadata = client.load_server_metadata()
        session_client = client._get_oauth_client(**metadata)
        # Refresh with Authlib's OAuth2Session (client_secret_basic, its default).
        refreshed = session_client.refresh_token(
            metadata["token_endpoint"], refresh_token=token["refresh_token"]
        )
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert client.userinfo(token=refreshed)["sub"] == claims["sub"]

        # Revocation (RFC 7009) of the refresh token ends its access tokens too.
        revoked = session_client.revoke_token(
            metadata["revocation_endpoint"],
            token=refreshed["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert revoked.status_code == 200, revoked.text
        after = session_client.get(
            metadata["userinfo_endpoint"],
            headers={"Authorization": "Bearer " + refreshed["access_token"]},
        )
        assert after.status_code == 401

    # RP-initiated logout with the ID token as hint: signed out, and offered the way back
    # with state.
    logout_url = (
        f"{metadata['end_session_endpoint']}?id_token_hint={token['id_token']}"
        f"&post_logout_redirect_uri={SIGNED_OUT}&state=bye"
    )
    back = sign_out_at_the_idp(browser, logout_url)
    assert back.startswith(SIGNED_OUT)
    assert query(back)["state"] == "bye"

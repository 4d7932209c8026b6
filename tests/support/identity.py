"""A core identity JWT as the IdP issues it: a P2 citizen, a department registered for the
claim, the journey, the token and UserInfo."""

from __future__ import annotations

import json

import httpx
import jwt as pyjwt

from idp.extensions import db

CORE_IDENTITY = "https://vocab.account.gov.uk/v1/coreIdentityJWT"


def core_identity_jwt_for(idp, browser, citizen, make_client, client_id, details):
    """(the JWT, its claims, its header) for this citizen and a new department client_id."""
    from idp.accounts.identity.store import save_identity

    with idp.app.app_context():
        save_identity(citizen["id"], "P2", details, f"check-{client_id}")
        db.session.commit()
    client = make_client(client_id, identity_claims=[CORE_IDENTITY])
    attempt = client.authorization(
        vtr='["Cl.Cm.P2"]', claims=json.dumps({"userinfo": {CORE_IDENTITY: None}})
    )
    back = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    assert "code" in back.params, back.params
    tokens = client.token_request(back.params["code"], attempt.code_verifier).json()
    userinfo = httpx.get(
        idp.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    ).json()
    token = userinfo[CORE_IDENTITY]
    return (
        token,
        pyjwt.decode(token, options={"verify_signature": False}),
        pyjwt.get_unverified_header(token),
    )

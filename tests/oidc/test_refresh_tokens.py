"""Refresh tokens (departments registered for the refresh_token grant): rotated at every use,
reuse revokes the family, an absolute lifetime, revoked at sign-out and password change."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from idp.extensions import db
from idp.models import RefreshToken
from idp.models.timestamps import utcnow

pytestmark = pytest.mark.both_databases

GRANTS = ["authorization_code", "refresh_token"]


def refresh(client, refresh_token: str, **extra: str):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    auth = client._authenticate(data)
    return client.http.post(client.discovery()["token_endpoint"], data=data, auth=auth)


def first_tokens(client, issue_code) -> dict:
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" in body
    return {**body, "nonce": attempt.nonce}


def userinfo_status(client, token: str) -> int:
    return client.http.get(
        client.discovery()["userinfo_endpoint"], headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_only_registered_clients_get_refresh_tokens(make_client, issue_code):
    plain = make_client("plain")
    attempt, code = issue_code(plain)
    assert "refresh_token" not in plain.token_request(code, attempt.code_verifier).json()


def test_each_refresh_rotates_and_the_id_token_keeps_who_and_when(make_client, issue_code, clock):
    client = make_client("rotating", grant_types=GRANTS, auth_method="private_key_jwt")
    first = first_tokens(client, issue_code)
    original = client.validate_id_token(first["id_token"], first["nonce"])
    clock.advance(1)  # a later iat
    second = refresh(client, first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert userinfo_status(client, body["access_token"]) == 200
    refreshed = jwt.decode(body["id_token"], options={"verify_signature": False})
    for claim in ("iss", "sub", "aud", "auth_time", "sid", "amr", "vot"):
        assert refreshed[claim] == original[claim], claim
    assert refreshed["iat"] > original["iat"]
    assert "nonce" not in refreshed
    client.validate_id_token(body["id_token"], None)
    # The new refresh token works in turn.
    assert refresh(client, body["refresh_token"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(make_client, issue_code):
    client = make_client("reuse", grant_types=GRANTS)
    first = first_tokens(client, issue_code)
    second = refresh(client, first["refresh_token"]).json()
    replay = refresh(client, first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "already been used" in replay.json()["error_description"]
    # The thief's and the department's tokens of that family all stop.
    assert refresh(client, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo_status(client, second["access_token"]) == 401
    assert userinfo_status(client, first["access_token"]) == 401


def test_another_clients_refresh_token_is_invalid_grant(make_client, issue_code):
    owner = make_client("owner", grant_types=GRANTS)
    thief = make_client("thief", grant_types=GRANTS, redirect_uri="https://thief.example/cb")
    tokens = first_tokens(owner, issue_code)
    stolen = refresh(thief, tokens["refresh_token"])
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    assert refresh(owner, tokens["refresh_token"]).status_code == 200


def test_the_family_has_an_absolute_lifetime(idp, make_client, issue_code):
    client = make_client("lifetime", grant_types=GRANTS)
    tokens = first_tokens(client, issue_code)
    with idp.app.app_context():
        for row in db.session.scalars(db.select(RefreshToken)):
            row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    expired = refresh(client, tokens["refresh_token"])
    assert expired.status_code == 400
    assert "expired" in expired.json()["error_description"]


def test_a_narrower_scope_can_be_asked_but_not_a_wider_one(make_client, issue_code):
    client = make_client("scopes", grant_types=GRANTS)
    tokens = first_tokens(client, issue_code)
    wider = refresh(client, tokens["refresh_token"], scope="openid email phone")
    assert wider.json()["error"] == "invalid_scope"
    narrower = refresh(client, tokens["refresh_token"], scope="openid")
    assert narrower.status_code == 200
    assert narrower.json()["scope"] == "openid"


def test_revoking_a_refresh_token_ends_its_access_tokens(make_client, issue_code):
    client = make_client("revoker", grant_types=GRANTS)
    tokens = first_tokens(client, issue_code)
    assert client.introspect(tokens["refresh_token"]).json()["active"] is True
    assert (
        client.revoke(tokens["refresh_token"], token_type_hint="refresh_token").status_code == 200
    )
    assert userinfo_status(client, tokens["access_token"]) == 401
    assert refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert client.introspect(tokens["refresh_token"]).json() == {"active": False}


def test_signing_out_at_the_idp_revokes_refresh_tokens(idp, make_client, issue_code, browser):
    client = make_client("signout", grant_types=GRANTS)
    tokens = first_tokens(client, issue_code)
    account = browser.get(idp.url("/"))
    browser.submit(account, {}, action="/sign-out")
    assert refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_malformed_refresh_requests_get_oauth_errors(make_client):
    client = make_client("malformed", grant_types=GRANTS)
    missing = refresh(client, "")
    assert missing.status_code == 400
    assert missing.json()["error"] in ("invalid_request", "invalid_grant")
    assert refresh(client, "x" * 5000).json()["error"] == "invalid_grant"
    assert refresh(client, "no-such-token").json()["error"] == "invalid_grant"


def test_a_replayed_code_revokes_the_refresh_token_family_it_started(make_client, issue_code):
    # RFC 6749 4.1.2 and RFC 9700 4.2.4: a code used twice was stolen; everything issued with
    # it stops, the refresh token family (and the tokens refreshed from it) included.
    client = make_client("code-replay", grant_types=GRANTS)
    attempt, code = issue_code(client)
    first = client.token_request(code, attempt.code_verifier).json()
    refreshed = refresh(client, first["refresh_token"]).json()
    assert userinfo_status(client, refreshed["access_token"]) == 200
    replay = client.token_request(code, attempt.code_verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert "already been used" in replay.json()["error_description"]
    assert refresh(client, refreshed["refresh_token"]).json()["error"] == "invalid_grant"
    for token in (first["access_token"], refreshed["access_token"]):
        assert userinfo_status(client, token) == 401
        assert client.introspect(token).json() == {"active": False}
    assert client.introspect(refreshed["refresh_token"]).json() == {"active": False}


def test_a_code_replayed_before_any_refresh_revokes_the_first_refresh_token(
    make_client, issue_code
):
    client = make_client("code-replay-early", grant_types=GRANTS)
    attempt, code = issue_code(client)
    first = client.token_request(code, attempt.code_verifier).json()
    assert client.token_request(code, attempt.code_verifier).json()["error"] == "invalid_grant"
    assert refresh(client, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert userinfo_status(client, first["access_token"]) == 401
    assert client.introspect(first["access_token"]).json() == {"active": False}

"""Token revocation (RFC 7009) and introspection (RFC 7662): client authentication required,
a client's own tokens only."""

from __future__ import annotations

import httpx
import pytest


def access_token(client, issue_code) -> str:
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def userinfo_status(client, token: str) -> int:
    meta = client.discovery()
    return client.http.get(
        meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_discovery_names_both_endpoints(make_client):
    meta = make_client().discovery()
    assert meta["revocation_endpoint"].endswith("/revoke")
    assert meta["introspection_endpoint"].endswith("/introspect")
    assert "none" not in meta["revocation_endpoint_auth_methods_supported"]
    assert "private_key_jwt" in meta["introspection_endpoint_auth_methods_supported"]


@pytest.mark.parametrize(
    "auth_method", ["client_secret_basic", "client_secret_post", "private_key_jwt"]
)
def test_introspection_describes_an_active_token_then_revocation_ends_it(
    make_client, issue_code, citizen, auth_method
):
    client = make_client(auth_method=auth_method)
    token = access_token(client, issue_code)
    info = client.introspect(token)
    assert info.status_code == 200
    assert info.headers["Cache-Control"] == "no-store"
    body = info.json()
    assert body["active"] is True
    assert body["client_id"] == client.client_id
    assert body["sub"] == citizen["subject"]
    assert set(body["scope"].split()) >= {"openid", "email"}
    assert body["exp"] > body["iat"]
    assert body["iss"] == client.issuer

    revoked = client.revoke(token, token_type_hint="access_token")
    assert revoked.status_code == 200
    assert userinfo_status(client, token) == 401
    assert client.introspect(token).json() == {"active": False}
    # Revoking again, or an unknown token, is still 200 (RFC 7009 2.2).
    assert client.revoke(token).status_code == 200
    assert client.revoke("not-a-token-this-server-issued").status_code == 200


def test_a_client_cannot_revoke_or_introspect_another_clients_token(make_client, issue_code):
    owner = make_client("dept-a")
    other = make_client("dept-b", redirect_uri="https://dept-b.example.gov.uk/callback")
    token = access_token(owner, issue_code)
    assert other.introspect(token).json() == {"active": False}
    refused = other.revoke(token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert userinfo_status(owner, token) == 200
    assert owner.introspect(token).json()["active"] is True


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
def test_client_authentication_is_required(idp, make_client, issue_code, path):
    client = make_client()
    token = access_token(client, issue_code)
    anonymous = httpx.post(idp.url(path), data={"token": token})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    wrong = httpx.post(
        idp.url(path), data={"token": token}, auth=(client.client_id, "wrong secret")
    )
    assert wrong.status_code == 401
    assert userinfo_status(client, token) == 200


def test_a_public_client_cannot_use_them(make_client, issue_code):
    client = make_client("public-app", auth_method="none")
    token = access_token(client, issue_code)
    assert client.revoke(token).status_code == 401
    assert client.introspect(token).status_code == 401
    assert userinfo_status(client, token) == 200


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
def test_bad_requests_get_oauth_errors(idp, make_client, path):
    client = make_client()
    auth = (client.client_id, client.client_secret)
    missing = httpx.post(idp.url(path), data={}, auth=auth)
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"
    huge = httpx.post(idp.url(path), data={"token": "x" * 10_000}, auth=auth)
    assert huge.status_code == 200
    hint = httpx.post(
        idp.url(path), data={"token": "abc", "token_type_hint": "id_token"}, auth=auth
    )
    # RFC 7009 2.1 and RFC 7662 2.1: an unknown hint is ignored, not an error.
    assert hint.status_code == 200

"""Which client authentication method a client may use (RFC 6749 2.3.1): a client with a secret
sends it by HTTP Basic or in the form, whichever it registered, at every endpoint; a client
registered for private_key_jwt or none is held to it, and a refusal names its method."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from tests.support.oauth_errors import assert_oauth_error

SECRET_METHODS = ["client_secret_basic", "client_secret_post"]


def other_secret_method(method: str) -> str:
    return next(m for m in SECRET_METHODS if m != method)


@pytest.mark.parametrize("registered", SECRET_METHODS)
def test_a_secret_client_may_send_its_secret_either_way_at_every_endpoint(
    make_client, issue_code, registered
):
    client = make_client("dept-secret", auth_method=registered)
    # Its library sends the secret the other way (Authlib's client: Basic at /revoke).
    sender = dataclasses.replace(client, auth_method=other_secret_method(registered))
    attempt, code = issue_code(client)
    exchanged = sender.token_request(code, attempt.code_verifier)
    assert exchanged.status_code == 200, exchanged.text
    sender.validate_id_token(exchanged.json()["id_token"], attempt.nonce)
    token = exchanged.json()["access_token"]

    introspected = sender.introspect(token)
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["active"] is True
    revoked = sender.revoke(token)
    assert revoked.status_code == 200, revoked.text
    assert client.introspect(token).json() == {"active": False}


@pytest.mark.parametrize("registered", SECRET_METHODS)
@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_a_wrong_secret_is_refused_whichever_way_it_is_sent(idp, make_client, registered, path):
    client = make_client("dept-secret", auth_method=registered)
    form = {"token": "x", "grant_type": "authorization_code", "code": "c"}
    by_basic = httpx.post(idp.url(path), data=form, auth=(client.client_id, "wrong " * 8))
    body = assert_oauth_error(by_basic, 401, "invalid_client")
    assert body["error_description"] == "The client secret is not valid."
    in_form = httpx.post(
        idp.url(path),
        data={**form, "client_id": client.client_id, "client_secret": "wrong " * 8},
    )
    body = assert_oauth_error(in_form, 401, "invalid_client")
    assert body["error_description"] == "The client secret is not valid."


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
def test_a_private_key_jwt_client_cannot_fall_back_to_a_secret(idp, make_client, path):
    client = make_client("dept-keys", auth_method="private_key_jwt")
    form = {"token": "x", "grant_type": "authorization_code", "code": "c"}
    attempts = [
        httpx.post(idp.url(path), data=form, auth=(client.client_id, "s" * 40)),
        httpx.post(
            idp.url(path), data={**form, "client_id": client.client_id, "client_secret": "s" * 40}
        ),
        httpx.post(idp.url(path), data={**form, "client_id": client.client_id}),
    ]
    for response in attempts:
        body = assert_oauth_error(response, 401, "invalid_client")
        description = body["error_description"]
        assert description.startswith("This client is registered for private_key_jwt"), body
        # The method it is registered for, not a list of every method.
        assert "client_secret_basic" not in description and "[" not in description


def test_a_public_client_is_held_to_none(idp, make_client, issue_code):
    client = make_client("public-app", auth_method="none")
    attempt, code = issue_code(client)
    with_secret = httpx.post(
        idp.url("/token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": attempt.code_verifier,
        },
        auth=(client.client_id, "s" * 40),
    )
    body = assert_oauth_error(with_secret, 401, "invalid_client")
    assert body["error_description"].startswith("This client is registered for none")
    revoked = httpx.post(idp.url("/revoke"), data={"token": "x", "client_id": client.client_id})
    body = assert_oauth_error(revoked, 401, "invalid_client")
    assert "registered for none (a public client)" in body["error_description"]


def test_refusals_without_a_known_client_say_what_is_missing(idp, make_client):
    make_client("dept-secret")
    anonymous = httpx.post(idp.url("/revoke"), data={"token": "x"})
    body = assert_oauth_error(anonymous, 401, "invalid_client")
    assert "does not authenticate a client" in body["error_description"]
    unknown = httpx.post(idp.url("/revoke"), data={"token": "x", "client_id": "nobody"})
    body = assert_oauth_error(unknown, 401, "invalid_client")
    assert body["error_description"] == "The client does not exist on this server."


def test_discovery_still_lists_exactly_the_supported_methods(make_client):
    meta = make_client().discovery()
    assert meta["token_endpoint_auth_methods_supported"] == [
        "private_key_jwt",
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    for endpoint in ("revocation", "introspection"):
        assert meta[f"{endpoint}_endpoint_auth_methods_supported"] == [
            "private_key_jwt",
            "client_secret_basic",
            "client_secret_post",
        ]

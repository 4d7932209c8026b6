"""How each service proves who it is at the stand-in IdP's token endpoint."""

import pytest

from relying_parties.keys import public_jwks_for
from tests.relying_parties.conftest import DRIVING_SECRET
from tests.relying_parties.test_department_app import complete_sign_in


def test_client_secret_basic_sends_the_secret_in_the_authorization_header(signed_up, fake_idp):
    _, client = signed_up("driving")

    response = complete_sign_in(client, fake_idp)

    assert response.headers["Location"] == "/account"
    [token_request] = fake_idp.token_requests
    assert token_request["basic"] == ("driving", DRIVING_SECRET)
    assert "client_secret" not in token_request["form"]


def test_client_secret_post_sends_client_id_and_secret_in_the_body(signed_up, fake_idp):
    app, client = signed_up("council")
    settings = app.extensions["relying_party"].settings

    response = complete_sign_in(client, fake_idp)

    assert response.headers["Location"] == "/account"
    [token_request] = fake_idp.token_requests
    assert token_request["method"] == "client_secret_post"
    assert "basic" not in token_request
    assert token_request["form"]["client_id"] == settings.client_id
    assert token_request["form"]["client_secret"] == settings.client_secret


def test_a_public_client_sends_only_its_client_id_and_the_pkce_verifier(signed_up, fake_idp):
    _, client = signed_up("benefits")

    response = complete_sign_in(client, fake_idp)

    assert response.headers["Location"] == "/account"
    assert "Welcome to your benefits" in client.get("/account").text
    [authorization_request] = fake_idp.authorization_requests
    assert authorization_request["code_challenge_method"] == "S256"
    [token_request] = fake_idp.token_requests
    assert token_request["method"] == "none"
    assert token_request["form"]["client_id"] == "benefits"
    assert len(token_request["form"]["code_verifier"]) >= 43
    assert not {"client_secret", "client_assertion"} & set(token_request["form"])


@pytest.mark.parametrize("kind", ["tax", "health"])
def test_private_key_jwt_signs_a_short_lived_assertion_for_the_token_endpoint(
    signed_up, fake_idp, kind
):
    _, client = signed_up(kind)
    published_kid = client.get("/jwks.json").get_json()["keys"][0]["kid"]

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 302, response.text
    [token_request] = fake_idp.token_requests
    assert "basic" not in token_request
    assert token_request["assertion_header"]["alg"] == "RS256"
    assert token_request["assertion_header"]["kid"] == published_kid
    claims = token_request["assertion_claims"]
    assert claims["iss"] == claims["sub"] == kind
    assert claims["aud"] == fake_idp.token_endpoint
    assert claims["jti"]
    assert claims["exp"] - claims["iat"] <= 300


def test_a_key_registered_by_value_is_the_one_the_service_signs_with(
    department_settings, department_app, fake_idp
):
    settings = department_settings("health", fake_idp.issuer)
    # The IdP is given the JWKS document before the service ever runs.
    fake_idp.register_client(
        "health", "private_key_jwt", jwks=public_jwks_for(settings.private_key_path)
    )
    client = department_app("health", fake_idp.issuer).test_client()

    response = complete_sign_in(client, fake_idp)

    assert response.headers["Location"] == "/account"
    assert "Welcome to your health record" in client.get("/account").text


@pytest.mark.parametrize(
    ("kind", "registered_as"),
    [
        ("benefits", "client_secret_basic"),
        ("council", "none"),
        ("driving", "client_secret_post"),
        ("tax", "client_secret_basic"),
    ],
)
def test_a_service_registered_another_way_is_refused_by_the_idp(
    signed_up, fake_idp, kind, registered_as
):
    app, client = signed_up(kind)
    fake_idp.clients[app.extensions["relying_party"].settings.client_id]["method"] = registered_as

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 502
    assert "invalid_client" in response.text
    assert client.get("/account").status_code == 302

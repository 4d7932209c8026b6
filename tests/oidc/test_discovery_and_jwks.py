"""Discovery (OIDC Discovery 1.0 section 3), the JWKS, and the ID tokens they describe."""

from __future__ import annotations

import base64
import hashlib
import os
import time

import httpx
import jwt
import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata

from idp import create_app
from idp.extensions import db
from idp.settings import Settings, SettingsError, load_settings

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
def metadata(idp) -> dict:
    """The discovery document, fetched as a department's library does."""
    response = httpx.get(idp.url("/.well-known/openid-configuration"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


@pytest.fixture
def jwks(metadata) -> dict:
    """The published keys, fetched from the advertised jwks_uri."""
    response = httpx.get(metadata["jwks_uri"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_discovery_validates_as_openid_provider_metadata(metadata):
    OpenIDProviderMetadata(metadata).validate()


def test_discovery_advertises_exactly_what_is_supported(idp, metadata):
    assert metadata["issuer"] == idp.issuer
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query"]
    assert metadata["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert sorted(metadata["token_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
        "none",
        "private_key_jwt",
    ]
    assert sorted(metadata["id_token_signing_alg_values_supported"]) == ["ES256", "RS256"]
    assert sorted(metadata["subject_types_supported"]) == ["pairwise", "public"]
    assert metadata["registration_endpoint"] == f"{idp.issuer}/register"
    assert "openid" in metadata["scopes_supported"]
    assert metadata["request_parameter_supported"] is False
    assert metadata["request_uri_parameter_supported"] is False
    # OIDC Core 5.5, for the identity claims (tests/oidc/test_identity_claims.py).
    assert metadata["claims_parameter_supported"] is True
    signing_algs = set(metadata["token_endpoint_auth_signing_alg_values_supported"])
    assert {"RS256", "ES256"} <= signing_algs
    assert not {"none", "HS256", "HS384", "HS512"} & signing_algs
    assert {"sub", "email", "email_verified", "sid", "auth_time"} <= set(
        metadata["claims_supported"]
    )
    assert len(metadata["claims_supported"]) == len(set(metadata["claims_supported"]))


ENDPOINTS = ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"]


@pytest.mark.parametrize("name", ENDPOINTS)
def test_endpoints_are_absolute_urls_under_the_issuer(idp, metadata, name):
    assert metadata[name].startswith(idp.issuer + "/"), metadata[name]


def test_every_advertised_endpoint_answers(metadata):
    assert httpx.get(metadata["jwks_uri"]).status_code == 200
    assert httpx.get(metadata["userinfo_endpoint"]).status_code == 401
    assert httpx.get(metadata["token_endpoint"]).status_code == 405
    assert httpx.post(metadata["token_endpoint"], data={}).status_code == 400
    authorize = httpx.get(metadata["authorization_endpoint"])
    assert authorize.status_code == 400
    assert "location" not in authorize.headers


CACHEABLE = ("/.well-known/openid-configuration", "/jwks.json")


def max_age(response: httpx.Response) -> int:
    """The max-age directive of a response's Cache-Control."""
    directives = [part.strip() for part in response.headers["cache-control"].split(",")]
    (value,) = [d.split("=", 1)[1] for d in directives if d.startswith("max-age=")]
    return int(value)


@pytest.mark.parametrize("path", CACHEABLE)
def test_discovery_and_jwks_are_cacheable(idp, path):
    response = httpx.get(idp.url(path))
    cache_control = response.headers["cache-control"]
    assert "public" in cache_control
    assert "no-store" not in cache_control and "private" not in cache_control
    assert 0 < max_age(response) <= 86400


def test_jwks_max_age_is_short_and_well_below_the_rotation_lead_time(idp):
    # A new key is published the lead time before it signs: a department may hold a copy a
    # shared cache already kept for max-age, for max-age more, and must still see the key.
    lead_time = Settings().signing_key_lead_time
    jwks_max_age = max_age(httpx.get(idp.url("/jwks.json")))
    assert 2 * jwks_max_age + 10 <= lead_time
    # Short, as it bounds how long a withdrawn key stays trusted by caches.
    assert jwks_max_age <= 300


def test_the_jwks_max_age_is_a_setting(idp):
    settings = idp.app.config["IDP_SETTINGS"].replace(jwks_max_age=42)
    app = create_app(settings)
    assert max_age(app.test_client().get("/jwks.json")) == 42
    with app.app_context():
        db.engine.dispose()
    with pytest.raises(SettingsError, match="jwks_max_age"):
        load_settings(config_file=os.devnull, jwks_max_age=0)


@pytest.mark.parametrize("path", CACHEABLE)
def test_conditional_get_answers_not_modified(idp, path):
    first = httpx.get(idp.url(path))
    etag = first.headers["etag"]
    again = httpx.get(idp.url(path), headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert "public" in again.headers["cache-control"]
    changed = httpx.get(idp.url(path), headers={"If-None-Match": '"something-else"'})
    assert changed.status_code == 200
    assert changed.json() == first.json()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/jwks.json", 405),
        ("DELETE", "/jwks.json", 405),
        ("POST", "/.well-known/openid-configuration", 405),
        ("GET", "/.well-known/no-such-document", 404),
        ("GET", "/jwks.json/extra", 404),
    ],
)
def test_errors_at_cacheable_paths_are_not_stored(idp, method, path, status):
    response = httpx.request(method, idp.url(path))
    assert response.status_code == status
    assert response.headers["cache-control"] == "no-store"


def test_jwks_has_only_public_members(jwks):
    assert jwks["keys"]
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & set(key), key
        assert key["use"] == "sig"


def test_jwks_kids_are_unique(jwks):
    kids = [key["kid"] for key in jwks["keys"]]
    assert all(kids)
    assert len(kids) == len(set(kids))


def test_jwks_has_an_ec_p256_key_and_an_rsa_key(jwks):
    by_alg = {key["alg"]: key for key in jwks["keys"]}
    assert by_alg["ES256"]["kty"] == "EC"
    assert by_alg["ES256"]["crv"] == "P-256"
    assert by_alg["RS256"]["kty"] == "RSA"
    modulus = base64.urlsafe_b64decode(by_alg["RS256"]["n"] + "==")
    assert len(modulus) * 8 >= 2048
    for key in jwks["keys"]:
        jwt.PyJWK(key)  # every published key is usable by a standard library


def at_hash(access_token: str) -> str:
    """OIDC Core 3.1.3.6: base64url of the left half of SHA-256 of the access token."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def obtain_id_token(client, issue_code) -> tuple[dict, dict, str]:
    """Header, verified claims and access token of a fresh code exchange."""
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    body = response.json()
    header = jwt.get_unverified_header(body["id_token"])
    claims = client.validate_id_token(body["id_token"], attempt.nonce)
    assert claims["nonce"] == attempt.nonce
    return header, claims, body["access_token"]


@pytest.mark.parametrize(
    ("registered", "alg", "kty"),
    [(None, "ES256", "EC"), ("RS256", "RS256", "RSA"), ("ES256", "ES256", "EC")],
    ids=["default", "rs256-on-request", "es256-registered"],
)
def test_id_token_algorithm_and_kid_match_the_jwks(
    make_client, issue_code, jwks, registered, alg, kty
):
    metadata = {"id_token_signed_response_alg": registered} if registered else {}
    client = make_client("dept-a", **metadata)
    header, _, _ = obtain_id_token(client, issue_code)
    assert header["alg"] == alg
    published = {key["kid"]: key for key in jwks["keys"]}
    assert header["kid"] in published
    assert published[header["kid"]]["kty"] == kty
    assert published[header["kid"]]["alg"] == alg


def test_id_token_claims(idp, make_client, issue_code, citizen):
    client = make_client("dept-a")
    before = int(time.time())
    header, claims, access_token = obtain_id_token(client, issue_code)
    after = int(time.time())
    assert header.get("typ") == "JWT"
    assert claims["iss"] == idp.issuer
    assert claims["sub"] == citizen["subject"]
    assert claims["aud"] in ("dept-a", ["dept-a"])
    assert before - 5 <= claims["iat"] <= after + 5
    assert claims["iat"] < claims["exp"] <= claims["iat"] + 3600
    assert claims["auth_time"] <= claims["iat"]
    assert claims["at_hash"] == at_hash(access_token)
    assert isinstance(claims["sid"], str) and claims["sid"]
    # The default level, Cl.Cm: a password and an authenticator app code (RFC 8176 otp).
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["vot"] == claims["acr"] == "Cl.Cm"
    # Profile claims travel through UserInfo only.
    assert "email" not in claims


def test_at_hash_is_correct_for_rs256_too(make_client, issue_code):
    client = make_client("dept-a", id_token_signed_response_alg="RS256")
    _, claims, access_token = obtain_id_token(client, issue_code)
    assert claims["at_hash"] == at_hash(access_token)


def test_single_sign_on_keeps_sid_and_auth_time_across_departments(make_client, issue_code):
    first = make_client("dept-a")
    second = make_client("dept-b", redirect_uri="https://dept-b.example.gov.uk/cb")
    _, claims_a, _ = obtain_id_token(first, issue_code)
    _, claims_b, _ = obtain_id_token(second, issue_code)
    assert claims_b["sid"] == claims_a["sid"]
    assert claims_b["auth_time"] == claims_a["auth_time"]
    assert claims_b["aud"] in ("dept-b", ["dept-b"])


def test_id_token_without_a_nonce_has_no_nonce_claim(make_client, issue_code):
    client = make_client("dept-a")
    attempt, code = issue_code(client, omit=("nonce",))
    body = client.token_request(code, attempt.code_verifier).json()
    claims = client.validate_id_token(body["id_token"], None)
    assert "nonce" not in claims

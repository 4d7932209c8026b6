"""Departments onboarding themselves: Dynamic Client Registration (RFC 7591) with an initial
access token, then managing the registration (RFC 7592) with the registration access token.

Every request goes over HTTP as a department's tooling would send it; the initial access
tokens are issued (and expired or revoked) the way a platform administrator would.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import httpx
import jwt
import pytest
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy import update

from idp.extensions import db
from idp.models import InitialAccessToken
from idp.models.timestamps import utcnow
from idp.security.secrets import hash_token
from tests.support.oauth_errors import assert_oauth_error
from tests.support.oidc_client import make_rsa_key
from tests.support.registration import (
    VALID_METADATA,
    issue_token,
    manage,
    register,
    registered_client,
    registration_error,
    replacement,
)

REDIRECT = "https://fishing.example.gov.uk/callback"
DROP = object()  # a matrix value meaning "leave this field out"


@pytest.fixture
def registration(idp) -> dict:
    """A pre-approved client_secret_basic registration, as the department received it."""
    response = register(
        idp, {**VALID_METADATA, "contacts": ["team@fishing.example.gov.uk"]}, issue_token(idp)
    )
    assert response.status_code == 201, response.text
    return response.json()


def sign_in_and_redeem(client, browser, citizen, **overrides) -> tuple:
    """A whole code flow: authorization in the citizen's browser, then the code exchange."""
    attempt = client.authorization(**overrides)
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    assert "code" in cb.params, cb.url
    # A public client identifies itself with client_id in the body (RFC 6749 4.1.3).
    extra = {"client_id": client.client_id} if client.auth_method == "none" else None
    return attempt, client.token_request(cb.params["code"], attempt.code_verifier, extra=extra)


def userinfo(idp, access_token: str) -> httpx.Response:
    """UserInfo with the access token in the header."""
    return httpx.get(idp.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"})


# --- The initial access token -------------------------------------------------------------


def test_discovery_advertises_the_registration_endpoint(idp):
    metadata = httpx.get(idp.url("/.well-known/openid-configuration")).json()
    assert metadata["registration_endpoint"] == idp.url("/register")


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic ZGVwdDpzZWNyZXQ=", "Bearer"],
    ids=["no-header", "basic-scheme", "bare-scheme"],
)
def test_registering_without_a_bearer_token_gets_a_bare_bearer_challenge(idp, authorization):
    """RFC 6750 3.1: with no token at all, the challenge carries no error code."""
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.post(idp.url("/register"), json=VALID_METADATA, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == 'Bearer realm="registration"'
    assert response.headers["cache-control"] == "no-store"


def _expired(idp) -> str:
    value = issue_token(idp)
    with idp.app.app_context():
        db.session.execute(
            update(InitialAccessToken)
            .where(InitialAccessToken.token_hash == hash_token(value))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    return value


def _revoked(idp) -> str:
    from idp.departments.services import revoke_initial_access_token

    value = issue_token(idp)
    with idp.app.app_context():
        token = db.session.scalar(
            db.select(InitialAccessToken).filter_by(token_hash=hash_token(value))
        )
        revoke_initial_access_token(token, actor="operator (tests)")
    return value


def _used_up(idp) -> str:
    value = issue_token(idp, max_uses=1)
    assert register(idp, VALID_METADATA, value).status_code == 201
    return value


@pytest.mark.parametrize(
    "make_token",
    [
        lambda idp: secrets.token_urlsafe(32),
        _expired,
        _revoked,
        _used_up,
        lambda idp: "x" * 500,
    ],
    ids=["unknown", "expired", "revoked", "used-up", "oversized"],
)
def test_an_unusable_initial_access_token_is_refused_as_invalid_token(idp, make_token):
    response = register(idp, VALID_METADATA, make_token(idp))
    description = registration_error(response, 401, "invalid_token")
    assert "initial access token" in description
    assert response.headers["www-authenticate"] == (
        'Bearer realm="registration", error="invalid_token"'
    )


def test_a_token_for_two_registrations_allows_exactly_two(idp):
    token = issue_token(idp, max_uses=2)
    first = register(idp, VALID_METADATA, token)
    second = register(idp, VALID_METADATA, token)
    third = register(idp, VALID_METADATA, token)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["client_id"] != second.json()["client_id"]
    registration_error(third, 401, "invalid_token")


def test_a_refused_registration_does_not_spend_the_token(idp):
    token = issue_token(idp, max_uses=1)
    refused = register(idp, {**VALID_METADATA, "redirect_uris": ["http://x.example/cb"]}, token)
    not_json = httpx.post(
        idp.url("/register"),
        content=b"client_name=x",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    assert (refused.status_code, not_json.status_code) == (400, 400)
    assert register(idp, VALID_METADATA, token).status_code == 201


# --- A successful registration ------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth_method", "gets_secret"),
    [
        ("client_secret_basic", True),
        ("client_secret_post", True),
        ("private_key_jwt", False),
        ("none", False),
    ],
)
def test_registration_returns_credentials_and_the_stored_metadata(idp, auth_method, gets_secret):
    metadata = {**VALID_METADATA, "token_endpoint_auth_method": auth_method}
    if auth_method == "private_key_jwt":
        metadata["jwks"] = {"keys": [make_rsa_key().public_jwk()]}
    response = register(idp, metadata, issue_token(idp))

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_id"]
    assert body["registration_access_token"]
    assert body["registration_client_uri"] == idp.url(f"/register/{body['client_id']}")
    assert isinstance(body["client_id_issued_at"], int)
    assert ("client_secret" in body) is gets_secret
    if gets_secret:
        assert len(body["client_secret"]) >= 32
        assert body["client_secret_expires_at"] == 0
    assert body["client_name"] == VALID_METADATA["client_name"]
    assert body["redirect_uris"] == [REDIRECT]
    assert body["token_endpoint_auth_method"] == auth_method
    # The IdP's secure defaults are stated, so the department knows what it got.
    assert body["subject_type"] == "pairwise"
    assert body["id_token_signed_response_alg"] == "ES256"
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]


def test_client_name_may_be_registered_in_welsh(idp):
    metadata = {
        **VALID_METADATA,
        "client_name#cy-GB": "Cael trwydded bysgota",
        "client_name#fr": "Obtenir un permis de pêche",  # not a language of the pages
    }
    response = register(idp, metadata, issue_token(idp))

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["client_name#cy"] == "Cael trwydded bysgota"
    assert "client_name#cy-GB" not in body
    assert "client_name#fr" not in body


def test_unknown_metadata_is_ignored_and_identifiers_are_chosen_by_the_idp(idp):
    proposed_secret = secrets.token_urlsafe(32)
    response = register(
        idp,
        {
            **VALID_METADATA,
            "software_id": "fishing-app",
            "favourite_colour": "green",
            "client_id": "i-chose-this",
            "client_secret": proposed_secret,
        },
        issue_token(idp),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert "software_id" not in body and "favourite_colour" not in body
    assert body["client_id"] != "i-chose-this"
    assert body["client_secret"] != proposed_secret
    stored = manage("GET", body).json()
    assert "software_id" not in stored and "favourite_colour" not in stored


def test_a_welsh_service_name_is_kept_as_written(idp):
    name = "Gwneud cais am drwydded bysgota – Cyfoeth Naturiol Cymru (ŵ, ŷ, â)"
    response = register(idp, {**VALID_METADATA, "client_name": name}, issue_token(idp))
    assert response.status_code == 201, response.text
    assert response.json()["client_name"] == name


def test_an_oversized_request_is_refused_without_spending_the_token(idp):
    token = issue_token(idp)
    huge = register(
        idp, {**VALID_METADATA, "client_uri": "https://x.example/" + "a" * 70_000}, token
    )
    assert huge.status_code == 413
    assert huge.json()["error"] == "invalid_request"
    assert register(idp, VALID_METADATA, token).status_code == 201


def test_a_new_registration_waits_for_approval(idp, browser, citizen):
    body = register(idp, VALID_METADATA, issue_token(idp)).json()
    client = registered_client(idp, body)

    page = browser.get(client.authorization().url)

    assert page.status_code == 403
    assert "location" not in page.headers
    assert "waiting for approval" in page.text
    assert "You cannot sign in to this service yet" in page.text
    assert VALID_METADATA["client_name"] not in page.text  # unapproved text is not shown


@pytest.mark.parametrize(
    "auth_method", ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
)
def test_a_pre_approved_registration_completes_a_code_flow(idp, browser, citizen, auth_method):
    key = make_rsa_key() if auth_method == "private_key_jwt" else None
    metadata = {**VALID_METADATA, "token_endpoint_auth_method": auth_method}
    if key:
        metadata["jwks"] = {"keys": [key.public_jwk()]}
    body = register(idp, metadata, issue_token(idp, pre_approved=True)).json()
    client = registered_client(idp, body, key)

    attempt, response = sign_in_and_redeem(client, browser, citizen)

    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = client.validate_id_token(tokens["id_token"], attempt.nonce)
    assert claims["aud"] == body["client_id"]
    assert userinfo(idp, tokens["access_token"]).json()["email"] == citizen["email"]


def test_a_public_client_without_pkce_is_refused(idp, browser, citizen):
    metadata = {**VALID_METADATA, "token_endpoint_auth_method": "none"}
    client = registered_client(
        idp, register(idp, metadata, issue_token(idp, pre_approved=True)).json()
    )
    attempt = client.authorization(omit=("code_challenge", "code_challenge_method"))

    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])

    assert cb.url.startswith(REDIRECT)
    assert cb.params["error"] == "invalid_request"
    assert "PKCE is required" in cb.params["error_description"]
    assert "code" not in cb.params


def test_a_public_client_cannot_redeem_a_code_without_the_verifier(idp, browser, citizen):
    metadata = {**VALID_METADATA, "token_endpoint_auth_method": "none"}
    client = registered_client(
        idp, register(idp, metadata, issue_token(idp, pre_approved=True)).json()
    )
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])

    response = client.token_request(cb.params["code"], None, extra={"client_id": client.client_id})

    assert (
        "code_verifier" in assert_oauth_error(response, 400, "invalid_request")["error_description"]
    )


# --- The bad-metadata matrix (RFC 7591 3.2.2: every refusal names the field) ---------------

BAD_METADATA = {
    # client_name in Welsh (RFC 7591 2.2 language tags): checked like client_name.
    "client_name-cy-empty": (
        {"client_name#cy": " "},
        "invalid_client_metadata",
        "client_name#cy must be text of 1 to 200 characters",
    ),
    "client_name-cy-a-number": (
        {"client_name#cy": 7},
        "invalid_client_metadata",
        "client_name#cy must be text",
    ),
    "client_name-cy-control-characters": (
        {"client_name#cy": "Adnewyddu\u202e"},
        "invalid_client_metadata",
        "client_name#cy must not contain control characters",
    ),
    "client_name-cy-mixed-scripts": (
        {"client_name#cy": "Adnewyddu pаsbort"},
        "invalid_client_metadata",
        "client_name#cy mixes Latin and Cyrillic letters",
    ),
    "client_name-cy-twice": (
        {"client_name#cy": "Un", "client_name#cy-GB": "Dau"},
        "invalid_client_metadata",
        "client_name#cy is given twice",
    ),
    # redirect_uris: invalid_redirect_uri
    "redirect_uris-missing": (
        {"redirect_uris": DROP},
        "invalid_redirect_uri",
        "redirect_uris is required",
    ),
    "redirect_uris-empty": ({"redirect_uris": []}, "invalid_redirect_uri", "non-empty list"),
    "redirect_uris-a-string": (
        {"redirect_uris": REDIRECT},
        "invalid_redirect_uri",
        "non-empty list",
    ),
    "redirect_uris-null": ({"redirect_uris": None}, "invalid_redirect_uri", "non-empty list"),
    "redirect_uris-unclosed-ipv6-bracket": (
        {"redirect_uris": ["https://[::1/callback"]},
        "invalid_redirect_uri",
        "is not a valid URI",
    ),
    "redirect_uris-port-out-of-range": (
        {"redirect_uris": ["https://fishing.example.gov.uk:99999/callback"]},
        "invalid_redirect_uri",
        "is not a valid URI",
    ),
    "redirect_uris-host-too-long": (
        {"redirect_uris": [f"https://{('a' * 60 + '.') * 5}example/cb"]},
        "invalid_redirect_uri",
        "longer than DNS allows",
    ),
    "redirect_uris-quote": (
        {"redirect_uris": ['https://fishing.example.gov.uk/cb"onload']},
        "invalid_redirect_uri",
        "characters that are not allowed",
    ),
    "redirect_uris-non-ascii-host": (
        {"redirect_uris": ["https://pysgota.enghraifft.gov.ŵk/callback"]},
        "invalid_redirect_uri",
        "ASCII host name",
    ),
    "redirect_uris-http": (
        {"redirect_uris": ["http://fishing.example.gov.uk/cb"]},
        "invalid_redirect_uri",
        "must use https",
    ),
    "redirect_uris-fragment": (
        {"redirect_uris": [REDIRECT + "#top"]},
        "invalid_redirect_uri",
        "must not have a fragment",
    ),
    "redirect_uris-wildcard-host": (
        {"redirect_uris": ["https://*.example.gov.uk/cb"]},
        "invalid_redirect_uri",
        "wildcard",
    ),
    "redirect_uris-wildcard-path": (
        {"redirect_uris": ["https://fishing.example.gov.uk/*"]},
        "invalid_redirect_uri",
        "wildcard",
    ),
    "redirect_uris-relative": (
        {"redirect_uris": ["/callback"]},
        "invalid_redirect_uri",
        "absolute",
    ),
    "redirect_uris-userinfo": (
        {"redirect_uris": ["https://user:pass@fishing.example.gov.uk/cb"]},
        "invalid_redirect_uri",
        "user name or password",
    ),
    "redirect_uris-javascript": (
        {"redirect_uris": ["javascript:alert(1)"]},
        "invalid_redirect_uri",
        "absolute",
    ),
    "redirect_uris-custom-scheme": (
        {"redirect_uris": ["uk.gov.fishing:/callback"]},
        "invalid_redirect_uri",
        "absolute",
    ),
    "redirect_uris-space": (
        {"redirect_uris": ["https://fishing.example.gov.uk/call back"]},
        "invalid_redirect_uri",
        "spaces",
    ),
    "redirect_uris-not-text": ({"redirect_uris": [42]}, "invalid_redirect_uri", "must be a URI"),
    "redirect_uris-duplicate": (
        {"redirect_uris": [REDIRECT, REDIRECT]},
        "invalid_redirect_uri",
        "same URI twice",
    ),
    "redirect_uris-21": (
        {"redirect_uris": [f"https://fishing.example.gov.uk/cb{i}" for i in range(21)]},
        "invalid_redirect_uri",
        "at most 20",
    ),
    # client authentication and keys
    "token_endpoint_auth_method-unknown": (
        {"token_endpoint_auth_method": "client_secret_jwt"},
        "invalid_client_metadata",
        "token_endpoint_auth_method must be one of",
    ),
    "private_key_jwt-without-keys": (
        {"token_endpoint_auth_method": "private_key_jwt"},
        "invalid_client_metadata",
        "jwks_uri or jwks is required",
    ),
    "jwks-and-jwks_uri": (
        {"jwks": "PUBLIC_JWKS", "jwks_uri": "https://fishing.example.gov.uk/jwks.json"},
        "invalid_client_metadata",
        "jwks and jwks_uri must not both be given",
    ),
    "jwks-private-key": ({"jwks": "PRIVATE_JWKS"}, "invalid_client_metadata", "jwks holds private"),
    "jwks-not-a-key-set": (
        {"jwks": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
        "invalid_client_metadata",
        "jwks is not a JWKS document",
    ),
    "jwks-unusable-key": (
        {"jwks": {"keys": [{"kty": "RSA", "n": "not base64!"}]}},
        "invalid_client_metadata",
        "jwks holds a key that cannot be used",
    ),
    "jwks-encryption-key": (
        {"jwks": {"keys": [{**RSAKey.generate_key(2048).as_dict(private=False), "use": "enc"}]}},
        "invalid_client_metadata",
        "every key must be a signing key",
    ),
    "jwks-alg-none": (
        {"jwks": {"keys": [{**RSAKey.generate_key(2048).as_dict(private=False), "alg": "none"}]}},
        "invalid_client_metadata",
        "alg 'none' is not accepted",
    ),
    "jwks-too-many-keys": (
        {"jwks": {"keys": [RSAKey.generate_key(2048).as_dict(private=False)] * 11}},
        "invalid_client_metadata",
        "jwks must hold 1 to 10 keys",
    ),
    "jwks-weak-rsa-key": (
        {"jwks": {"keys": [RSAKey.generate_key(1024).as_dict(private=False)]}},
        "invalid_client_metadata",
        "an RSA key of 1024 bits is too weak",
    ),
    "jwks-unsupported-curve": (
        {"jwks": {"keys": [ECKey.generate_key("secp256k1").as_dict(private=False)]}},
        "invalid_client_metadata",
        "the EC curve secp256k1 is not supported",
    ),
    "jwks-symmetric-key": (
        {"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNoYXJlZC13aXRoLXRoZS1pZHAtMTIzNDU2"}]}},
        "invalid_client_metadata",
        "only RSA and EC public keys",
    ),
    "jwks_uri-http": (
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "http://fishing.example.gov.uk/jwks.json",
        },
        "invalid_client_metadata",
        "jwks_uri: http://fishing.example.gov.uk/jwks.json must use https",
    ),
    # ID tokens and subjects
    "id_token_signed_response_alg-HS256": (
        {"id_token_signed_response_alg": "HS256"},
        "invalid_client_metadata",
        "id_token_signed_response_alg must be one of",
    ),
    "id_token_signed_response_alg-none": (
        {"id_token_signed_response_alg": "none"},
        "invalid_client_metadata",
        "id_token_signed_response_alg must be one of",
    ),
    "subject_type-other": (
        {"subject_type": "ephemeral"},
        "invalid_client_metadata",
        "subject_type must be one of",
    ),
    "pairwise-two-hosts-no-sector": (
        {"redirect_uris": [REDIRECT, "https://licences.example.gov.uk/cb"]},
        "invalid_client_metadata",
        "sector_identifier_uri is required",
    ),
    "sector_identifier_uri-http": (
        {"sector_identifier_uri": "http://fishing.example.gov.uk/sector.json"},
        "invalid_client_metadata",
        "sector_identifier_uri: http://fishing.example.gov.uk/sector.json must use https",
    ),
    # grants, response types and scopes
    "grant_types-implicit": (
        {"grant_types": ["implicit"]},
        "invalid_client_metadata",
        "grant_types must be one of",
    ),
    "grant_types-password": (
        {"grant_types": ["authorization_code", "password"]},
        "invalid_client_metadata",
        "grant_types must be one of",
    ),
    "grant_types-empty": ({"grant_types": []}, "invalid_client_metadata", "grant_types must be"),
    "response_types-token": (
        {"response_types": ["token"]},
        "invalid_client_metadata",
        "response_types must be",
    ),
    "response_types-hybrid": (
        {"response_types": ["code id_token"]},
        "invalid_client_metadata",
        "response_types must be",
    ),
    "scope-without-openid": (
        {"scope": "email profile"},
        "invalid_client_metadata",
        "scope must be a space-separated string containing openid",
    ),
    "scope-unknown": (
        {"scope": "openid address"},
        "invalid_client_metadata",
        "scope: 'address' is not supported",
    ),
    "scope-a-list": ({"scope": ["openid"]}, "invalid_client_metadata", "scope must be"),
    # what citizens are shown
    "client_name-too-long": (
        {"client_name": "x" * 201},
        "invalid_client_metadata",
        "client_name must be text of 1 to 200 characters",
    ),
    "client_name-not-text": (
        {"client_name": 42},
        "invalid_client_metadata",
        "client_name must be text",
    ),
    "client_name-blank": (
        {"client_name": "   "},
        "invalid_client_metadata",
        "client_name must be text",
    ),
    "client_name-control-characters": (
        {"client_name": "Fishing\nlicence"},
        "invalid_client_metadata",
        "client_name must not contain control characters",
    ),
    "client_name-right-to-left-override": (
        {"client_name": "Fishing \u202egnihsif"},
        "invalid_client_metadata",
        "client_name must not contain control characters",
    ),
    "client_name-zero-width-space": (
        {"client_name": "HM\u200bRC"},
        "invalid_client_metadata",
        "client_name must not contain control characters",
    ),
    "client_name-delete-character": (
        {"client_name": "Fishing\x7f"},
        "invalid_client_metadata",
        "client_name must not contain control characters",
    ),
    "logo_uri-http": (
        {"logo_uri": "http://fishing.example.gov.uk/logo.png"},
        "invalid_client_metadata",
        "logo_uri: http://fishing.example.gov.uk/logo.png must use https",
    ),
    "policy_uri-relative": (
        {"policy_uri": "/privacy"},
        "invalid_client_metadata",
        "policy_uri: /privacy is not an absolute",
    ),
    "contacts-not-emails": (
        {"contacts": ["the fishing team"]},
        "invalid_client_metadata",
        "contacts: 'the fishing team' is not an email address",
    ),
    "contacts-a-string": (
        {"contacts": "team@fishing.example.gov.uk"},
        "invalid_client_metadata",
        "contacts must be a list",
    ),
    "contacts-too-many": (
        {"contacts": [f"person{i}@example.gov.uk" for i in range(11)]},
        "invalid_client_metadata",
        "contacts must be a list of at most 10",
    ),
    # sign-out
    "post_logout_redirect_uris-a-string": (
        {"post_logout_redirect_uris": "https://fishing.example.gov.uk/"},
        "invalid_client_metadata",
        "post_logout_redirect_uris must be a non-empty list",
    ),
    "post_logout_redirect_uris-http": (
        {"post_logout_redirect_uris": ["http://fishing.example.gov.uk/"]},
        "invalid_client_metadata",
        "post_logout_redirect_uris: http://fishing.example.gov.uk/ must use https",
    ),
    "backchannel_logout_uri-fragment": (
        {"backchannel_logout_uri": "https://fishing.example.gov.uk/logout#now"},
        "invalid_client_metadata",
        "backchannel_logout_uri: https://fishing.example.gov.uk/logout#now must not have a",
    ),
    "backchannel_logout_session_required-text": (
        {"backchannel_logout_session_required": "yes"},
        "invalid_client_metadata",
        "backchannel_logout_session_required must be true or false",
    ),
    # PKCE
    "require_pkce-false-for-public-client": (
        {"token_endpoint_auth_method": "none", "require_pkce": False},
        "invalid_client_metadata",
        "require_pkce cannot be false for a public client",
    ),
    "require_pkce-text": (
        {"require_pkce": "false"},
        "invalid_client_metadata",
        "require_pkce must be true or false",
    ),
}


def _metadata_with(changes: dict) -> dict:
    """VALID_METADATA with the row's changes (DROP removes a field; key placeholders filled)."""
    metadata = dict(VALID_METADATA)
    for name, value in changes.items():
        if value is DROP:
            metadata.pop(name, None)
        elif value == "PUBLIC_JWKS":
            metadata[name] = {"keys": [make_rsa_key().public_jwk()]}
        elif value == "PRIVATE_JWKS":
            metadata[name] = {"keys": [_private_jwk(make_rsa_key())]}
        else:
            metadata[name] = value
    return metadata


def _private_jwk(key) -> dict:
    """A JWK that carries the private key (d, p, q...), as a careless department might send."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.private_key))
    jwk.update({"kid": key.kid, "use": "sig", "alg": key.alg})
    return jwk


def test_deeply_nested_json_is_refused_not_a_server_error(idp):
    body = '{"redirect_uris": ' + "[" * 20_000 + "]" * 20_000 + "}"
    response = httpx.post(
        f"{idp.issuer}/register",
        content=body,
        headers={
            "Authorization": f"Bearer {issue_token(idp)}",
            "Content-Type": "application/json",
        },
    )
    registration_error(response, 400, "invalid_client_metadata")


def test_registered_keys_are_stored_as_public_keys_only(idp):
    jwk = {**make_rsa_key().public_jwk(), "x-note": "z" * 1000, "x5u": "https://x.example/c"}
    metadata = {
        **VALID_METADATA,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [jwk]},
    }
    response = register(idp, metadata, issue_token(idp))
    assert response.status_code == 201, response.text
    stored = response.json()["jwks"]["keys"][0]
    assert set(stored) <= {"kty", "use", "alg", "kid", "n", "e"}
    assert stored["n"] == jwk["n"]


@pytest.mark.parametrize(
    ("changes", "error", "fragment"), list(BAD_METADATA.values()), ids=list(BAD_METADATA)
)
def test_bad_metadata_is_refused_naming_the_field(idp, changes, error, fragment):
    token = issue_token(idp)
    response = register(idp, _metadata_with(changes), token)
    description = registration_error(response, 400, error)
    assert fragment in description


@pytest.mark.parametrize(
    ("document", "status", "content_type", "fragment"),
    [
        (
            ["https://elsewhere.example.gov.uk/cb"],
            200,
            "application/json",
            "does not list the redirect URI",
        ),
        (b"<html>sector</html>", 200, "text/html", "did not return JSON"),
        (b"not found", 404, "text/plain", "answered HTTP 404"),
        ({"redirect_uris": [REDIRECT]}, 200, "application/json", "must return a JSON array"),
        ([REDIRECT, 7], 200, "application/json", "must return a JSON array"),
    ],
    ids=["not-listing-the-redirect-uri", "not-json", "not-found", "an-object", "not-all-text"],
)
def test_an_unusable_sector_identifier_document_is_refused(
    idp, sector_server, document, status, content_type, fragment
):
    uri = sector_server.serve("/sector.json", document, status=status, content_type=content_type)
    metadata = {**VALID_METADATA, "sector_identifier_uri": uri}
    description = registration_error(
        register(idp, metadata, issue_token(idp)), 400, "invalid_client_metadata"
    )
    assert "sector_identifier_uri" in description
    assert fragment in description
    assert sector_server.paths_requested() == ["/sector.json"]


def test_a_sector_document_listing_every_redirect_uri_allows_pairwise_across_hosts(
    idp, sector_server
):
    second = "https://licences.example.gov.uk/cb"
    uri = sector_server.serve("/sector.json", [REDIRECT, second, "https://other.example/cb"])
    metadata = {**VALID_METADATA, "redirect_uris": [REDIRECT, second], "sector_identifier_uri": uri}
    response = register(idp, metadata, issue_token(idp))
    assert response.status_code == 201, response.text
    assert response.json()["sector_identifier_uri"] == uri


@pytest.mark.parametrize(
    ("content_type", "content", "fragment"),
    [
        ("application/json", b"{not json", "must be a JSON object"),
        (
            "application/json",
            b'[{"redirect_uris": ["https://x.example/cb"]}]',
            "must be a JSON object",
        ),
        ("application/json", b'"text"', "must be a JSON object"),
        ("application/json", b"", "must be a JSON object"),
        ("text/plain", b'{"redirect_uris": ["https://x.example/cb"]}', "application/json"),
        (
            "application/x-www-form-urlencoded",
            b"redirect_uris=https://x.example/cb",
            "application/json",
        ),
    ],
    ids=["not-json", "json-array", "json-string", "empty", "text-plain", "form"],
)
def test_a_body_that_is_not_a_json_object_is_refused(idp, content_type, content, fragment):
    response = httpx.post(
        idp.url("/register"),
        content=content,
        headers={"Authorization": f"Bearer {issue_token(idp)}", "Content-Type": content_type},
    )
    assert fragment in registration_error(response, 400, "invalid_client_metadata")


# --- RFC 7592: reading, replacing and deleting a registration -------------------------------


def test_the_registration_access_token_reads_the_registration(idp, registration):
    response = manage("GET", registration)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    expected = {
        k: v
        for k, v in registration.items()
        if k not in {"client_secret", "client_secret_expires_at"}
    }
    assert body == expected
    assert "client_secret" not in body


def test_another_clients_registration_access_token_is_refused(idp, registration):
    other = register(idp, VALID_METADATA, issue_token(idp)).json()
    for method in ("GET", "PUT", "DELETE"):
        body = replacement(registration, client_name="Hijacked") if method == "PUT" else None
        response = manage(method, registration, body, token=other["registration_access_token"])
        registration_error(response, 401, "invalid_token")
    assert manage("GET", registration).json()["client_name"] == VALID_METADATA["client_name"]


@pytest.mark.parametrize(
    "token",
    ["initial-access-token", "client-secret", "random"],
)
def test_only_the_registration_access_token_manages_a_registration(idp, registration, token):
    value = {
        "initial-access-token": issue_token(idp),
        "client-secret": registration["client_secret"],
        "random": secrets.token_urlsafe(32),
    }[token]
    registration_error(manage("GET", registration, token=value), 401, "invalid_token")


def test_managing_without_a_token_gets_a_bare_bearer_challenge(idp, registration):
    response = httpx.get(registration["registration_client_uri"])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="registration"'


def test_put_replaces_the_whole_registration(idp, registration):
    body = replacement(registration, client_name="Renew a fishing licence", contacts=None)
    body["redirect_uris"] = [REDIRECT, "https://fishing.example.gov.uk/renew/callback"]

    response = manage("PUT", registration, body)

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    updated = response.json()
    assert updated["client_name"] == "Renew a fishing licence"
    assert updated["redirect_uris"] == body["redirect_uris"]
    assert "contacts" not in updated  # left out of the PUT, so removed
    assert "client_secret" not in updated  # unchanged, so not shown again
    # RFC 7592 3: each change comes with a new registration access token; the old one ends.
    assert updated["registration_access_token"] != registration["registration_access_token"]
    registration_error(manage("GET", registration), 401, "invalid_token")
    assert manage("GET", {**registration, **updated}).json() == updated


def test_a_material_change_sends_an_approved_service_back_for_approval(idp, make_citizen):
    registration = register(idp, VALID_METADATA, issue_token(idp, pre_approved=True)).json()
    body = replacement(registration, redirect_uris=["https://fishing.example.gov.uk/elsewhere"])

    updated = manage("PUT", registration, body)

    assert updated.status_code == 200, updated.text
    page = httpx.get(
        f"{idp.issuer}/authorize",
        params={
            "client_id": registration["client_id"],
            "redirect_uri": "https://fishing.example.gov.uk/elsewhere",
            "response_type": "code",
            "scope": "openid",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 403
    assert "waiting for approval" in page.text
    assert "Location" not in page.headers


def test_rotating_keys_does_not_need_approval_again(idp):
    key, new_key = make_rsa_key(), make_rsa_key()
    metadata = {
        **VALID_METADATA,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_jwk()]},
    }
    registration = register(idp, metadata, issue_token(idp, pre_approved=True)).json()
    body = replacement(registration, jwks={"keys": [new_key.public_jwk()]})

    response = manage("PUT", registration, body)

    assert response.status_code == 200, response.text
    with idp.app.app_context():
        from idp.models.client import find_client

        assert find_client(registration["client_id"]).status == "active"


def test_a_suspended_service_cannot_change_or_delete_its_registration(idp):
    registration = register(idp, VALID_METADATA, issue_token(idp, pre_approved=True)).json()
    with idp.app.app_context():
        from idp.departments.services import change_client_status
        from idp.models.client import find_client

        change_client_status(
            find_client(registration["client_id"]), "suspend", actor="test", platform_admin=True
        )
    put = manage("PUT", registration, replacement(registration, client_name="Renamed"))
    delete = manage("DELETE", registration)

    assert registration_error(put, 403, "access_denied").startswith("this service is suspended")
    assert registration_error(delete, 403, "access_denied").startswith("this service is suspended")
    assert manage("GET", registration).json()["client_name"] == VALID_METADATA["client_name"]


def test_put_with_the_current_client_secret_is_accepted(idp, registration):
    body = replacement(registration, client_secret=registration["client_secret"], client_name="New")
    response = manage("PUT", registration, body)
    assert response.status_code == 200, response.text
    assert response.json()["client_name"] == "New"


def test_switching_to_a_secret_method_issues_a_secret_once(idp):
    key = make_rsa_key()
    metadata = {
        **VALID_METADATA,
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [key.public_jwk()]},
    }
    registration = register(idp, metadata, issue_token(idp)).json()
    assert "client_secret" not in registration

    body = replacement(registration, token_endpoint_auth_method="client_secret_post", jwks=None)
    response = manage("PUT", registration, body)

    assert response.status_code == 200, response.text
    assert len(response.json()["client_secret"]) >= 32
    assert "client_secret" not in manage("GET", registration).json()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"client_id": None}, "client_id is required"),
        ({"client_id": "someone-else"}, "client_id is required and must be this client's id"),
        ({"registration_access_token": "x"}, "registration_access_token is assigned by the IdP"),
        ({"registration_client_uri": "https://x.example/"}, "registration_client_uri is assigned"),
        ({"client_id_issued_at": 0}, "client_id_issued_at is assigned by the IdP"),
        ({"client_secret_expires_at": 0}, "client_secret_expires_at is assigned by the IdP"),
        ({"client_secret": "not-the-secret"}, "client_secret does not match"),
    ],
    ids=[
        "no-client_id",
        "other-client_id",
        "registration_access_token",
        "registration_client_uri",
        "client_id_issued_at",
        "client_secret_expires_at",
        "wrong-client_secret",
    ],
)
def test_a_malformed_put_is_invalid_request_and_changes_nothing(
    idp, registration, change, fragment
):
    before = manage("GET", registration).json()
    body = replacement(registration, client_name="Changed")
    for name, value in change.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value

    response = manage("PUT", registration, body)

    assert fragment in registration_error(response, 400, "invalid_request")
    assert manage("GET", registration).json() == before


@pytest.mark.parametrize(
    ("change", "error", "fragment"),
    [
        (
            {"redirect_uris": ["http://fishing.example.gov.uk/cb"]},
            "invalid_redirect_uri",
            "redirect_uris:",
        ),
        ({"redirect_uris": None}, "invalid_redirect_uri", "redirect_uris is required"),
        ({"scope": "email"}, "invalid_client_metadata", "scope must"),
        (
            {"token_endpoint_auth_method": "private_key_jwt"},
            "invalid_client_metadata",
            "jwks_uri or jwks",
        ),
    ],
    ids=["http-redirect", "no-redirect_uris", "scope-without-openid", "keys-missing"],
)
def test_a_put_with_bad_metadata_names_the_field_and_keeps_the_registration(
    idp, registration, change, error, fragment
):
    before = manage("GET", registration).json()
    body = replacement(registration, **{k: v for k, v in change.items() if v is not None})
    for name in [k for k, v in change.items() if v is None]:
        body.pop(name)

    response = manage("PUT", registration, body)

    assert fragment in registration_error(response, 400, error)
    assert manage("GET", registration).json() == before


def test_put_refuses_a_body_that_is_not_json(idp, registration):
    response = httpx.put(
        registration["registration_client_uri"],
        content=b"client_name=x",
        headers={
            "Authorization": f"Bearer {registration['registration_access_token']}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    registration_error(response, 400, "invalid_client_metadata")


def test_delete_ends_the_registration_and_everything_issued_to_it(idp, browser, citizen):
    registration = register(idp, VALID_METADATA, issue_token(idp, pre_approved=True)).json()
    client = registered_client(idp, registration)
    _, redeemed = sign_in_and_redeem(client, browser, citizen)
    access_token = redeemed.json()["access_token"]
    pending_attempt = client.authorization()
    pending_code = browser.authorize(pending_attempt.url).params["code"]

    response = manage("DELETE", registration)

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["cache-control"] == "no-store"
    assert_oauth_error(
        client.token_request(pending_code, pending_attempt.code_verifier), 401, "invalid_client"
    )
    assert userinfo(idp, access_token).status_code == 401
    registration_error(manage("GET", registration), 401, "invalid_token")
    registration_error(manage("DELETE", registration), 401, "invalid_token")
    page = browser.get(client.authorization().url)
    assert page.status_code == 400
    assert "not registered" in page.text

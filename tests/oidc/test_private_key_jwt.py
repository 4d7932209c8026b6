"""private_key_jwt client authentication (RFC 7523 2.2, 3; OIDC Core 9) at the token endpoint."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import jwt
import pytest

from tests.support.oauth_errors import assert_oauth_error
from tests.support.oidc_client import DepartmentClient, SigningKeyPair, make_ec_key, make_rsa_key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ID = "dept-jwt"
REDIRECT_URI = "https://dept-jwt.example.gov.uk/callback"


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(client: DepartmentClient, **overrides) -> dict:
    """The claims a department library puts in an assertion; None removes a claim."""
    now = int(time.time())
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": f"{client.issuer}/token",
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(
    client: DepartmentClient,
    key: SigningKeyPair | None = None,
    *,
    kid: bool | str = False,
    **claim_overrides,
) -> str:
    """An assertion signed with the key (the client's own by default), with or without kid."""
    key = key or client.private_key
    headers = {}
    if kid:
        headers["kid"] = key.kid if kid is True else kid
    return jwt.encode(
        claims_for(client, **claim_overrides),
        key.private_key,
        algorithm=key.alg,
        headers=headers or None,
    )


def token_request(client: DepartmentClient, assertion: str, code: str = "no-such-code", **extra):
    """A code exchange authenticated by the assertion only."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
    return httpx.post(f"{client.issuer}/token", data=data)


def assert_authenticated_and_tokens_issued(client, issue_code, make_assertion) -> dict:
    """A real exchange with the assertion: 200 and an ID token for this department."""
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier, assertion=make_assertion(client))
    assert response.status_code == 200, response.text
    claims = client.validate_id_token(response.json()["id_token"], attempt.nonce)
    assert claims["aud"] == CLIENT_ID
    return claims


def assert_invalid_client(response: httpx.Response) -> str:
    """401 invalid_client with a Basic challenge; returns the description."""
    body = assert_oauth_error(response, 401, "invalid_client")
    assert "www-authenticate" in response.headers
    return body.get("error_description", "")


@pytest.fixture
def department(make_client) -> DepartmentClient:
    """A department registered for private_key_jwt with its RSA public key by value (with kid)."""
    return make_client(CLIENT_ID, auth_method="private_key_jwt", redirect_uri=REDIRECT_URI)


# Accepted assertions.

ACCEPTED = {
    "no-kid": lambda c: sign(c),
    "kid": lambda c: sign(c, kid=True),
    "aud-issuer": lambda c: sign(c, aud=c.issuer),
    "aud-token-endpoint": lambda c: sign(c, aud=f"{c.issuer}/token"),
    "aud-list-with-issuer": lambda c: sign(c, aud=["https://elsewhere.example", c.issuer]),
    "lifetime-3600s": lambda c: sign(c, exp=int(time.time()) + 3600),
    "no-iat": lambda c: sign(c, iat=None),
}


@pytest.mark.parametrize("make_assertion", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_assertion_gets_tokens(department, issue_code, make_assertion):
    assert_authenticated_and_tokens_issued(department, issue_code, make_assertion)


def test_an_ec_key_works(make_client, issue_code):
    key = make_ec_key()
    client = make_client(
        CLIENT_ID,
        auth_method="private_key_jwt",
        redirect_uri=REDIRECT_URI,
        jwks={"keys": [key.public_jwk()]},
    )
    client.private_key = key
    assert_authenticated_and_tokens_issued(client, issue_code, lambda c: sign(c, kid=True))


def test_a_kid_is_optional_in_the_registered_keys(make_client, issue_code):
    """Keys registered without kid are tried when a library puts a kid in the header."""
    key = make_rsa_key()
    public = {k: v for k, v in key.public_jwk().items() if k != "kid"}
    client = make_client(
        CLIENT_ID, auth_method="private_key_jwt", redirect_uri=REDIRECT_URI, jwks={"keys": [public]}
    )
    client.private_key = key
    assert_authenticated_and_tokens_issued(client, issue_code, lambda c: sign(c, kid=True))


# Refused assertions: each is invalid_client, 401, never a 500.


def _unsigned(client: DepartmentClient) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims_for(client)).encode())}."


def _hs256(client: DepartmentClient) -> str:
    return jwt.encode(claims_for(client), "a shared secret nobody registered", algorithm="HS256")


def sign_claims(client: DepartmentClient, claims: dict) -> str:
    """Sign any JSON payload, even claims a JWT library would refuse to build."""
    payload = json.dumps(claims).encode()
    return jwt.api_jws.encode(payload, client.private_key.private_key, algorithm="RS256")


def _raw(header: object, payload: object) -> str:
    return ".".join(
        [b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), "c2ln"]
    )


REFUSED = {
    "aud-elsewhere": lambda c: sign(c, aud="https://elsewhere.example/token"),
    "aud-issuer-with-path": lambda c: sign(c, aud=c.issuer + "/"),
    "aud-missing": lambda c: sign(c, aud=None),
    "aud-not-a-string": lambda c: sign(c, aud=42),
    "lifetime-one-day": lambda c: sign(c, exp=int(time.time()) + 86400),
    "issued-ten-hours-ago-lifetime-too-long": lambda c: sign(
        c, iat=int(time.time()) - 36000, exp=int(time.time()) + 3000
    ),
    "expired": lambda c: sign(c, iat=int(time.time()) - 900, exp=int(time.time()) - 600),
    "exp-missing": lambda c: sign(c, exp=None),
    "exp-a-string": lambda c: sign(c, exp=str(int(time.time()) + 300)),
    # Python's json accepts NaN and Infinity: they must neither slip through nor crash.
    "exp-not-a-number": lambda c: sign_claims(c, claims_for(c, exp=float("nan"))),
    "exp-infinite": lambda c: sign_claims(c, claims_for(c, exp=float("inf"))),
    "iat-not-a-number": lambda c: sign_claims(c, claims_for(c, iat=float("nan"))),
    "nbf-a-string": lambda c: sign_claims(c, claims_for(c, nbf="now")),
    "iat-in-the-future": lambda c: sign(c, iat=int(time.time()) + 600, exp=int(time.time()) + 900),
    "nbf-in-the-future": lambda c: sign(c, nbf=int(time.time()) + 600),
    "jti-missing": lambda c: sign(c, jti=None),
    "iss-not-sub": lambda c: sign(c, iss="someone-else"),
    "iss-missing": lambda c: sign(c, iss=None),
    "sub-missing": lambda c: sign(c, sub=None),
    "sub-not-a-string": lambda c: sign_claims(c, claims_for(c, sub=12345, iss=12345)),
    "sub-unknown-client": lambda c: sign(c, sub="no-such-dept", iss="no-such-dept"),
    "sub-with-nul": lambda c: sign(c, sub="dept-jwt\x00", iss="dept-jwt\x00"),
    "unregistered-key": lambda c: sign(c, make_rsa_key()),
    "unregistered-key-with-unknown-kid": lambda c: sign(c, make_rsa_key(), kid=True),
    "unregistered-key-claiming-registered-kid": lambda c: sign(
        c, make_rsa_key(), kid=c.private_key.kid
    ),
    "unregistered-ec-key": lambda c: sign(c, make_ec_key()),
    "alg-none": _unsigned,
    "alg-hs256": _hs256,
    "not-a-jwt": lambda c: "not-a-jwt",
    "three-garbage-parts": lambda c: "a.b.c",
    "header-not-json": lambda c: "bm90IGpzb24." + b64url(b"{}") + ".c2ln",
    "header-a-list": lambda c: _raw(["RS256"], claims_for(c)),
    "payload-a-list": lambda c: _raw({"alg": "RS256"}, ["iss", "sub"]),
    "alg-a-list": lambda c: _raw({"alg": ["RS256"]}, claims_for(c)),
    "kid-an-object": lambda c: _raw({"alg": "RS256", "kid": {"a": 1}}, claims_for(c)),
    "very-long": lambda c: "a" * 40000,
}


@pytest.mark.parametrize("make_assertion", REFUSED.values(), ids=REFUSED.keys())
@pytest.mark.both_databases
def test_refused_assertion_is_invalid_client(department, make_assertion):
    assert_invalid_client(token_request(department, make_assertion(department)))


def test_a_secret_client_cannot_use_private_key_jwt(make_client):
    secret_client = make_client("dept-a")
    secret_client.private_key = make_rsa_key()
    assert_invalid_client(token_request(secret_client, sign(secret_client)))


def test_a_private_key_jwt_client_cannot_use_a_secret(department):
    response = httpx.post(
        f"{department.issuer}/token",
        data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, "a guessed secret that is long enough to look real"),
    )
    assert_invalid_client(response)


def test_wrong_assertion_type_is_not_authentication(department):
    response = token_request(
        department, sign(department), client_assertion_type="urn:example:something-else"
    )
    assert_invalid_client(response)


@pytest.mark.both_databases
def test_a_replayed_assertion_is_refused(department, issue_code):
    assertion = sign(department)
    attempt, code = issue_code(department)
    first = department.token_request(code, attempt.code_verifier, assertion=assertion)
    assert first.status_code == 200, first.text
    attempt, code = issue_code(department)
    second = department.token_request(code, attempt.code_verifier, assertion=assertion)
    assert "jti" in assert_invalid_client(second)


def test_the_same_jti_from_another_department_is_not_a_replay(department, make_client, issue_code):
    other = make_client(
        "dept-jwt-2", auth_method="private_key_jwt", redirect_uri="https://two.example/cb"
    )
    jti = uuid.uuid4().hex
    assert_authenticated_and_tokens_issued(department, issue_code, lambda c: sign(c, jti=jti))
    attempt, code = issue_code(other)
    response = other.token_request(code, attempt.code_verifier, assertion=sign(other, jti=jti))
    assert response.status_code == 200, response.text


# Keys published at a jwks_uri.


@pytest.fixture
def jwks_department(make_client, jwks_server) -> DepartmentClient:
    """A department whose keys live at its own jwks_uri."""
    key = make_rsa_key()
    jwks_server.publish(key.public_jwk())
    client = make_client(
        CLIENT_ID,
        auth_method="private_key_jwt",
        redirect_uri=REDIRECT_URI,
        jwks_uri=jwks_server.url,
    )
    client.private_key = key
    return client


@pytest.mark.parametrize("kid", [True, False], ids=["kid", "no-kid"])
def test_keys_at_a_jwks_uri_work(jwks_department, jwks_server, issue_code, kid):
    assert_authenticated_and_tokens_issued(jwks_department, issue_code, lambda c: sign(c, kid=kid))
    assert_authenticated_and_tokens_issued(jwks_department, issue_code, lambda c: sign(c, kid=kid))
    assert jwks_server.fetches == 1, "the JWKS is cached between requests"


@pytest.mark.parametrize("kid", [True, False], ids=["kid", "no-kid"])
def test_a_rotated_key_is_fetched_and_accepted(
    jwks_department, jwks_server, issue_code, monkeypatch, kid
):
    assert_authenticated_and_tokens_issued(jwks_department, issue_code, lambda c: sign(c, kid=kid))
    # The department rotates long after the IdP last fetched its keys.
    monkeypatch.setattr("idp.oidc.client_keys.MIN_REFETCH_INTERVAL", 0)
    new_key = make_rsa_key()
    jwks_server.publish(new_key.public_jwk())
    jwks_department.private_key = new_key
    assert_authenticated_and_tokens_issued(jwks_department, issue_code, lambda c: sign(c, kid=kid))
    assert jwks_server.fetches == 2


def test_unknown_kids_do_not_make_the_idp_fetch_again_and_again(jwks_department, jwks_server):
    assert_invalid_client(token_request(jwks_department, sign(jwks_department, kid=True)[:-4]))
    assert jwks_server.fetches == 1
    for _ in range(5):
        stranger = make_rsa_key()
        assert_invalid_client(token_request(jwks_department, sign(jwks_department, stranger)))
        assert_invalid_client(
            token_request(jwks_department, sign(jwks_department, stranger, kid=True))
        )
    assert jwks_server.fetches == 1


def test_an_unreachable_jwks_uri_is_invalid_client_with_a_reason(make_client, jwks_server):
    url = jwks_server.url
    jwks_server.close()
    client = make_client(
        CLIENT_ID, auth_method="private_key_jwt", redirect_uri=REDIRECT_URI, jwks_uri=url
    )
    client.private_key = make_rsa_key()
    description = assert_invalid_client(token_request(client, sign(client)))
    assert "jwks_uri could not be fetched" in description


@pytest.mark.parametrize(
    ("status", "document", "reason"),
    [
        (500, {"keys": []}, "jwks_uri answered HTTP 500"),
        (404, {"error": "not found"}, "jwks_uri answered HTTP 404"),
        (200, ["not", "a", "jwks"], "not a JWKS document"),
        (200, {"keys": [{"kty": "RSA"}]}, "cannot be used"),
        (200, {"keys": "none"}, "not a JWKS document"),
    ],
    ids=["500", "404", "json-list", "broken-key", "keys-not-a-list"],
)
def test_a_broken_jwks_uri_is_invalid_client_with_a_reason(
    jwks_department, jwks_server, status, document, reason
):
    jwks_server.status = status
    jwks_server.jwks = document
    description = assert_invalid_client(token_request(jwks_department, sign(jwks_department)))
    assert reason in description


def test_a_jwks_uri_publishing_a_private_key_is_refused(jwks_department, jwks_server):
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(jwks_department.private_key.private_key))
    jwks_server.jwks = {"keys": [jwk]}
    description = assert_invalid_client(token_request(jwks_department, sign(jwks_department)))
    assert "private key material" in description


def test_a_client_id_beside_the_assertion_must_name_the_same_client(department, make_client):
    make_client("another-dept")
    response = token_request(department, sign(department), client_id="another-dept")
    assert "does not match" in assert_invalid_client(response)


def test_a_failing_jwks_uri_is_not_fetched_again_at_once(jwks_department, jwks_server):
    """A broken or slow jwks_uri cannot be made to tie up the IdP request after request."""
    jwks_server.status = 500
    for _ in range(4):
        assert "HTTP 500" in assert_invalid_client(
            token_request(jwks_department, sign(jwks_department))
        )
    assert jwks_server.fetches == 1


def test_a_suspended_client_is_refused_before_its_keys_are_fetched(
    idp, jwks_department, jwks_server
):
    from idp.departments.services import change_client_status
    from idp.models.client import find_client

    with idp.app.app_context():
        change_client_status(
            find_client(jwks_department.client_id), "suspend", actor="test", platform_admin=True
        )
    response = token_request(jwks_department, sign(jwks_department))
    assert_oauth_error(response, 400, "unauthorized_client")
    assert jwks_server.fetches == 0

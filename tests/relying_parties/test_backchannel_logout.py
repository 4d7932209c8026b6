"""OIDC Back-Channel Logout 1.0 at the department services: a logout token from the IdP ends
the sign-ins from that IdP session, and anything else is refused with a reason."""

import base64
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
import stat
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask

from tests.relying_parties.conftest import DEPARTMENTS, SIGN_IN_BUTTON, FakeIdentityProvider
from tests.relying_parties.test_department_app import complete_sign_in

BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ENDPOINT = "/backchannel-logout"
DEPARTMENTS_FILE = Path(__file__).resolve().parents[2] / "config" / "departments.toml"
# The ID token algorithm each sample registered, and so the one its logout tokens use.
REGISTERED_ALGS = {
    "tax": "ES256",
    "driving": "RS256",
    "health": "ES256",
    "benefits": "ES256",
    "council": "ES256",
}


@dataclass
class IdPKey:
    """One of the IdP's signing keys, published in its JWKS by publish()."""

    alg: str
    kid: str
    private_key: Any

    def public_jwk(self) -> dict:
        """The public JWK, as the IdP's JWKS lists it."""
        public_key = self.private_key.public_key()
        algorithm = (
            jwt.algorithms.ECAlgorithm if self.alg == "ES256" else jwt.algorithms.RSAAlgorithm
        )
        return {
            **algorithm.to_jwk(public_key, as_dict=True),
            "kid": self.kid,
            "alg": self.alg,
            "use": "sig",
        }

    def public_pem(self) -> bytes:
        """The public key in PEM, as an attacker would use it for an HMAC secret."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict, **header_changes) -> str:
        """A logout token: typ logout+jwt and this key's kid unless header_changes say else
        (kid=None leaves the kid out, typ=None the typ)."""
        header = {"kid": self.kid, "typ": "logout+jwt", **header_changes}
        if header["kid"] is None:
            del header["kid"]
        return jwt.encode(claims, self.private_key, algorithm=self.alg, headers=header)


def new_ec_key(kid: str | None = None) -> IdPKey:
    """A fresh P-256 key for ES256."""
    return IdPKey(
        "ES256", kid or f"ec-{secrets.token_hex(4)}", ec.generate_private_key(ec.SECP256R1())
    )


def new_rsa_key(kid: str | None = None) -> IdPKey:
    """A fresh 2048-bit RSA key for RS256."""
    return IdPKey(
        "RS256",
        kid or f"rsa-{secrets.token_hex(4)}",
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture(scope="module")
def ec_key() -> IdPKey:
    """The IdP's ES256 key."""
    return new_ec_key()


@pytest.fixture(scope="module")
def rsa_key() -> IdPKey:
    """The IdP's RS256 key."""
    return new_rsa_key()


@pytest.fixture
def stand_in(
    fake_idp: FakeIdentityProvider, ec_key: IdPKey, rsa_key: IdPKey
) -> FakeIdentityProvider:
    """The stand-in IdP, publishing both of its logout token keys in its JWKS."""
    publish(fake_idp, ec_key, rsa_key)
    return fake_idp


def publish(stand_in: FakeIdentityProvider, *keys: IdPKey) -> None:
    """Add keys to the IdP's JWKS."""
    stand_in.published_keys.extend(key.public_jwk() for key in keys)


def key_for(alg: str, ec_key: IdPKey, rsa_key: IdPKey) -> IdPKey:
    """The IdP's key for alg."""
    return ec_key if alg == "ES256" else rsa_key


def logout_claims(
    stand_in: FakeIdentityProvider, app: Flask, sid: str | None = "sid-ended", **changes
):
    """The claims the IdP puts in a logout token for app; a None in changes leaves one out."""
    now = int(time.time())
    claims = {
        "iss": stand_in.issuer,
        "aud": client_id(app),
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "sub": stand_in.CITIZEN_SUB,
        "sid": sid,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        **changes,
    }
    return {name: value for name, value in claims.items() if value is not None}


def client_id(app: Flask) -> str:
    """The client_id the service is registered with (the council's is issued at registration)."""
    return app.extensions["relying_party"].settings.client_id


def hand_signed(header: dict, claims: dict, sign: Callable[[bytes], bytes]) -> str:
    """A JWS built by hand, for what PyJWT refuses to make."""

    def segment(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    signing_input = f"{segment(json.dumps(header).encode())}.{segment(json.dumps(claims).encode())}"
    return f"{signing_input}.{segment(sign(signing_input.encode('ascii')))}"


def hmac_with_public_key(key: IdPKey, claims: dict) -> str:
    """The algorithm confusion attack: HS256 keyed with the IdP's public key."""
    header = {"alg": "HS256", "typ": "logout+jwt", "kid": key.kid}
    return hand_signed(
        header, claims, lambda data: hmac.new(key.public_pem(), data, hashlib.sha256).digest()
    )


def unsigned(key: IdPKey, claims: dict) -> str:
    """alg none: no signature at all."""
    return hand_signed({"alg": "none", "typ": "logout+jwt", "kid": key.kid}, claims, lambda _: b"")


def post_logout(app: Flask, token: str | None = None, **request):
    """The IdP's request: form-encoded logout_token, from a client with no cookies."""
    if token is not None:
        request.setdefault("data", {"logout_token": token})
    return app.test_client().post(ENDPOINT, **request)


def signed_in_browser(app: Flask, stand_in: FakeIdentityProvider, sid: str) -> Any:
    """A browser that has signed in to app in the IdP session sid."""
    browser = app.test_client()
    stand_in.id_token_changes = {"sid": sid}
    response = complete_sign_in(browser, stand_in)
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/account"
    return browser


def is_signed_in(browser) -> bool:
    """Whether the start page greets the browser as signed in."""
    return "You are signed in" in browser.get("/").text


def refusal(response) -> str:
    """The error_description of a refused logout, after checking it is a 400 invalid_request."""
    assert response.status_code == 400, response.text
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["error"] == "invalid_request"
    assert "Traceback" not in response.text
    return body["error_description"]


# What the samples register


def test_every_sample_registers_back_channel_logout_with_the_alg_it_expects():
    samples = tomllib.loads(DEPARTMENTS_FILE.read_text(encoding="utf-8"))["department"]

    assert {sample["service"] for sample in samples} == set(REGISTERED_ALGS)
    for sample in samples:
        metadata = sample["metadata"]
        assert metadata["backchannel_logout_uri"] == f"{{base_url}}{ENDPOINT}"
        assert metadata["backchannel_logout_session_required"] is True
        registered_alg = metadata.get("id_token_signed_response_alg", "ES256")
        assert registered_alg == REGISTERED_ALGS[sample["service"]], sample["service"]


# A logout token ends the sign-in


@pytest.mark.parametrize("kind", DEPARTMENTS)
def test_a_logout_token_ends_the_sign_ins_from_that_idp_session_only(
    signed_up, stand_in, ec_key, rsa_key, kind
):
    app, _ = signed_up(kind)
    ended = signed_in_browser(app, stand_in, "sid-ended")
    kept = signed_in_browser(app, stand_in, "sid-kept")
    key = key_for(REGISTERED_ALGS[kind], ec_key, rsa_key)

    response = post_logout(app, key.sign(logout_claims(stand_in, app, sid="sid-ended")))

    assert response.status_code == 200, response.text
    assert response.data == b""
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    start_page = ended.get("/")
    assert "You are signed in" not in start_page.text
    assert SIGN_IN_BUTTON.search(start_page.text)
    account = ended.get("/account")
    assert account.status_code == 302
    assert account.headers["Location"] == "/"
    assert is_signed_in(kept)
    assert "You are signed in" in kept.get("/account").text


def test_the_signed_out_browser_can_sign_in_again_in_a_new_idp_session(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax")
    browser = signed_in_browser(app, stand_in, "sid-ended")
    assert post_logout(app, ec_key.sign(logout_claims(stand_in, app))).status_code == 200
    assert not is_signed_in(browser)

    stand_in.id_token_changes = {"sid": "sid-new"}
    complete_sign_in(browser, stand_in)

    assert is_signed_in(browser)


def test_a_logout_the_browser_has_not_yet_seen_ends_its_account_page_too(
    signed_up, stand_in, ec_key
):
    app, _ = signed_up("health")
    browser = signed_in_browser(app, stand_in, "sid-ended")

    post_logout(app, ec_key.sign(logout_claims(stand_in, app)))

    # The account page is the first page it loads after the logout.
    assert browser.get("/account").headers["Location"] == "/"
    assert not is_signed_in(browser)


def test_the_audience_may_be_a_list_holding_the_service(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax")
    browser = signed_in_browser(app, stand_in, "sid-ended")

    response = post_logout(app, ec_key.sign(logout_claims(stand_in, app, aud=["other", "tax"])))

    assert response.status_code == 200
    assert not is_signed_in(browser)


def test_typ_may_name_the_full_media_type(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax")

    token = ec_key.sign(logout_claims(stand_in, app), typ="application/logout+JWT")

    assert post_logout(app, token).status_code == 200


def test_a_form_content_type_with_a_charset_is_accepted(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax")
    token = ec_key.sign(logout_claims(stand_in, app))

    response = post_logout(
        app,
        data=f"logout_token={token}",
        content_type="application/x-www-form-urlencoded; charset=utf-8",
    )

    assert response.status_code == 200


# Anything else is refused, and changes nothing


def _claims_case(**changes) -> Callable:
    """A token signed with the right key whose claims have these changes."""
    return lambda stand_in, app, key, other: key.sign(logout_claims(stand_in, app, **changes))


def _times_case(iat: int, exp: int) -> Callable:
    """A token signed with the right key, issued iat and expiring exp seconds from when the
    test runs (not from when the cases were collected, minutes earlier on a slow run)."""

    def sign(stand_in, app, key, other) -> str:
        now = int(time.time())
        return key.sign(logout_claims(stand_in, app, iat=now + iat, exp=now + exp))

    return sign


REFUSED_TOKENS = {
    "bad-signature": (
        lambda stand_in, app, key, other: new_ec_key(key.kid).sign(logout_claims(stand_in, app)),
        "signature does not match the IdP's key",
    ),
    "tampered-claims": (
        lambda stand_in, app, key, other: tampered(
            key.sign(logout_claims(stand_in, app)), sid="sid-kept"
        ),
        "signature does not match the IdP's key",
    ),
    "hs256-with-the-public-key": (
        lambda stand_in, app, key, other: hmac_with_public_key(key, logout_claims(stand_in, app)),
        "must be signed with ES256, not 'HS256'",
    ),
    "alg-none": (
        lambda stand_in, app, key, other: unsigned(key, logout_claims(stand_in, app)),
        "must be signed with ES256, not 'none'",
    ),
    "rs256-for-an-es256-service": (
        lambda stand_in, app, key, other: other.sign(logout_claims(stand_in, app)),
        "must be signed with ES256, not 'RS256'",
    ),
    "typ-jwt": (
        lambda stand_in, app, key, other: key.sign(logout_claims(stand_in, app), typ="JWT"),
        "typ must be logout+jwt, not 'JWT'",
    ),
    "no-typ": (
        lambda stand_in, app, key, other: key.sign(logout_claims(stand_in, app), typ=None),
        "typ must be logout+jwt, not none",
    ),
    "id-token-typ": (
        lambda stand_in, app, key, other: key.sign(
            logout_claims(stand_in, app), typ="id_token+jwt"
        ),
        "typ must be logout+jwt",
    ),
    "no-kid": (
        lambda stand_in, app, key, other: key.sign(logout_claims(stand_in, app), kid=None),
        "names no key (kid)",
    ),
    "unknown-kid": (
        lambda stand_in, app, key, other: new_ec_key("never-published").sign(
            logout_claims(stand_in, app)
        ),
        "the IdP publishes no key 'never-published' (kid)",
    ),
    "kid-of-the-rsa-key": (
        lambda stand_in, app, key, other: key.sign(logout_claims(stand_in, app), kid=other.kid),
        "is not a signing key for ES256",
    ),
    "wrong-iss": (_claims_case(iss="https://attacker.example"), "is not from http://127.0.0.1:"),
    "no-iss": (_claims_case(iss=None), "has no iss claim"),
    "wrong-aud": (_claims_case(aud="another-department"), "is not for tax (aud)"),
    "no-aud": (_claims_case(aud=None), "has no aud claim"),
    "expired": (
        _times_case(iat=-600, exp=-300),
        "has expired (exp)",
    ),
    "no-exp": (_claims_case(exp=None), "has no exp claim"),
    "iat-in-the-future": (
        _times_case(iat=600, exp=720),
        "issued in the future (iat)",
    ),
    "no-iat": (_claims_case(iat=None), "has no iat claim"),
    "iat-not-a-number": (_claims_case(iat="yesterday"), "iat must be a number"),
    "no-events": (_claims_case(events=None), f"events claim has no {BACKCHANNEL_LOGOUT_EVENT}"),
    "another-event": (
        _claims_case(events={"http://schemas.openid.net/event/other": {}}),
        f"events claim has no {BACKCHANNEL_LOGOUT_EVENT} member",
    ),
    "events-not-an-object": (_claims_case(events=[BACKCHANNEL_LOGOUT_EVENT]), "events claim"),
    "event-member-not-an-object": (
        _claims_case(events={BACKCHANNEL_LOGOUT_EVENT: "logout"}),
        "event must be a JSON object",
    ),
    "nonce": (_claims_case(nonce="a-nonce"), "must not contain a nonce"),
    "no-sid": (_claims_case(sid=None), "has no sid claim"),
    "empty-sid": (_claims_case(sid=""), "sid must be a non-empty string"),
    "sid-not-a-string": (_claims_case(sid=1234), "sid must be a non-empty string"),
    "no-jti": (_claims_case(jti=None), "has no jti claim"),
    "not-a-jwt": (
        lambda stand_in, app, key, other: "not-a-jwt",
        "logout_token is not a signed JWT",
    ),
    "an-id-token": (
        lambda stand_in, app, key, other: key.sign(
            logout_claims(stand_in, app, nonce="n", events=None), typ="JWT"
        ),
        "typ must be logout+jwt",
    ),
}


def tampered(token: str, **changes) -> str:
    """The token with its claims changed and the IdP's signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = json.dumps({**claims, **changes}).encode()
    return f"{header}.{base64.urlsafe_b64encode(changed).rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize(
    ("make_token", "reason"), list(REFUSED_TOKENS.values()), ids=list(REFUSED_TOKENS)
)
def test_a_logout_token_that_fails_a_check_is_refused_with_the_reason(
    signed_up, stand_in, ec_key, rsa_key, make_token, reason, caplog
):
    app, _ = signed_up("tax")
    browser = signed_in_browser(app, stand_in, "sid-ended")
    token = make_token(stand_in, app, ec_key, rsa_key)
    caplog.set_level(logging.INFO)

    response = post_logout(app, token)

    assert reason in refusal(response)
    assert is_signed_in(browser)
    # The log names the reason, never the token.
    assert reason in caplog.text
    assert not [part for part in token.split(".") if part and part in caplog.text]


def test_an_es256_token_for_the_rs256_driving_service_is_refused(signed_up, stand_in, ec_key):
    app, _ = signed_up("driving")
    browser = signed_in_browser(app, stand_in, "sid-ended")

    response = post_logout(app, ec_key.sign(logout_claims(stand_in, app)))

    assert "must be signed with RS256, not 'ES256'" in refusal(response)
    assert is_signed_in(browser)


@pytest.mark.parametrize(
    ("request_changes", "reason"),
    [
        ({"data": ""}, "the request has no logout_token"),
        ({}, "must be sent as application/x-www-form-urlencoded"),
        ({"data": {"logout_token": ""}}, "the request has no logout_token"),
        ({"data": {"token": "abc"}}, "the request has no logout_token"),
        ({"data": "logout_token=a.b.c&logout_token=d.e.f"}, "more than one logout_token"),
        (
            {"json": {"logout_token": "a.b.c"}},
            "must be sent as application/x-www-form-urlencoded",
        ),
        (
            {"data": {"logout_token": "a.b.c", "file": (io.BytesIO(b"x"), "x")}},
            "must be sent as application/x-www-form-urlencoded",
        ),
        (
            {"data": {"logout_token": "a" * 20_000}},
            "too large to hold a logout token",
        ),
    ],
    ids=[
        "empty-form",
        "no-body",
        "empty-token",
        "other-field",
        "two-tokens",
        "json",
        "multipart",
        "huge",
    ],
)
def test_a_request_without_one_form_encoded_logout_token_is_refused(
    signed_up, request_changes, reason
):
    app, _ = signed_up("tax")
    if isinstance(request_changes.get("data"), str):
        request_changes["content_type"] = "application/x-www-form-urlencoded"

    response = post_logout(app, **request_changes)

    assert reason in refusal(response)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_only_post_is_accepted(signed_up, stand_in, ec_key, method):
    app, _ = signed_up("tax")
    browser = signed_in_browser(app, stand_in, "sid-ended")
    token = ec_key.sign(logout_claims(stand_in, app))

    response = app.test_client().open(ENDPOINT, method=method, query_string={"logout_token": token})

    assert response.status_code == 405
    assert response.get_json()["error"] == "invalid_request"
    assert f"must be sent with POST, not {method}" in response.get_json()["error_description"]
    assert response.headers["Allow"] == "POST"
    assert is_signed_in(browser)


def test_a_logout_token_is_accepted_only_once(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax")
    token = ec_key.sign(logout_claims(stand_in, app))
    assert post_logout(app, token).status_code == 200
    browser = signed_in_browser(app, stand_in, "sid-new")

    replayed = post_logout(app, token)

    assert "has been used before (jti)" in refusal(replayed)
    assert is_signed_in(browser)


def test_the_same_logout_token_sent_at_once_from_many_threads_is_accepted_once(
    signed_up, stand_in, ec_key
):
    app, _ = signed_up("tax")
    token = ec_key.sign(logout_claims(stand_in, app))
    statuses: list[int] = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        statuses.append(post_logout(app, token).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [200] + [400] * 7


def test_a_service_that_cannot_reach_the_idp_asks_to_be_tried_again(department_app, ec_key):
    app = department_app("tax")
    claims = {
        "iss": "http://127.0.0.1:9",
        "aud": "tax",
        "iat": int(time.time()),
        "exp": int(time.time()) + 120,
        "jti": "jti-1",
        "sid": "sid-ended",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }

    response = post_logout(app, ec_key.sign(claims))

    # Not the token's fault: 503, which the IdP retries (a 400 would be final).
    assert response.status_code == 503
    assert response.get_json()["error"] == "temporarily_unavailable"
    assert "could not fetch the IdP's keys" in response.get_json()["error_description"]
    assert "Traceback" not in response.text


# The IdP's keys


def test_a_new_key_the_idp_publishes_is_fetched_once_and_accepted(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax")
    browser = signed_in_browser(app, stand_in, "sid-ended")
    assert (
        post_logout(app, ec_key.sign(logout_claims(stand_in, app, sid="sid-other"))).status_code
        == 200
    )
    rotated = new_ec_key()
    publish(stand_in, rotated)
    fetches = stand_in.jwks_fetches

    response = post_logout(app, rotated.sign(logout_claims(stand_in, app)))

    assert response.status_code == 200, response.text
    assert stand_in.jwks_fetches == fetches + 1
    assert not is_signed_in(browser)


def test_known_keys_are_not_fetched_again(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax")
    assert (
        post_logout(app, ec_key.sign(logout_claims(stand_in, app, sid="sid-1"))).status_code == 200
    )
    fetches = stand_in.jwks_fetches

    for number in range(2, 5):
        token = ec_key.sign(logout_claims(stand_in, app, sid=f"sid-{number}"))
        assert post_logout(app, token).status_code == 200

    assert stand_in.jwks_fetches == fetches


def test_made_up_kids_do_not_make_the_service_fetch_the_keys_again_and_again(
    signed_up, stand_in, ec_key
):
    app, _ = signed_up("tax")
    assert (
        post_logout(app, ec_key.sign(logout_claims(stand_in, app, sid="sid-1"))).status_code == 200
    )
    fetches = stand_in.jwks_fetches

    first = new_ec_key("made-up-0").sign(logout_claims(stand_in, app))
    assert "publishes no key" in refusal(post_logout(app, first))
    for number in range(1, 5):
        token = new_ec_key(f"made-up-{number}").sign(logout_claims(stand_in, app))
        # Within seconds of a refetch an unknown kid may be a key published meanwhile: the
        # IdP is asked to try again later (503) rather than told no for good.
        response = post_logout(app, token)
        assert response.status_code == 503
        assert response.get_json()["error"] == "temporarily_unavailable"

    assert stand_in.jwks_fetches == fetches + 1


# What the service keeps


def test_ended_sessions_survive_a_restart_of_the_service(
    signed_up, department_app, stand_in, ec_key, tmp_path
):
    instance = tmp_path / "tax-instance"
    settings = {"instance_path": str(instance), "secret_key": "the-same-key-after-a-restart"}
    app, _ = signed_up("tax", **settings)
    ended = signed_in_browser(app, stand_in, "sid-ended")
    kept = signed_in_browser(app, stand_in, "sid-kept")
    token = ec_key.sign(logout_claims(stand_in, app))
    assert post_logout(app, token).status_code == 200

    restarted = department_app("tax", stand_in.issuer, **settings)

    cookie = app.config["SESSION_COOKIE_NAME"]
    assert not is_signed_in(browser_moved_to(restarted, ended, cookie))
    assert is_signed_in(browser_moved_to(restarted, kept, cookie))
    assert "has been used before" in refusal(post_logout(restarted, token))
    [database] = [path for path in instance.iterdir() if path.suffix == ".sqlite3"]
    assert stat.S_IMODE(os.stat(database).st_mode) == 0o600


def browser_moved_to(app: Flask, browser, cookie_name: str):
    """A client of app holding browser's session cookie, as if the service had restarted."""
    moved = app.test_client()
    moved.set_cookie(cookie_name, browser.get_cookie(cookie_name).value)
    return moved


def test_without_an_instance_folder_ended_sessions_are_kept_in_memory(
    signed_up, stand_in, ec_key, tmp_path
):
    app, _ = signed_up("benefits")
    browser = signed_in_browser(app, stand_in, "sid-ended")

    assert post_logout(app, ec_key.sign(logout_claims(stand_in, app))).status_code == 200

    assert not is_signed_in(browser)
    assert not list(tmp_path.rglob("*.sqlite3"))
    assert not list(Path(app.instance_path).glob("*.sqlite3"))


# A service that did not register backchannel_logout_session_required


def test_without_session_required_a_sub_only_token_ends_the_earlier_sign_ins(
    signed_up, stand_in, ec_key
):
    app, _ = signed_up("tax", backchannel_logout_session_required=False)
    earlier = signed_in_browser(app, stand_in, "sid-a")
    other_session = signed_in_browser(app, stand_in, "sid-b")

    response = post_logout(app, ec_key.sign(logout_claims(stand_in, app, sid=None)))

    assert response.status_code == 200, response.text
    later = signed_in_browser(app, stand_in, "sid-c")
    assert not is_signed_in(earlier)
    assert not is_signed_in(other_session)
    assert is_signed_in(later)


def test_without_session_required_a_token_still_needs_a_sid_or_a_sub(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax", backchannel_logout_session_required=False)

    response = post_logout(app, ec_key.sign(logout_claims(stand_in, app, sid=None, sub=None)))

    assert "neither a sid nor a sub" in refusal(response)


def test_a_sub_only_logout_leaves_other_citizens_signed_in(signed_up, stand_in, ec_key):
    app, _ = signed_up("tax", backchannel_logout_session_required=False)
    browser = signed_in_browser(app, stand_in, "sid-a")

    response = post_logout(
        app, ec_key.sign(logout_claims(stand_in, app, sid=None, sub="someone-else"))
    )

    assert response.status_code == 200
    assert is_signed_in(browser)

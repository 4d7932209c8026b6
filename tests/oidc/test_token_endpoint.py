"""The token endpoint (RFC 6749 3.2, 4.1.3, 5.2): what a department sees for each bad request."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote_plus

import httpx
import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import AuthorizationCode
from idp.models.timestamps import utcnow
from tests.support.oauth_errors import assert_oauth_error
from tests.support.oidc_client import AuthorizationAttempt, DepartmentClient


def basic_header(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: form-urlencode id and secret, then HTTP Basic."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def code_form(client: DepartmentClient, attempt: AuthorizationAttempt, code: str) -> dict:
    """A correct code exchange body, without client credentials."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": client.redirect_uri,
        "code_verifier": attempt.code_verifier,
    }


@dataclass
class Exchange:
    """One department, a code issued to it, and a way to post a (changed) exchange."""

    idp: object
    client: DepartmentClient
    attempt: AuthorizationAttempt
    code: str
    issue_code: Callable
    make_client: Callable

    def post(self, form: dict, client: DepartmentClient | None = None) -> httpx.Response:
        """POST the form with the client's own Basic credentials."""
        client = client or self.client
        return httpx.post(
            self.idp.url("/token"),
            data={k: v for k, v in form.items() if v is not None},
            headers={"Authorization": basic_header(client.client_id, client.client_secret)},
        )

    @property
    def form(self) -> dict:
        """The correct exchange of the code."""
        return code_form(self.client, self.attempt, self.code)


@pytest.fixture
def exchange(idp, make_client, issue_code) -> Exchange:
    """A basic-authenticated department holding a fresh code."""
    client = make_client("dept-a")
    attempt, code = issue_code(client)
    return Exchange(idp, client, attempt, code, issue_code, make_client)


def _expire_codes(ex: Exchange) -> None:
    """Test setup: every code of the department is past its lifetime."""
    with ex.idp.app.app_context():
        db.session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.client_id == ex.client.client_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()


def missing_grant_type(ex):
    return ex.post({**ex.form, "grant_type": None})


def unsupported_grant_type(ex):
    return ex.post({**ex.form, "grant_type": "password"})


def refresh_grant_type(ex):
    return ex.post({**ex.form, "grant_type": "refresh_token", "refresh_token": "x" * 43})


def missing_code(ex):
    return ex.post({**ex.form, "code": None})


def unknown_code(ex):
    return ex.post({**ex.form, "code": secrets.token_urlsafe(32)})


def overlong_code(ex):
    return ex.post({**ex.form, "code": "c" * 5000})


def code_with_nul(ex):
    return ex.post({**ex.form, "code": ex.code + "\x00"})


def code_of_another_client(ex):
    other = ex.make_client("dept-b", redirect_uri=ex.client.redirect_uri)
    return ex.post(ex.form, client=other)


def wrong_redirect_uri(ex):
    return ex.post({**ex.form, "redirect_uri": ex.client.redirect_uri + "/other"})


def missing_redirect_uri(ex):
    return ex.post({**ex.form, "redirect_uri": None})


def redirect_uri_with_trailing_slash(ex):
    return ex.post({**ex.form, "redirect_uri": ex.client.redirect_uri + "/"})


def missing_code_verifier(ex):
    return ex.post({**ex.form, "code_verifier": None})


def wrong_code_verifier(ex):
    return ex.post({**ex.form, "code_verifier": secrets.token_urlsafe(48)})


def malformed_code_verifier(ex):
    return ex.post({**ex.form, "code_verifier": "too-short"})


def verifier_without_challenge(ex):
    client = ex.make_client(
        "no-pkce", redirect_uri="https://no-pkce.example.gov.uk/cb", require_pkce=False
    )
    attempt, code = ex.issue_code(client, omit=("code_challenge", "code_challenge_method"))
    form = code_form(client, attempt, code)
    return ex.post({**form, "code_verifier": secrets.token_urlsafe(48)}, client=client)


def expired_code(ex):
    _expire_codes(ex)
    return ex.post(ex.form)


BAD_EXCHANGES = [
    (missing_grant_type, "invalid_request"),
    (unsupported_grant_type, "unsupported_grant_type"),
    # The client did not register the refresh_token grant.
    (refresh_grant_type, "unauthorized_client"),
    (missing_code, "invalid_request"),
    (unknown_code, "invalid_grant"),
    (overlong_code, "invalid_grant"),
    (code_with_nul, "invalid_grant"),
    (code_of_another_client, "invalid_grant"),
    (wrong_redirect_uri, "invalid_grant"),
    (missing_redirect_uri, "invalid_grant"),
    (redirect_uri_with_trailing_slash, "invalid_grant"),
    (missing_code_verifier, "invalid_request"),
    (wrong_code_verifier, "invalid_grant"),
    (malformed_code_verifier, "invalid_request"),
    # RFC 9700 4.8: a verifier for a code issued without a challenge is refused.
    (verifier_without_challenge, "invalid_request"),
    (expired_code, "invalid_grant"),
]


@pytest.mark.parametrize(
    ("send", "error"), BAD_EXCHANGES, ids=[send.__name__ for send, _ in BAD_EXCHANGES]
)
@pytest.mark.both_databases
def test_bad_code_exchange_gets_the_rfc_6749_error(exchange, send, error):
    response = send(exchange)
    body = assert_oauth_error(response, 400, error)
    assert "access_token" not in body
    assert "id_token" not in body


def test_the_correct_exchange_issues_tokens(exchange):
    response = exchange.post(exchange.form)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] > 0
    assert {"access_token", "id_token", "scope"} <= set(body)


def test_a_code_refused_for_another_client_still_works_for_its_own(exchange):
    other = exchange.make_client("dept-b", redirect_uri=exchange.client.redirect_uri)
    assert_oauth_error(exchange.post(exchange.form, client=other), 400, "invalid_grant")
    assert exchange.post(exchange.form).status_code == 200


def test_get_is_not_allowed(idp):
    response = httpx.get(idp.url("/token"))
    assert response.status_code == 405
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_request"


# Client authentication (RFC 6749 2.3 and 5.2): always 401 with WWW-Authenticate.


def _no_authentication(ex):
    return httpx.post(ex.idp.url("/token"), data=ex.form)


def _wrong_secret_basic(ex):
    return httpx.post(
        ex.idp.url("/token"),
        data=ex.form,
        headers={"Authorization": basic_header(ex.client.client_id, "w" * 43)},
    )


def _unknown_client_basic(ex):
    return httpx.post(
        ex.idp.url("/token"),
        data=ex.form,
        headers={"Authorization": basic_header("no-such-dept", ex.client.client_secret)},
    )


def _unknown_client_post(ex):
    form = {**ex.form, "client_id": "no-such-dept", "client_secret": "s" * 43}
    return httpx.post(ex.idp.url("/token"), data=form)


def _basic_client_sends_a_wrong_secret_by_post(ex):
    # The right secret in the form is accepted too (RFC 6749 2.3.1): a wrong one is not.
    form = {**ex.form, "client_id": ex.client.client_id, "client_secret": "wrong" * 8}
    return httpx.post(ex.idp.url("/token"), data=form)


def _client_id_without_secret(ex):
    return httpx.post(ex.idp.url("/token"), data={**ex.form, "client_id": ex.client.client_id})


def _client_id_with_nul_post(ex):
    form = {**ex.form, "client_id": "dept-a\x00", "client_secret": ex.client.client_secret}
    return httpx.post(ex.idp.url("/token"), data=form)


def _client_id_with_nul_basic(ex):
    return httpx.post(
        ex.idp.url("/token"),
        data=ex.form,
        headers={"Authorization": basic_header("dept-a\x00", ex.client.client_secret)},
    )


def _raw_authorization(value: bytes):
    def send(ex):
        return httpx.post(ex.idp.url("/token"), data=ex.form, headers={"Authorization": value})

    send.__name__ = f"_authorization_{value[:20]!r}"
    return send


BAD_CLIENT_AUTHENTICATION = [
    _no_authentication,
    _wrong_secret_basic,
    _unknown_client_basic,
    _unknown_client_post,
    _basic_client_sends_a_wrong_secret_by_post,
    _client_id_without_secret,
    _client_id_with_nul_post,
    _client_id_with_nul_basic,
    _raw_authorization(b"Basic"),
    _raw_authorization(b"Basic !!!not base64!!!"),
    _raw_authorization(b"Basic " + base64.b64encode(b"dept-a")),
    _raw_authorization(b"Basic " + base64.b64encode(b"\xff\xfe:\xfd")),
    _raw_authorization(b"Basic \xe9t\xe9"),
    _raw_authorization(b"Bearer " + base64.b64encode(b"dept-a:secret")),
]


@pytest.mark.parametrize(
    "send",
    BAD_CLIENT_AUTHENTICATION,
    ids=[send.__name__.lstrip("_") for send in BAD_CLIENT_AUTHENTICATION],
)
@pytest.mark.both_databases
def test_failed_client_authentication_is_invalid_client_401(exchange, send):
    response = send(exchange)
    assert_oauth_error(response, 401, "invalid_client")
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Basic "), challenge
    assert 'error="invalid_client"' in challenge
    # The failed attempt did not use up the code.
    assert exchange.post(exchange.form).status_code == 200


def test_client_secret_post_client_sending_basic_is_accepted(idp, make_client, issue_code):
    """RFC 6749 2.3.1: the server MUST support Basic for any client with a password."""
    client = make_client("dept-post", auth_method="client_secret_post")
    attempt, code = issue_code(client)
    response = httpx.post(
        idp.url("/token"),
        data=code_form(client, attempt, code),
        headers={"Authorization": basic_header(client.client_id, client.client_secret)},
    )
    assert response.status_code == 200, response.text


def test_client_secret_post_works(idp, make_client, issue_code):
    client = make_client("dept-post", auth_method="client_secret_post")
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    client.validate_id_token(response.json()["id_token"], attempt.nonce)


AWKWARD_CLIENT_ID = "dept:a%41 b+c/é"
AWKWARD_SECRET = "s3cr:t %41+plus/slash=é" + "x" * 16


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_credentials_that_need_form_urlencoding_work(idp, make_client, issue_code, auth_method):
    client = make_client(
        AWKWARD_CLIENT_ID,
        auth_method=auth_method,
        redirect_uri="https://awkward.example/cb",
        client_secret=AWKWARD_SECRET,
    )
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    claims = client.validate_id_token(response.json()["id_token"], attempt.nonce)
    assert claims["aud"] == AWKWARD_CLIENT_ID


def test_basic_credentials_are_form_urlencoded_not_raw(idp, make_client, issue_code):
    """A '+' in an encoded secret is a space (application/x-www-form-urlencoded)."""
    client = make_client("dept-a")
    attempt, code = issue_code(client)
    raw = f"{client.client_id}:{client.client_secret}+"
    response = httpx.post(
        idp.url("/token"),
        data=code_form(client, attempt, code),
        headers={"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()},
    )
    assert_oauth_error(response, 401, "invalid_client")


# Codes are single use (RFC 6749 4.1.2, 10.5).


def test_second_redemption_is_refused_and_revokes_the_first_access_token(exchange):
    first = exchange.post(exchange.form)
    assert first.status_code == 200, first.text
    access_token = first.json()["access_token"]
    userinfo = httpx.get(
        exchange.idp.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"}
    )
    assert userinfo.status_code == 200

    second = exchange.post(exchange.form)
    body = assert_oauth_error(second, 400, "invalid_grant")
    assert "access_token" not in body

    userinfo = httpx.get(
        exchange.idp.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"}
    )
    assert userinfo.status_code == 401
    assert 'error="invalid_token"' in userinfo.headers["www-authenticate"]


def test_get_on_the_token_endpoint_is_405_json_with_allow(idp):
    response = httpx.get(idp.url("/token"))
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert "POST" in response.headers["allow"]

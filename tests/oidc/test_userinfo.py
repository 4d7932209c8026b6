"""The UserInfo endpoint (OIDC Core 5.3, RFC 6750): claims by scope for a bearer token."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import Token
from idp.models.timestamps import utcnow
from tests.support.oauth_errors import ERROR_DESCRIPTION_CHARSET


@pytest.fixture
def tokens_for(issue_code, make_client):
    """Tokens for a department after the citizen agreed to the given scope."""

    def obtain(scope: str = "openid email") -> dict:
        client = make_client("dept-a")
        attempt, code = issue_code(client, scope=scope)
        response = client.token_request(code, attempt.code_verifier)
        assert response.status_code == 200, response.text
        return response.json()

    return obtain


def userinfo(idp, access_token: str, method: str = "GET") -> httpx.Response:
    """Call UserInfo the way OIDC Core 5.3.1 recommends: the token in the header."""
    return httpx.request(
        method, idp.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"}
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_userinfo_answers_get_and_post(idp, tokens_for, citizen, method):
    response = userinfo(idp, tokens_for()["access_token"], method)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "sub": citizen["subject"],
        "email": citizen["email"],
        "email_verified": True,
    }


def test_userinfo_sub_matches_the_id_token(idp, make_client, issue_code):
    client = make_client("dept-a")
    attempt, code = issue_code(client)
    tokens = client.token_request(code, attempt.code_verifier).json()
    claims = client.validate_id_token(tokens["id_token"], attempt.nonce)
    assert userinfo(idp, tokens["access_token"]).json()["sub"] == claims["sub"]


def test_the_bearer_scheme_is_case_insensitive(idp, tokens_for):
    """RFC 7235 2.1: auth-scheme names are case-insensitive."""
    access_token = tokens_for()["access_token"]
    response = httpx.get(idp.url("/userinfo"), headers={"Authorization": f"bearer {access_token}"})
    assert response.status_code == 200, response.text


def test_openid_alone_releases_only_the_subject(idp, tokens_for, citizen):
    response = userinfo(idp, tokens_for("openid")["access_token"])
    assert response.json() == {"sub": citizen["subject"]}


def test_phone_scope_releases_the_phone_number_when_the_citizen_has_one(
    idp, make_citizen, make_client, browser
):
    citizen = make_citizen(
        "phoned@example.com", phone_number="+447700900123", phone_number_verified=True
    )
    client = make_client("dept-a")
    attempt = client.authorization(scope="openid phone")
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    tokens = client.token_request(cb.params["code"], attempt.code_verifier).json()
    assert userinfo(idp, tokens["access_token"]).json() == {
        "sub": citizen["subject"],
        "phone_number": "+447700900123",
        "phone_number_verified": True,
    }


def test_phone_scope_releases_nothing_for_a_citizen_without_a_phone(idp, tokens_for, citizen):
    response = userinfo(idp, tokens_for("openid phone")["access_token"])
    assert response.json() == {"sub": citizen["subject"]}


def test_profile_scope_releases_the_name(idp, make_citizen, make_client, browser):
    citizen = make_citizen("named@example.com", given_name="Ada", family_name="Lovelace")
    client = make_client("dept-a")
    attempt = client.authorization(scope="openid profile email")
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    tokens = client.token_request(cb.params["code"], attempt.code_verifier).json()
    assert userinfo(idp, tokens["access_token"]).json() == {
        "sub": citizen["subject"],
        "email": "named@example.com",
        "email_verified": True,
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
    }


def test_scope_the_client_did_not_register_releases_nothing_more(
    idp, make_client, issue_code, citizen
):
    client = make_client("dept-a", scope="openid email")
    attempt, code = issue_code(client, scope="openid email phone profile")
    tokens = client.token_request(code, attempt.code_verifier).json()
    assert set(userinfo(idp, tokens["access_token"]).json()) == {"sub", "email", "email_verified"}


def _expire_tokens(idp) -> None:
    """Test setup: every access token is past its lifetime."""
    with idp.app.app_context():
        db.session.execute(update(Token).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def assert_invalid_token(response: httpx.Response) -> None:
    """RFC 6750 3.1: 401, a Bearer challenge with error=invalid_token, and the same in JSON."""
    assert response.status_code == 401, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_token"' in challenge
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "invalid_token"
    assert ERROR_DESCRIPTION_CHARSET.match(body["error_description"])


def assert_bearer_challenge_without_error(response: httpx.Response) -> None:
    """RFC 6750 3.1: no authentication information, so a challenge with no error code."""
    assert response.status_code == 401, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer"), challenge
    assert "error=" not in challenge
    assert response.headers["cache-control"] == "no-store"
    assert "Authorization: Bearer" in response.json()["error_description"]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic ZGVwdC1hOnNlY3JldA==", "DPoP some-token"],
    ids=["none", "empty", "scheme-only", "basic", "other-scheme"],
)
def test_without_a_bearer_token_userinfo_is_401_with_a_bare_challenge(idp, method, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = httpx.request(method, idp.url("/userinfo"), headers=headers)
    assert_bearer_challenge_without_error(response)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "authorization", ["Bearer garbage", "Bearer " + "x" * 5000], ids=["garbage", "very-long"]
)
def test_an_unknown_token_is_401_invalid_token(idp, method, authorization):
    response = httpx.request(method, idp.url("/userinfo"), headers={"Authorization": authorization})
    assert_invalid_token(response)


def test_expired_token_is_401_invalid_token(idp, tokens_for):
    access_token = tokens_for()["access_token"]
    assert userinfo(idp, access_token).status_code == 200
    _expire_tokens(idp)
    assert_invalid_token(userinfo(idp, access_token))


def test_revoked_token_is_401_invalid_token(idp, make_client, issue_code):
    client = make_client("dept-a")
    attempt, code = issue_code(client)
    access_token = client.token_request(code, attempt.code_verifier).json()["access_token"]
    assert userinfo(idp, access_token).status_code == 200
    # Replaying the code revokes what it issued (RFC 6749 4.1.2).
    assert client.token_request(code, attempt.code_verifier).status_code == 400
    assert_invalid_token(userinfo(idp, access_token))


def assert_invalid_request(response: httpx.Response, names: str) -> None:
    """RFC 6750 3.1: 400 invalid_request, in a Bearer challenge and in JSON, saying why."""
    assert response.status_code == 400, response.text
    challenge = response.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert 'error="invalid_request"' in challenge
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "invalid_request"
    assert names in body["error_description"]
    assert ERROR_DESCRIPTION_CHARSET.match(body["error_description"])


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_in_the_query_string_is_refused_and_says_how_to_send_it(idp, tokens_for, method):
    """RFC 6750 2.3 is not offered (RFC 9700 4.3.2): tokens in URLs leak into logs and
    histories. The department is told where the token goes instead."""
    access_token = tokens_for()["access_token"]
    response = httpx.request(method, idp.url("/userinfo"), params={"access_token": access_token})
    assert_invalid_request(response, "query string")
    assert "Authorization: Bearer" in response.json()["error_description"]
    # Not even beside a valid header.
    response = httpx.request(
        method,
        idp.url("/userinfo"),
        params={"access_token": access_token},
        headers={"Authorization": f"Bearer {access_token}"},
    )
    assert_invalid_request(response, "query string")


def test_token_in_a_form_encoded_post_body_is_accepted(idp, tokens_for, citizen):
    """RFC 6750 2.2: what pyoidc sends by default (and the OpenID certification tests)."""
    access_token = tokens_for()["access_token"]
    response = httpx.post(idp.url("/userinfo"), data={"access_token": access_token})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "sub": citizen["subject"],
        "email": citizen["email"],
        "email_verified": True,
    }


def test_an_unknown_token_in_the_body_is_401_invalid_token(idp):
    assert_invalid_token(httpx.post(idp.url("/userinfo"), data={"access_token": "garbage"}))


def test_a_token_in_the_header_and_in_the_body_is_invalid_request(idp, tokens_for):
    """RFC 6750 2: a client MUST NOT use more than one method in a request."""
    access_token = tokens_for()["access_token"]
    response = httpx.post(
        idp.url("/userinfo"),
        data={"access_token": access_token},
        headers={"Authorization": f"Bearer {access_token}"},
    )
    assert_invalid_request(response, "one method")


def test_a_token_sent_twice_in_the_body_is_invalid_request(idp, tokens_for):
    access_token = tokens_for()["access_token"]
    response = httpx.post(
        idp.url("/userinfo"),
        content=f"access_token={access_token}&access_token={access_token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_invalid_request(response, "once")


@pytest.mark.parametrize("kind", ["json", "multipart"])
def test_a_token_in_any_other_body_is_not_read(idp, tokens_for, kind):
    """RFC 6750 2.2: only a single-part application/x-www-form-urlencoded body carries it."""
    access_token = tokens_for()["access_token"]
    if kind == "json":
        response = httpx.post(idp.url("/userinfo"), json={"access_token": access_token})
    else:
        response = httpx.post(idp.url("/userinfo"), files={"access_token": (None, access_token)})
    assert_bearer_challenge_without_error(response)


def test_the_phone_scope_gives_the_mobile_number_confirmed_for_text_messages(
    idp, tokens_for, citizen
):
    """As GOV.UK One Login: phone_number is the number the citizen confirmed for security codes
    by text message (a code sent to it was typed back), so it is verified."""
    from idp.models import PhoneNumber

    with idp.app.app_context():
        db.session.add(PhoneNumber(citizen_id=citizen["id"], number="+447700900123"))
        db.session.commit()
    claims = userinfo(idp, tokens_for("openid phone")["access_token"]).json()
    assert claims["phone_number"] == "+447700900123"
    assert claims["phone_number_verified"] is True


def test_without_a_confirmed_mobile_the_phone_scope_gives_nothing(idp, tokens_for, citizen):
    claims = userinfo(idp, tokens_for("openid phone")["access_token"]).json()
    assert "phone_number" not in claims and "phone_number_verified" not in claims

"""Failed requests to the machine-facing endpoints are limited per IP address and per client;
successful ones never are (idp/oidc/failure_limits.py).

These run against IdPs beside the shared one, on its database, with the default limits (the
shared test IdP has them raised: its tests send bad requests on purpose).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from idp.security import throttle
from idp.settings import Settings
from tests.conftest import LiveIdP, serve_idp
from tests.oidc.test_token_endpoint import basic_header

pytestmark = pytest.mark.both_databases

DEFAULTS = Settings()
IP_LIMIT = DEFAULTS.endpoint_ip_max_failures
CLIENT_LIMIT = DEFAULTS.endpoint_client_max_failures


def serve(database_url: str, instance: str) -> LiveIdP:
    return serve_idp(
        database_url,
        instance,
        redis_url="",
        endpoint_ip_max_failures=IP_LIMIT,
        endpoint_client_max_failures=CLIENT_LIMIT,
    )


@pytest.fixture(scope="module")
def limited(live_idp, database_url, tmp_path_factory) -> Iterator[tuple[LiveIdP, LiveIdP]]:
    """Two IdPs with the default limits on the shared IdP's database and instance folder (its
    key encryption key: they sign with its keys), as processes behind a balancer."""
    instance = live_idp.app.instance_path
    first, second = serve(database_url, instance), serve(database_url, instance)
    yield first, second
    first.close()
    second.close()


def at(idp: LiveIdP, client):
    """The same department, talking to another IdP process."""
    return dataclasses.replace(client, issuer=idp.issuer, http=httpx.Client(timeout=10))


def access_token(client, issue_code) -> str:
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def assert_slow_down(response: httpx.Response, who: str) -> None:
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= DEFAULTS.endpoint_window_seconds
    body = response.json()
    assert body["error"] == "slow_down"
    assert f"Too many failed requests {who}" in body["error_description"]
    assert response.headers["cache-control"] == "no-store"


def test_300_bad_token_requests_in_a_row_are_stopped_at_the_limit(idp, limited):
    first, _ = limited
    bad = {"grant_type": "authorization_code", "code": "guess", "redirect_uri": "https://x.test"}
    with httpx.Client(timeout=10) as http:
        responses = [
            http.post(
                first.url("/token"),
                data=bad,
                headers={"Authorization": basic_header("nobody", "guessed secret")},
            )
            for _ in range(300)
        ]
    assert [r.status_code for r in responses] == [401] * IP_LIMIT + [429] * (300 - IP_LIMIT)
    assert_slow_down(responses[-1], "from your network")


@pytest.mark.parametrize(
    ("path", "request_kwargs", "refused"),
    [
        ("/userinfo", {"headers": {"Authorization": "Bearer guessed-token"}}, 401),
        ("/register", {"headers": {"Authorization": "Bearer guessed"}, "json": {}}, 401),
    ],
)
def test_bad_tokens_at_userinfo_and_registration_are_limited(
    idp, limited, path, request_kwargs, refused
):
    first, _ = limited
    with httpx.Client(timeout=10) as http:
        statuses = [
            http.post(first.url(path), **request_kwargs).status_code for _ in range(IP_LIMIT)
        ]
        assert statuses == [refused] * IP_LIMIT
        assert_slow_down(http.post(first.url(path), **request_kwargs), "from your network")


def guess(client, endpoint: str, n: int) -> httpx.Response:
    """One wrong guess of a code or token by an authenticated client."""
    if endpoint == "token":
        return client.token_request(f"guessed-code-{n}", "v" * 43)
    return getattr(client, endpoint)(f"guessed-token-{n}")


@pytest.mark.parametrize(
    ("endpoint", "refused"), [("token", 400), ("introspect", 200), ("revoke", 200)]
)
def test_a_client_guessing_codes_or_tokens_is_limited_alone(
    idp, limited, make_client, endpoint, refused
):
    first, _ = limited
    guesser, other = at(first, make_client("dept-guess")), at(first, make_client("dept-other"))
    # RFC 7009 and 7662 answer an unknown token with 200; it is still a failed guess.
    statuses = [guess(guesser, endpoint, n).status_code for n in range(CLIENT_LIMIT)]
    assert statuses == [refused] * CLIENT_LIMIT
    assert_slow_down(guess(guesser, endpoint, CLIENT_LIMIT), "by this client")
    # Another department from the same address is not held up by it.
    assert guess(other, endpoint, 0).status_code == refused


def test_a_client_over_its_limit_still_gets_what_would_succeed(
    idp, limited, make_client, issue_code
):
    # Anyone can send junk ?code= values to a department's callback, which its server then
    # tries to redeem: its failures, however many, must not stop its citizens signing in.
    first, _ = limited
    client = make_client()
    attempt, code = issue_code(client)
    department = at(first, client)
    statuses = [guess(department, "token", n).status_code for n in range(IP_LIMIT + 1)]
    assert statuses == [400] * CLIENT_LIMIT + [429] * (IP_LIMIT + 1 - CLIENT_LIMIT)
    assert_slow_down(guess(department, "token", IP_LIMIT + 1), "by this client")
    # A real code from a citizen's sign-in is still redeemed, from the same server.
    response = department.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    assert department.introspect(response.json()["access_token"]).json()["active"] is True


def test_naming_a_public_client_does_not_lock_it_out(idp, limited, make_client, issue_code):
    # A public client proves nothing at /token: naming it is all anyone can do, so its
    # failures count against the IP address they come from, never against the client.
    first, _ = limited
    public = make_client("dept-public", auth_method="none")
    bad = {
        "grant_type": "authorization_code",
        "code": "guess",
        "client_id": public.client_id,
        "redirect_uri": public.redirect_uri,
        "code_verifier": "v" * 43,
    }
    with httpx.Client(timeout=10) as http:
        statuses = [http.post(first.url("/token"), data=bad).status_code for _ in range(IP_LIMIT)]
        assert statuses == [400] * IP_LIMIT
        # The address that sent them is stopped...
        assert_slow_down(http.post(first.url("/token"), data=bad), "from your network")
    # ...and the department's citizens elsewhere are not: the client has no limit of its own.
    with first.app.app_context():
        throttled = throttle.check_endpoint("192.0.2.1", public.client_id)
    assert throttled.allowed
    attempt, code = issue_code(public)
    assert public.token_request(code, attempt.code_verifier).status_code == 200


def test_good_requests_are_never_limited(idp, limited, make_client, issue_code):
    first, _ = limited
    client = make_client()
    token = access_token(client, issue_code)
    busy = at(first, client)
    for _ in range(3 * IP_LIMIT):
        response = busy.introspect(token)
        assert response.status_code == 200 and response.json()["active"] is True


def test_bad_credentials_in_a_departments_name_do_not_lock_it_out(
    idp, limited, make_client, issue_code
):
    first, _ = limited
    client = make_client()
    token = access_token(client, issue_code)
    with httpx.Client(timeout=10) as http:
        for _ in range(IP_LIMIT - 5):
            refused = http.post(
                first.url("/introspect"),
                data={"token": token},
                headers={"Authorization": basic_header(client.client_id, "guessed secret")},
            )
            assert refused.status_code == 401
    assert at(first, client).introspect(token).json()["active"] is True


def test_the_counts_are_shared_by_every_idp_process(idp, limited):
    first, second = limited
    with httpx.Client(timeout=10) as http:
        for n in range(IP_LIMIT):
            idp_process = first if n % 2 else second
            response = http.get(idp_process.url("/userinfo"), headers={"Authorization": "Bearer x"})
            assert response.status_code == 401
        assert_slow_down(
            http.get(first.url("/userinfo"), headers={"Authorization": "Bearer x"}),
            "from your network",
        )

"""Code redemption under pressure: concurrent replays, failed attempts, suspended services."""

from __future__ import annotations

import threading

import httpx
import pytest
from sqlalchemy import update

from idp.extensions import db
from idp.models import Client

pytestmark = pytest.mark.both_databases


def redeem_twice_at_once(client, attempt, code) -> list[httpx.Response]:
    """Two token requests with the same code, at the same moment."""
    barrier = threading.Barrier(2)
    results: list[httpx.Response] = []

    def redeem():
        barrier.wait()
        with httpx.Client(timeout=30) as http:
            client_copy = type(client)(**{**client.__dict__, "http": http})
            results.append(client_copy.token_request(code, attempt.code_verifier))

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_code_redeemed_twice_at_once_leaves_no_working_token(idp, make_client, issue_code):
    client = make_client()
    for _ in range(4):
        attempt, code = issue_code(client)
        results = redeem_twice_at_once(client, attempt, code)
        statuses = sorted(r.status_code for r in results)
        assert statuses == [200, 400], [r.text for r in results]
        winner = next(r for r in results if r.status_code == 200)
        loser = next(r for r in results if r.status_code == 400)
        assert loser.json()["error"] == "invalid_grant"
        userinfo = httpx.get(
            idp.url("/userinfo"),
            headers={"Authorization": f"Bearer {winner.json()['access_token']}"},
        )
        assert userinfo.status_code == 401, "replay must revoke what the first use issued"


def test_a_failed_redemption_does_not_spend_the_code(idp, make_client, issue_code):
    client = make_client()
    attempt, code = issue_code(client)
    wrong = client.token_request(code, "w" * 43)
    assert wrong.json()["error"] == "invalid_grant"
    right = client.token_request(code, attempt.code_verifier)
    assert right.status_code == 200, right.text


def test_a_suspended_service_cannot_redeem_codes_or_use_tokens(idp, make_client, issue_code):
    client = make_client()
    attempt, code = issue_code(client)
    live_attempt, live_code = issue_code(client)
    access_token = client.token_request(live_code, live_attempt.code_verifier).json()[
        "access_token"
    ]
    with idp.app.app_context():
        db.session.execute(update(Client).values(status="suspended"))
        db.session.commit()
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"
    userinfo = httpx.get(idp.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"})
    assert userinfo.status_code == 401

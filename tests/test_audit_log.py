"""The audit lines: one JSON object per event, and never a credential."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tests.support.browser import CitizenBrowser


@pytest.fixture
def audit_lines():
    """Everything the IdP logs while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("idp")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_whole_journey_logs_events_but_never_credentials(
    idp, make_citizen, make_client, audit_lines
):
    citizen = make_citizen(password="canary-password-6f1c")
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    # A failed attempt first, with a canary wrong password.
    page = browser.follow(browser.get(client.authorization().url))
    browser.submit(page, {"email": citizen["email"], "password": "canary-wrong-password-9d2e"})
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    tokens = client.token_request(cb.params["code"], attempt.code_verifier).json()
    replay = client.token_request(cb.params["code"], attempt.code_verifier)
    assert replay.json()["error"] == "invalid_grant"
    bad_secret = client.http.post(
        idp.url("/token"),
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": client.client_id,
            "client_secret": "canary-client-secret-77aa",
            "redirect_uri": client.redirect_uri,
        },
    )
    assert bad_secret.status_code == 401

    text = audit_lines.getvalue()
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    for secret in (
        citizen["password"],
        "canary-wrong-password-9d2e",
        "canary-client-secret-77aa",
        client.client_secret,
        cb.params["code"],
        tokens["access_token"],
        tokens["id_token"],
        attempt.code_verifier,
    ):
        assert secret not in text
    recorded = {event["event"] for event in events}
    assert {
        "sign_in.failed",
        "sign_in.succeeded",
        "consent.given",
        "authorization_code.issued",
        "token.issued",
        "authorization_code.replayed",
        "token.failed",
    } <= recorded
    failure = next(e for e in events if e["event"] == "sign_in.failed")
    assert failure["outcome"] == "failure"
    assert failure["reason"] == "wrong password"
    assert failure["citizen_id"] is not None
    assert citizen["email"] not in json.dumps(failure)

"""The audit lines: one JSON object per event on standard output, the same as the entry stored
in the audit table, and never a credential. (tests/audit/test_completeness.py checks that every
security event is recorded, and what each entry holds.)"""

from __future__ import annotations

import pytest

from tests.support.audit import captured_log, logged_events, stored_entries
from tests.support.browser import CitizenBrowser

# What a line and its stored entry both hold (the chain's hashes are the table's own).
SHARED = (
    "event",
    "outcome",
    "reason",
    "citizen_id",
    "client_id",
    "session_ref",
    "request_id",
    "level",
    "methods",
    "instance",
    "ip",
    "user_agent",
    "details",
)


@pytest.fixture
def audit_lines():
    """Everything the IdP logs while the test runs."""
    with captured_log() as stream:
        yield stream


def test_a_whole_journey_logs_events_but_never_credentials(
    idp, make_citizen, make_client, audit_lines
):
    citizen = make_citizen(password="canary-password-6f1c")
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    # A failed attempt first, with a canary wrong password.
    page = browser.follow(browser.get(client.authorization().url))
    browser.submit_sign_in(page, citizen["email"], "canary-wrong-password-9d2e")
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
    events = logged_events(text)
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
        "second_factor.succeeded",
        "consent.given",
        "authorization_code.issued",
        "token.issued",
        "authorization_code.replayed",
        "client.authentication_failed",
    } <= recorded
    failure = next(e for e in events if e["event"] == "sign_in.failed")
    assert failure["outcome"] == "failure"
    assert failure["reason"] == "wrong_password"
    assert failure["citizen_id"] == citizen["id"]
    assert citizen["email"] not in text

    # Each line is the entry stored in the audit table, field for field, in the same order.
    stored = stored_entries(idp)
    assert [e["event"] for e in events] == [e["event"] for e in stored]
    for line, entry in zip(events, stored, strict=True):
        assert {name: line[name] for name in SHARED} == {name: entry[name] for name in SHARED}
        assert line["time"] == entry["time"].isoformat()

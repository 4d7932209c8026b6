"""`idp clients delete CLIENT_ID`: what a service was given stops working at once, it leaves
citizens' sessions cleanly, and its audit history stays and still verifies."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from click.testing import CliRunner
from flask.cli import ScriptInfo

from idp.audit.verify import verify_chain
from idp.cli import cli
from idp.extensions import db
from idp.models import (
    AuthorizationCode,
    Client,
    Consent,
    LogoutDelivery,
    RefreshToken,
    SessionClient,
    Token,
)
from idp.models.timestamps import utcnow
from tests.support.audit import stored_entries


def run_cli(idp, *args: str, input: str | None = None):
    """The `idp` command in this process, on the live IdP's app and database."""
    return CliRunner().invoke(
        cli, list(args), obj=ScriptInfo(create_app=lambda: idp.app), input=input
    )


def rows_of(idp, client_id: str) -> dict[str, int]:
    """How many rows of each kind name the client."""
    with idp.app.app_context():
        return {
            model.__name__: db.session.scalar(
                db.select(db.func.count()).select_from(model).filter_by(client_id=client_id)
            )
            for model in (Client, Token, RefreshToken, AuthorizationCode, Consent, SessionClient)
        }


def test_deleting_a_client_ends_what_it_was_given_and_keeps_its_audit_history(
    idp, make_client, issue_code
):
    client = make_client(
        "dept-gone",
        grant_types=["authorization_code", "refresh_token"],
        backchannel_logout_uri="https://dept-gone.example.gov.uk/backchannel-logout",
    )
    attempt, code = issue_code(client)
    tokens = client.token_request(code, attempt.code_verifier).json()
    assert "refresh_token" in tokens, tokens
    _, unused_code = issue_code(client)
    with idp.app.app_context():
        db.session.add(
            # Owed, with its next attempt later (the background worker leaves it alone now).
            LogoutDelivery(
                client_id="dept-gone",
                sid="an-ended-sid",
                sub="s",
                reason="signed_out",
                next_attempt_at=utcnow() + timedelta(hours=1),
            )
        )
        db.session.commit()
    before = rows_of(idp, "dept-gone")
    assert all(before.values()), before
    history = len(stored_entries(idp, client_id="dept-gone"))
    assert history > 0

    # Without --yes it asks; "n" keeps everything.
    kept = run_cli(idp, "clients", "delete", "dept-gone", input="n\n")
    assert kept.exit_code == 1
    assert "dept-gone was not deleted" in kept.stderr
    assert rows_of(idp, "dept-gone") == before

    deleted = run_cli(idp, "clients", "delete", "dept-gone", "--yes", "--json")
    assert deleted.exit_code == 0, deleted.output
    summary = json.loads(deleted.stdout)
    assert summary["client_id"] == "dept-gone"
    assert summary["access_tokens"] == 1 and summary["refresh_tokens"] == 1
    assert summary["logouts_cancelled"] == 1
    assert set(rows_of(idp, "dept-gone").values()) == {0}

    # What it was given no longer works, and a code cannot be redeemed.
    userinfo = httpx.get(
        idp.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401
    refreshed = httpx.post(
        idp.url("/token"),
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(client.client_id, client.client_secret),
    )
    assert refreshed.status_code == 401
    assert client.token_request(unused_code, attempt.code_verifier).status_code == 401
    # The logout owed to it is kept for `idp logouts list`, ended, and never sent.
    with idp.app.app_context():
        delivery = db.session.scalar(db.select(LogoutDelivery).filter_by(client_id="dept-gone"))
        assert (delivery.status, delivery.last_error) == ("failed", "the service was deleted")

    # Its audit history stays (client_id is text), with the deletion, and the chain verifies.
    entries = stored_entries(idp, client_id="dept-gone")
    assert len(entries) > history
    deletion = entries[-1]
    assert deletion["event"] == "client.deleted", [e["event"] for e in entries]
    assert deletion["via"] == "cli" and deletion["refresh_tokens"] == 1
    with idp.app.app_context():
        report = verify_chain()
    assert report.ok, report.problem


def test_deleting_an_unknown_client_is_a_clear_error(idp):
    result = run_cli(idp, "clients", "delete", "nobody-registered-this", "--yes")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: no client with client_id 'nobody-registered-this'"
    assert result.stdout == ""

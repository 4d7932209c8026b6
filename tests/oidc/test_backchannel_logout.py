"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): whenever a session ends, each
department that received tokens in it hears of it from the IdP, in the background."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

from idp.cli import cli
from idp.departments.services import update_registration
from idp.extensions import db
from idp.models import BrowserSession, Client, LogoutAttempt, LogoutDelivery
from idp.models.timestamps import utcnow
from tests.conftest import new_citizen, new_client, serve_idp
from tests.support.audit import stored_entries
from tests.support.browser import CitizenBrowser
from tests.support.logout_receiver import LogoutReceiver

pytestmark = pytest.mark.both_databases

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def receiver():
    """Department A's back-channel logout endpoint."""
    server = LogoutReceiver()
    yield server
    server.close()


def sign_in_at(browser, client, citizen) -> dict:
    """Sign in at the department in this browser; the department's tokens and ID token claims."""
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    tokens = client.token_request(cb.params["code"], attempt.code_verifier).json()
    tokens["claims"] = client.validate_id_token(tokens["id_token"], attempt.nonce)
    return tokens


def sign_out_at_idp(browser, idp) -> None:
    """The citizen presses "Sign out" on the IdP's account page."""
    page = browser.get(idp.url("/"))
    assert browser.submit(page, {}, action="/sign-out").status_code == 200


def verify(token: str, idp, client_id: str) -> tuple[dict, dict]:
    """Check a logout token as an independent department would: PyJWT and the published JWKS."""
    discovery = httpx_get_json(idp.url("/.well-known/openid-configuration"))
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key(header["kid"])
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[header["alg"]],
        audience=client_id,
        issuer=discovery["issuer"],
        options={"require": ["iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"]},
    )
    return header, claims


def httpx_get_json(url: str) -> dict:
    import httpx

    response = httpx.get(url)
    response.raise_for_status()
    return response.json()


def deliveries(idp, **filters) -> list[LogoutDelivery]:
    with idp.app.app_context():
        rows = db.session.scalars(db.select(LogoutDelivery).filter_by(**filters)).all()
        db.session.expunge_all()
        return rows


def attempts(idp, delivery_id: int) -> list[LogoutAttempt]:
    with idp.app.app_context():
        rows = db.session.scalars(
            db.select(LogoutAttempt).filter_by(delivery_id=delivery_id).order_by(LogoutAttempt.id)
        ).all()
        db.session.expunge_all()
        return rows


def wait_until(condition, timeout: float = 15.0):
    """Poll until condition() is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def finished(idp, client_id: str) -> LogoutDelivery | None:
    rows = [d for d in deliveries(idp, client_id=client_id) if d.status != "pending"]
    return rows[0] if rows else None


def test_discovery_announces_back_channel_logout_with_sessions(make_client):
    metadata = make_client().discovery()
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True


def test_signing_out_at_the_idp_sends_a_verifiable_logout_token(
    idp, browser, citizen, make_client, receiver
):
    client = make_client(backchannel_logout_uri=receiver.uri)
    tokens = sign_in_at(browser, client, citizen)
    sign_out_at_idp(browser, idp)
    (received,) = receiver.wait_for(1)
    assert received.content_type == "application/x-www-form-urlencoded"
    header, claims = verify(received.logout_token, idp, client.client_id)
    assert header["typ"] == "logout+jwt"
    assert header["alg"] == "ES256"
    assert claims["sub"] == tokens["claims"]["sub"]
    assert claims["sid"] == tokens["claims"]["sid"]
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert claims["exp"] - claims["iat"] == 120
    delivered = wait_until(lambda: finished(idp, client.client_id))
    assert delivered.status == "delivered"
    assert [a.outcome for a in attempts(idp, delivered.id)] == ["delivered"]


def test_the_token_is_signed_with_the_departments_id_token_algorithm(
    idp, browser, citizen, make_client, receiver
):
    client = make_client(backchannel_logout_uri=receiver.uri, id_token_signed_response_alg="RS256")
    sign_in_at(browser, client, citizen)
    sign_out_at_idp(browser, idp)
    header, claims = verify(receiver.wait_for(1)[0].logout_token, idp, client.client_id)
    assert header["alg"] == "RS256"
    assert claims["aud"] == client.client_id


def test_only_departments_that_received_tokens_in_the_session_are_told(
    idp, browser, citizen, make_client
):
    in_session, never_signed_in, no_uri = LogoutReceiver(), LogoutReceiver(), None
    try:
        a = make_client("dept-a", backchannel_logout_uri=in_session.uri)
        make_client(
            "dept-b",
            redirect_uri="https://dept-b.example.gov.uk/callback",
            backchannel_logout_uri=never_signed_in.uri,
        )
        c = make_client("dept-c", redirect_uri="https://dept-c.example.gov.uk/callback")
        sign_in_at(browser, a, citizen)
        sign_in_at(browser, c, citizen)  # registered no backchannel_logout_uri: nothing to send
        sign_out_at_idp(browser, idp)
        in_session.wait_for(1)
        # A negative wait on the real background worker: nothing to poll for.
        time.sleep(1)  # give the worker time to (wrongly) send more
        assert len(in_session.received) == 1
        assert never_signed_in.received == []
        assert {d.client_id for d in deliveries(idp)} == {"dept-a"}
        del no_uri
    finally:
        in_session.close()
        never_signed_in.close()


def test_a_department_signing_out_tells_the_other_departments(idp, browser, citizen, make_client):
    receiver_a, receiver_b = LogoutReceiver(), LogoutReceiver()
    try:
        a = make_client(
            "dept-a",
            backchannel_logout_uri=receiver_a.uri,
            post_logout_redirect_uris=["https://dept-a.example.gov.uk/bye"],
        )
        b = make_client(
            "dept-b",
            redirect_uri="https://dept-b.example.gov.uk/callback",
            backchannel_logout_uri=receiver_b.uri,
        )
        tokens_a = sign_in_at(browser, a, citizen)
        tokens_b = sign_in_at(browser, b, citizen)
        # Department A's "Sign out" button: RP-initiated logout with its ID token.
        response = browser.get(
            idp.url(
                "/logout?id_token_hint="
                + tokens_a["id_token"]
                + "&post_logout_redirect_uri=https://dept-a.example.gov.uk/bye"
            )
        )
        # The signed-out page names both, and offers the way back to A.
        assert response.status_code == 200
        assert "Continue to Department dept-a" in response.text
        assert "<li>Department dept-b</li>" in response.text
        _, claims = verify(receiver_b.wait_for(1)[0].logout_token, idp, "dept-b")
        assert claims["sid"] == tokens_b["claims"]["sid"]
        assert claims["sub"] == tokens_b["claims"]["sub"]
        receiver_a.wait_for(1)
    finally:
        receiver_a.close()
        receiver_b.close()


def test_signing_out_is_not_delayed_by_a_department_that_hangs(
    idp, browser, citizen, make_client, receiver
):
    client = make_client(backchannel_logout_uri=receiver.uri)
    sign_in_at(browser, client, citizen)
    receiver.released.clear()  # the department takes the request and does not answer
    sign_out_at_idp(browser, idp)
    # The citizen already has the signed-out page while the department holds the request.
    assert receiver.wait_for(1)
    assert receiver.answered == []
    receiver.released.set()


def test_a_department_that_is_briefly_down_gets_retries_until_it_answers(
    idp, browser, citizen, make_client
):
    receiver = LogoutReceiver(503, 502)
    try:
        client = make_client(backchannel_logout_uri=receiver.uri)
        tokens = sign_in_at(browser, client, citizen)
        sign_out_at_idp(browser, idp)
        received = receiver.wait_for(3)
        delivery = wait_until(lambda: finished(idp, client.client_id))
        assert delivery.status == "delivered"
        assert delivery.attempts == 3
        recorded = attempts(idp, delivery.id)
        assert [(a.outcome, a.http_status) for a in recorded] == [
            ("error", 503),
            ("error", 502),
            ("delivered", 200),
        ]
        # Each retry is a fresh token for the same session; the gaps grow (back-off).
        jtis = {verify(r.logout_token, idp, client.client_id)[1]["jti"] for r in received}
        assert len(jtis) == 3
        sids = {verify(r.logout_token, idp, client.client_id)[1]["sid"] for r in received}
        assert sids == {tokens["claims"]["sid"]}
        assert received[2].at - received[1].at > received[1].at - received[0].at
    finally:
        receiver.close()


def test_a_department_that_stays_down_is_recorded_as_failed(
    idp, browser, citizen, make_client, caplog
):
    receiver = LogoutReceiver()
    down_uri = receiver.uri
    receiver.close()  # nothing listens there any more
    client = make_client(backchannel_logout_uri=down_uri)
    sign_in_at(browser, client, citizen)

    def audited() -> list[str]:
        return [r.getMessage() for r in caplog.records if "logout.backchannel" in r.getMessage()]

    with caplog.at_level("INFO", logger="idp.audit"):
        sign_out_at_idp(browser, idp)
        delivery = wait_until(lambda: finished(idp, client.client_id), timeout=30)
        # Each attempt is audited just after its result is stored: the last one a moment later.
        audit_lines = wait_until(lambda: len(audited()) >= 4 and audited(), timeout=5)
    assert delivery.status == "failed"
    assert delivery.attempts == 4  # backchannel_max_attempts in the test settings
    outcomes = [a.outcome for a in attempts(idp, delivery.id)]
    assert outcomes == ["unreachable"] * 4
    assert "could not be reached" in delivery.last_error
    assert len(audit_lines) == 4
    assert all('"outcome": "failure"' in line for line in audit_lines)
    assert '"will_retry": false' in audit_lines[-1]


def test_a_department_that_refuses_the_token_is_not_retried(idp, browser, citizen, make_client):
    receiver = LogoutReceiver(400)
    try:
        client = make_client(backchannel_logout_uri=receiver.uri)
        sign_in_at(browser, client, citizen)
        sign_out_at_idp(browser, idp)
        delivery = wait_until(lambda: finished(idp, client.client_id))
        assert delivery.status == "failed"
        assert [(a.outcome, a.http_status) for a in attempts(idp, delivery.id)] == [
            ("rejected", 400)
        ]
    finally:
        receiver.close()


def test_an_expired_session_is_announced_without_the_browser_coming_back(
    idp, browser, citizen, make_client, receiver
):
    from idp.accounts.sessions import end_expired_sessions

    client = make_client(backchannel_logout_uri=receiver.uri)
    tokens = sign_in_at(browser, client, citizen)
    with idp.app.app_context():
        session = db.session.scalar(
            db.select(BrowserSession).filter_by(sid=tokens["claims"]["sid"])
        )
        session.last_active_at = utcnow() - timedelta(minutes=31)  # past the idle timeout
        db.session.commit()
        assert end_expired_sessions() == 1  # what the background worker runs every 30 s
    _, claims = verify(receiver.wait_for(1)[0].logout_token, idp, client.client_id)
    assert claims["sid"] == tokens["claims"]["sid"]
    assert deliveries(idp, client_id=client.client_id)[0].reason == "expired"
    # The refresh-less department's session is over at the IdP too.
    assert browser.get(idp.url("/")).status_code == 302


@pytest.mark.parametrize(
    ("path", "fields", "reason"),
    [
        (
            "/account/password",
            {"password": "another long passphrase", "confirm": "another long passphrase"},
            "password changed",
        ),
        ("/account/delete", {"confirm": "y"}, "account deleted"),
    ],
)
def test_changing_the_password_or_deleting_the_account_signs_out_other_browsers(
    idp, citizen, make_client, receiver, path, fields, reason
):
    client = make_client(backchannel_logout_uri=receiver.uri)
    elsewhere = CitizenBrowser(idp.issuer)
    tokens = sign_in_at(elsewhere, client, citizen)
    here = CitizenBrowser(idp.issuer)
    here.sign_in(here.get(idp.url("/sign-in")), citizen["email"], citizen["password"])
    page = here.get(idp.url(path))
    done = here.submit(page, {"current_password": citizen["password"], **fields})
    assert done.status_code in (200, 303), done.text[:300]
    _, claims = verify(receiver.wait_for(1)[0].logout_token, idp, client.client_id)
    assert claims["sid"] == tokens["claims"]["sid"]
    assert claims["sub"] == tokens["claims"]["sub"]
    assert deliveries(idp, client_id=client.client_id)[0].reason == reason


def change_settings(idp, client_id: str, **metadata) -> str:
    """The department changes its settings; a material change waits for approval."""
    with idp.app.app_context():
        row = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        update_registration(row, {**row.client_metadata, **metadata}, via="test")
        return row.status


def test_a_back_channel_address_waiting_for_approval_is_never_sent_a_token(
    idp, browser, citizen, make_client, receiver
):
    unreviewed = LogoutReceiver()
    try:
        client = make_client(backchannel_logout_uri=receiver.uri)
        tokens = sign_in_at(browser, client, citizen)
        # The department points its back-channel logout elsewhere; the change waits.
        assert change_settings(idp, client.client_id, backchannel_logout_uri=unreviewed.uri) == (
            "pending"
        )
        sign_out_at_idp(browser, idp)
        # The logout token goes to the address the platform approved, never to the new one.
        (received,) = receiver.wait_for(1)
        _, claims = verify(received.logout_token, idp, client.client_id)
        assert claims["sid"] == tokens["claims"]["sid"]
        assert wait_until(lambda: finished(idp, client.client_id)).status == "delivered"
        assert unreviewed.received == []
    finally:
        unreviewed.close()


def test_a_back_channel_address_nobody_approved_is_skipped_and_recorded(
    idp, browser, citizen, make_client, receiver
):
    client = make_client()
    sign_in_at(browser, client, citizen)
    assert change_settings(idp, client.client_id, backchannel_logout_uri=receiver.uri) == (
        "pending"
    )
    sign_out_at_idp(browser, idp)
    # Queued in the sign-out itself: nothing is owed to an address nobody reviewed.
    assert deliveries(idp, client_id=client.client_id) == []
    (skipped,) = stored_entries(idp, event="logout.backchannel")
    assert skipped["outcome"] == "failure"
    assert skipped["reason"] == "backchannel_logout_uri_not_approved"
    assert skipped["client_id"] == client.client_id
    assert skipped["client_status"] == "pending"


def test_signing_in_again_keeps_departments_until_the_session_really_ends(
    idp, browser, citizen, make_client, receiver
):
    a = make_client("dept-a", backchannel_logout_uri=receiver.uri)
    b = make_client("dept-b", redirect_uri="https://dept-b.example.gov.uk/callback")
    first = sign_in_at(browser, a, citizen)
    # prompt=login at another department: a new session (new sid), same citizen.
    attempt = b.authorization(prompt="login")
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    second = b.token_request(cb.params["code"], attempt.code_verifier).json()
    assert b.validate_id_token(second["id_token"], attempt.nonce)["sid"] != first["claims"]["sid"]
    # Department A was not signed out by that: no delivery was even queued for the worker.
    assert deliveries(idp) == []
    assert receiver.received == []
    sign_out_at_idp(browser, idp)
    _, claims = verify(receiver.wait_for(1)[0].logout_token, idp, "dept-a")
    assert claims["sid"] == first["claims"]["sid"]  # the sid department A knows


def test_someone_else_signing_in_on_the_browser_ends_the_old_session(
    idp, browser, citizen, make_citizen, make_client, receiver
):
    a = make_client("dept-a", backchannel_logout_uri=receiver.uri)
    first = sign_in_at(browser, a, citizen)
    other = make_citizen("someone.else@example.com")
    page = browser.get(idp.url("/sign-in?prompt=login"))
    browser.sign_in(page, other["email"], other["password"])
    _, claims = verify(receiver.wait_for(1)[0].logout_token, idp, "dept-a")
    assert claims["sid"] == first["claims"]["sid"]


def test_pending_deliveries_survive_a_restart_of_the_idp(tmp_path):
    """An IdP that stops before delivering leaves the delivery stored; the next one sends it."""
    database = f"sqlite:///{tmp_path / 'restart.sqlite3'}"
    receiver = LogoutReceiver()
    first = serve_idp(database, str(tmp_path), background_worker=False)
    try:
        citizen = new_citizen(first, "restart@example.com")
        client = new_client(first, "dept-r", backchannel_logout_uri=receiver.uri)
        browser = CitizenBrowser(first.issuer)
        sign_in_at(browser, client, citizen)
        sign_out_at_idp(browser, first)
        # This IdP's worker is not running: the delivery waits, stored, and nothing was sent.
        assert [d.status for d in deliveries(first)] == ["pending"]
        assert receiver.received == []
    finally:
        first.close()
    second = serve_idp(database, str(tmp_path))
    try:
        _, claims = verify(receiver.wait_for(1)[0].logout_token, second, "dept-r")
        assert claims["aud"] == "dept-r"
        assert wait_until(lambda: finished(second, "dept-r")).status == "delivered"
    finally:
        second.close()
        receiver.close()


def test_two_idp_processes_deliver_each_logout_exactly_once(
    idp, database_url, tmp_path, citizen, make_client, receiver
):
    # A second process on the same database, behind the same issuer name.
    other = serve_idp(database_url, str(tmp_path), issuer=idp.issuer)
    try:
        client = make_client(backchannel_logout_uri=receiver.uri)
        browsers = [CitizenBrowser(idp.issuer) for _ in range(6)]
        for browser in browsers:
            sign_in_at(browser, client, citizen)
        for browser in browsers:
            sign_out_at_idp(browser, idp)
        receiver.wait_for(6)
        wait_until(
            lambda: all(d.status == "delivered" for d in deliveries(idp, client_id="dept-a"))
        )
        time.sleep(1)  # a negative wait on the real workers: a duplicate would arrive late
        sids = [verify(r.logout_token, idp, "dept-a")[1]["sid"] for r in receiver.received]
        assert len(sids) == 6 and len(set(sids)) == 6
    finally:
        other.close()


def test_an_administrator_signs_a_citizen_out_everywhere(
    idp, browser, citizen, make_client, receiver
):
    client = make_client(backchannel_logout_uri=receiver.uri)
    tokens = sign_in_at(browser, client, citizen)
    runner = idp.app.test_cli_runner()
    result = runner.invoke(
        cli, ["citizens", "sign-out", citizen["email"], "--reason", "ticket 1234"]
    )
    assert result.exit_code == 0, result.output
    assert "1 browser session" in result.output
    _, claims = verify(receiver.wait_for(1)[0].logout_token, idp, client.client_id)
    assert claims["sid"] == tokens["claims"]["sid"]
    assert deliveries(idp)[0].reason == "administrator"
    assert browser.get(idp.url("/")).status_code == 302
    assert client.introspect(tokens["access_token"]).json() == {"active": False}


def test_the_administrator_command_names_bad_input(idp):
    runner = idp.app.test_cli_runner()
    unknown = runner.invoke(cli, ["citizens", "sign-out", "nobody@example.com", "--reason", "x"])
    assert unknown.exit_code != 0
    assert "no citizen has the email address 'nobody@example.com'" in unknown.output
    no_reason = runner.invoke(cli, ["citizens", "sign-out", "nobody@example.com"])
    assert no_reason.exit_code != 0
    assert "--reason" in no_reason.output


def test_operators_can_list_deliveries_and_every_attempt(idp, browser, citizen, make_client):
    receiver = LogoutReceiver(503)
    try:
        client = make_client(backchannel_logout_uri=receiver.uri)
        sign_in_at(browser, client, citizen)
        sign_out_at_idp(browser, idp)
        wait_until(lambda: finished(idp, client.client_id))
    finally:
        receiver.close()
    runner = idp.app.test_cli_runner()
    listing = runner.invoke(cli, ["logouts", "list", "--client", client.client_id])
    assert listing.exit_code == 0, listing.output
    assert f"{client.client_id}  delivered  session ended: signed out  attempts: 2" in (
        listing.output
    )
    assert "error HTTP 503" in listing.output
    assert "delivered HTTP 200" in listing.output
    none = runner.invoke(cli, ["logouts", "list", "--status", "failed"])
    assert "no back-channel logout deliveries" in none.output
    bad = runner.invoke(cli, ["logouts", "list", "--status", "lost"])
    assert bad.exit_code != 0
    assert "'lost' is not one of" in bad.output


def test_a_code_or_refresh_token_from_a_session_that_ended_gets_nothing(
    idp, browser, citizen, make_client
):
    client = make_client(grant_types=["authorization_code", "refresh_token"])
    tokens = sign_in_at(browser, client, citizen)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    sign_out_at_idp(browser, idp)  # before the department redeems its second code
    late = client.token_request(cb.params["code"], attempt.code_verifier)
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_grant"
    assert "has ended" in late.json()["error_description"]
    refreshed = client.http.post(
        client.discovery()["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(client.client_id, client.client_secret),
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"
    assert client.introspect(tokens["access_token"]).json() == {"active": False}


def test_a_code_issued_before_signing_in_again_still_belongs_to_the_live_session(
    idp, browser, citizen, make_client, receiver
):
    a = make_client("dept-a", backchannel_logout_uri=receiver.uri)
    b = make_client("dept-b", redirect_uri="https://dept-b.example.gov.uk/callback")
    attempt = a.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    # The citizen signs in again at department B before A redeems its code.
    again = b.authorization(prompt="login")
    browser.authorize(again.url, citizen["email"], citizen["password"])
    tokens = a.token_request(cb.params["code"], attempt.code_verifier).json()
    claims = a.validate_id_token(tokens["id_token"], attempt.nonce)
    # Not signed out: the session lives on under a new sid, so no delivery was even queued.
    assert deliveries(idp) == []
    assert receiver.received == []
    # Department A's own sign-out button, with the sid it knows: signs out at once.
    response = browser.get(idp.url(f"/logout?id_token_hint={tokens['id_token']}&client_id=dept-a"))
    assert response.status_code == 200
    assert "You have signed out" in response.text
    _, logout = verify(receiver.wait_for(1)[0].logout_token, idp, "dept-a")
    assert logout["sid"] == claims["sid"]


def test_a_logout_token_is_not_taken_for_an_id_token_hint(
    idp, browser, citizen, make_client, receiver
):
    client = make_client(backchannel_logout_uri=receiver.uri)
    sign_in_at(browser, client, citizen)
    sign_out_at_idp(browser, idp)
    logout_token = receiver.wait_for(1)[0].logout_token
    other = CitizenBrowser(idp.issuer)
    sign_in_at(other, client, citizen)
    page = other.get(idp.url(f"/logout?id_token_hint={logout_token}"))
    assert "Do you want to sign out?" in page.text  # asked to confirm: the hint was refused


def test_a_department_that_holds_the_request_open_times_out(
    idp, browser, citizen, make_client, receiver
):
    client = make_client(backchannel_logout_uri=receiver.uri)
    sign_in_at(browser, client, citizen)
    receiver.released.clear()
    sign_out_at_idp(browser, idp)
    delivery = wait_until(lambda: deliveries(idp, client_id=client.client_id))[0]
    first = wait_until(lambda: attempts(idp, delivery.id))[0]
    receiver.released.set()
    assert first.outcome == "timeout"
    assert "took longer than 2.0 seconds" in first.detail
    assert first.duration_ms < 4000  # the test settings' 2-second deadline, not the server's

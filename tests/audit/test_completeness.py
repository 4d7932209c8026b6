"""Every security event is in the audit record, with what an investigation needs (UTC time,
event, outcome, reason, the internal citizen id, client id, IP address, user agent, a hashed
session reference, request id, level of assurance and methods, the IdP instance), and never a
credential: journeys are driven over HTTP as citizens and departments drive them, then the
stored entries are read back."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pyotp
import pytest

from idp import audit, clock
from idp.cli import cli
from idp.extensions import db
from idp.models import Citizen
from tests.conftest import LiveIdP, serve_idp
from tests.support.audit import captured_log, stored_entries, table_text
from tests.support.browser import SECOND_FACTOR_HEADING, SECOND_FACTORS, CitizenBrowser, callback
from tests.support.logout_receiver import LogoutReceiver
from tests.support.mail import code_in, wait_for_mail
from tests.support.registration import (
    VALID_METADATA,
    change_status,
    issue_token,
    manage,
    register,
    replacement,
)

GRANTS = ["authorization_code", "refresh_token"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGN_IN_ERROR = "Enter the correct password for this email address"
JOURNEY = "Cl.Cm", "pwd otp"
TOTP_SECRET = re.compile(r'id="totp-secret">([^<]+)<')
# Clock times with fractions of a second: six digits there are not a leaked one-time code.
CLOCK_TIME = re.compile(r"\d{2}:\d{2}:\d{2}\.\d+")


# -- Helpers -----------------------------------------------------------------------------------


def entries(idp: LiveIdP, event: str | None = None, **columns: Any) -> list[dict[str, Any]]:
    """The stored entries (oldest first), of one event when given, details beside columns."""
    return stored_entries(idp, **({"event": event} if event else {}), **columns)


def only(idp: LiveIdP, event: str, **columns: Any) -> dict[str, Any]:
    """The one entry of this event."""
    found = entries(idp, event, **columns)
    assert len(found) == 1, (event, [(e["outcome"], e["reason"]) for e in found])
    return found[0]


def eventually(idp: LiveIdP, event: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The entries of an event recorded in the background, once there are any."""
    deadline = time.monotonic() + timeout
    while not (found := entries(idp, event)):
        assert time.monotonic() < deadline, f"no {event} within {timeout} s"
        time.sleep(0.1)
    return found


def refresh(client, refresh_token: str) -> httpx.Response:
    """The refresh_token grant, authenticated as the client."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    auth = client._authenticate(data)
    return client.http.post(f"{client.issuer}/token", data=data, auth=auth)


def userinfo(client, access_token: str) -> httpx.Response:
    return client.http.get(
        f"{client.issuer}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
    )


def tokens_sid(tokens: dict) -> str:
    """The sid of the ID token (the department's name for the sign-in session)."""
    return jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]


def unique_email(prefix: str = "citizen") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}@example.com"


def wrong_totp(secret: str) -> str:
    """A six-digit code the app shows at no step near now."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(clock.time() + 30 * d) for d in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(1, 10**6, 7919)) if c not in near)


def at_second_factor(idp: LiveIdP, browser: CitizenBrowser, citizen: dict, url: str | None = None):
    """Sign in with the password (at url, else the sign-in page); the second factor page."""
    page = browser.follow(browser.get(url or idp.url("/sign-in")))
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    assert SECOND_FACTOR_HEADING in page.text, page.text[:500]
    return page


def contains(text: str, secret: str) -> bool:
    """Whether text holds the secret; a short code of digits only as a number of its own, and
    not in clock times (six digits of a timestamp are no leak of a one-time code)."""
    if secret.isdigit() and len(secret) <= 8:
        return re.search(rf"(?<![0-9A-Za-z]){secret}(?![0-9A-Za-z])", CLOCK_TIME.sub("", text))
    return secret in text


@pytest.fixture
def idp_output() -> Iterator[io.StringIO]:
    """Everything the IdP's loggers write (standard output in production), every level."""
    with captured_log(level=logging.DEBUG, as_stdout=True) as stream:
        yield stream


@pytest.fixture
def receiver() -> Iterator[LogoutReceiver]:
    """A department's back-channel logout endpoint."""
    server = LogoutReceiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def strict_idp(live_idp, database_url) -> Iterator[LiveIdP]:
    """Another IdP process on the same database whose second step locks after three wrong
    codes, without delays."""
    served = serve_idp(
        database_url,
        live_idp.app.config["IDP_SETTINGS"].instance_path,
        redis_url="",
        throttle_overrides={"second_factor": {"delay_seconds": 0, "max_failures": 3}},
    )
    yield served
    served.close()


# -- One sign-in, one story --------------------------------------------------------------------


def test_one_sign_in_is_one_story_from_the_password_to_the_back_channel_logout(
    idp, make_citizen, make_client, receiver
):
    citizen = make_citizen()
    client = make_client(grant_types=GRANTS, backchannel_logout_uri=receiver.uri)
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    token_response = client.token_request(cb.params["code"], attempt.code_verifier)
    assert token_response.status_code == 200, token_response.text
    tokens = token_response.json()
    assert userinfo(client, tokens["access_token"]).status_code == 200
    refreshed = refresh(client, tokens["refresh_token"]).json()
    assert client.introspect(refreshed["access_token"]).json()["active"] is True
    assert client.revoke(refreshed["refresh_token"]).status_code == 200
    assert client.introspect(refreshed["access_token"]).json()["active"] is False
    hint = urlencode({"id_token_hint": refreshed["id_token"]})
    assert browser.get(idp.url(f"/logout?{hint}")).status_code == 200
    receiver.wait_for(1)

    # The password makes a session (Cl); the second factor a new one (Cl.Cm), linked to it.
    password = only(idp, "sign_in.succeeded")
    assert (password["outcome"], password["citizen_id"]) == ("success", citizen["id"])
    assert (password["level"], password["methods"]) == ("Cl", "pwd")
    stepped = only(idp, "second_factor.succeeded")
    assert (stepped["level"], stepped["methods"], stepped["factor"]) == (*JOURNEY, "totp")
    assert stepped["session_ref"] != password["session_ref"]
    assert stepped["previous_session"] == password["session_ref"]
    # Every later event of the journey carries the second session's reference.
    story = [
        only(idp, "consent.given"),
        only(idp, "authorization_code.issued"),
        only(idp, "token.issued"),
        only(idp, "userinfo.released"),
        only(idp, "token.refreshed"),
        only(idp, "token.introspected", outcome="success", level="Cl.Cm"),
        only(idp, "token.revoked"),
        only(idp, "citizen.signed_out_by_service"),
        *eventually(idp, "logout.backchannel"),
    ]
    for entry in story:
        assert entry["session_ref"] == stepped["session_ref"], entry["event"]
        assert (entry["citizen_id"], entry["client_id"]) == (citizen["id"], client.client_id)
        assert entry["outcome"] == "success", entry["event"]
    # The code says to which department, at which level, by which methods; so do the tokens.
    for entry in story[1:7]:
        assert (entry["level"], entry["methods"]) == JOURNEY, entry["event"]
    assert story[2]["grant_type"] == "authorization_code" and story[2]["with_refresh"] is True
    assert story[4]["grant_type"] == "refresh_token"
    assert story[6]["token_type"] == "refresh_token"
    assert story[7]["confirmed_by"] == "id_token_hint"
    # Introspecting a token no longer active says so, and nothing of whose it was.
    inactive = only(idp, "token.introspected", level=None)
    assert (inactive["active"], inactive["client_id"], inactive["citizen_id"]) == (
        False,
        client.client_id,
        None,
    )
    assert story[0]["session_ref"] == audit.session_ref(tokens_sid(tokens))

    # Each entry: UTC time, its request's id (also sent back to the caller), where from, and
    # which IdP instance wrote it.
    assert token_response.headers["x-request-id"] == story[2]["request_id"]
    in_requests = [password, stepped, *story[:-1]]
    assert len({e["request_id"] for e in (password, stepped, story[2])}) == 3
    for entry in [*in_requests, story[-1]]:
        assert entry["time"].utcoffset() == timedelta(0)
        assert entry["instance"]
    for entry in in_requests:
        assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"]), entry["event"]
        assert entry["ip"] == "127.0.0.1", entry["event"]
        assert entry["user_agent"].startswith("python-httpx/"), entry["event"]
    # The citizen is named by the internal id only.
    assert citizen["email"] not in table_text(idp)


# -- Signing in --------------------------------------------------------------------------------


def test_a_failed_sign_in_says_why_in_the_record_but_not_to_the_citizen(idp, make_citizen):
    citizen = make_citizen()
    stranger = unique_email("stranger")
    shown = []
    for email in (citizen["email"], stranger):
        browser = CitizenBrowser(idp.issuer)
        page = browser.get(idp.url("/sign-in"))
        refused = browser.submit_sign_in(page, email, "not the password at all")
        shown.append((refused.status_code, SIGN_IN_ERROR in refused.text))
    assert shown == [(400, True), (400, True)], "the citizen cannot tell the two apart"

    failed = entries(idp, "sign_in.failed")
    assert [(e["outcome"], e["reason"], e["citizen_id"], e["methods"]) for e in failed] == [
        ("failure", "wrong_password", citizen["id"], "pwd"),
        ("failure", "no_account", None, "pwd"),
    ]
    text = table_text(idp)
    for typed in (citizen["email"], stranger, "not the password at all"):
        assert typed not in text


def test_second_factor_failures_and_replays_are_recorded(idp, make_citizen):
    citizen = make_citizen()
    factor = SECOND_FACTORS[citizen["email"]]
    first = CitizenBrowser(idp.issuer)
    page = at_second_factor(idp, first, citizen)
    wrong = wrong_totp(citizen["totp_secret"])
    refused = first.submit(page, {"code": wrong})
    assert refused.status_code == 400
    code = factor.next_code()
    assert first.submit(refused, {"code": code}).status_code == 303
    # Someone who saw the code (and knows the password) types it in another browser.
    second = CitizenBrowser(idp.issuer)
    replayed = second.submit(at_second_factor(idp, second, citizen), {"code": code})
    assert replayed.status_code == 400

    failed = entries(idp, "second_factor.failed")
    assert [(e["outcome"], e["reason"], e["factor"], e["citizen_id"]) for e in failed] == [
        ("failure", "wrong_code", "totp", citizen["id"]),
        ("failure", "wrong_code", "totp", citizen["id"]),
    ]
    replay = only(idp, "second_factor.replayed")
    assert (replay["outcome"], replay["citizen_id"]) == ("failure", citizen["id"])
    # The failures belong to the password sessions they were typed in.
    passwords = entries(idp, "sign_in.succeeded")
    assert [e["session_ref"] for e in failed] == [p["session_ref"] for p in passwords]
    assert only(idp, "second_factor.succeeded")["previous_session"] == passwords[0]["session_ref"]
    text = table_text(idp)
    assert not contains(text, wrong) and not contains(text, code)


def test_too_many_wrong_codes_lock_the_second_step_and_say_so(idp, strict_idp, make_citizen):
    citizen = make_citizen(unique_email())
    browser = CitizenBrowser(strict_idp.issuer)
    page = at_second_factor(strict_idp, browser, citizen)
    wrong = wrong_totp(citizen["totp_secret"])
    statuses = []
    for _ in range(4):
        page = browser.submit(page, {"code": wrong})
        statuses.append(page.status_code)
    assert statuses == [400, 400, 429, 429]

    failed = entries(idp, "second_factor.failed", citizen_id=citizen["id"])
    assert [e["reason"] for e in failed] == ["wrong_code"] * 3
    locked = only(idp, "account.locked", citizen_id=citizen["id"])
    assert (locked["outcome"], locked["kind"]) == ("failure", "second_factor")
    assert locked["session_ref"] == failed[-1]["session_ref"]
    throttled = only(idp, "sign_in.throttled", citizen_id=citizen["id"])
    assert (throttled["reason"], throttled["kind"]) == ("locked", "second_factor")


# -- Creating and changing an account ----------------------------------------------------------


def test_sign_up_email_verification_and_a_first_second_factor_are_recorded(idp):
    email = unique_email("new")
    browser = CitizenBrowser(idp.issuer)
    check = browser.follow(browser.submit(browser.get(idp.url("/sign-up")), {"email": email}))
    code = code_in(wait_for_mail(idp, email))
    refused = browser.submit(check, {"code": "000000" if code != "000000" else "111111"})
    assert refused.status_code == 400
    details = browser.follow(browser.submit(refused, {"code": code}))
    assert details.url.path == "/sign-up/your-details", details.text[:500]
    password = "a passphrase nobody else has"
    fields = {"password": password, "confirm": password, "given_name": "Ada"}
    setup = browser.follow(browser.submit_details(details, {**fields, "family_name": "Lovelace"}))
    assert setup.url.path == "/two-factor/setup", setup.text[:500]
    secret = TOTP_SECRET.search(setup.text).group(1).replace(" ", "")
    assert browser.submit(setup, {"code": wrong_totp(secret)}).status_code == 400
    left = 30 - clock.time() % 30
    if left < 3:
        clock.advance(left + 0.2)
    assert browser.submit(setup, {"code": pyotp.TOTP(secret).at(clock.time())}).status_code == 200
    with idp.app.app_context():
        citizen_id = db.session.scalar(db.select(Citizen.id).filter_by(email=email))

    sent = only(idp, "email_code.sent")
    assert (sent["purpose"], sent["citizen_id"]) == ("sign_up", None)
    wrong = only(idp, "email_code.failed")
    assert (wrong["outcome"], wrong["reason"], wrong["purpose"]) == (
        "failure",
        "wrong_code",
        "sign_up",
    )
    assert only(idp, "email_code.verified")["purpose"] == "sign_up"
    assert only(idp, "citizen.signed_up")["citizen_id"] == citizen_id
    setup_failed = only(idp, "second_factor.failed")
    assert (setup_failed["reason"], setup_failed["during"], setup_failed["citizen_id"]) == (
        "wrong_code",
        "setup",
        citizen_id,
    )
    assert only(idp, "second_factor.added")["citizen_id"] == citizen_id
    stepped = only(idp, "second_factor.succeeded")
    assert (stepped["citizen_id"], stepped["during"], stepped["level"]) == (
        citizen_id,
        "setup",
        "Cl.Cm",
    )
    assert only(idp, "recovery_codes.issued")["citizen_id"] == citizen_id
    text = table_text(idp)
    assert email not in text and "Lovelace" not in text and password not in text
    assert not contains(text, code) and secret not in text


def test_account_changes_consent_and_every_kind_of_sign_out_are_recorded(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    browser.authorize(client.authorization().url, citizen["email"], citizen["password"])
    new = "another memorable passphrase"
    page = browser.get(idp.url("/account/password"))
    change = {"password": new, "confirm": new}
    wrong = browser.submit(page, {**change, "current_password": "not my password"})
    assert wrong.status_code == 400
    done = browser.submit(wrong, {**change, "current_password": citizen["password"]})
    assert done.status_code == 303, done.text[:500]
    account = browser.get(idp.url("/"))
    revoke = f"/account/services/{client.client_id}/revoke"
    assert browser.submit(account, {}, action=revoke).status_code == 303
    assert browser.submit(browser.get(idp.url("/")), {}, action="/sign-out").status_code == 200
    # An administrator signs the citizen out everywhere (another browser is signed in).
    other = CitizenBrowser(idp.issuer)
    other.authorize(client.authorization().url, citizen["email"], new)
    result = idp.app.test_cli_runner().invoke(
        cli, ["citizens", "sign-out", citizen["email"], "--reason", "ticket 4711"]
    )
    assert result.exit_code == 0, result.output

    session = entries(idp, "second_factor.succeeded")[0]
    reauthentication = only(idp, "reauthentication.failed")
    assert (reauthentication["reason"], reauthentication["citizen_id"]) == (
        "wrong_password",
        citizen["id"],
    )
    changed = only(idp, "password.changed")
    revoked = only(idp, "consent.revoked")
    signed_out = only(idp, "citizen.signed_out")
    for entry in (reauthentication, changed, revoked, signed_out):
        assert entry["session_ref"] == session["session_ref"], entry["event"]
        assert entry["citizen_id"] == citizen["id"]
    assert revoked["client_id"] == client.client_id
    assert signed_out["by"] == "sign_out_button"
    administrator = only(idp, "citizen.signed_out_by_staff")
    assert (administrator["citizen_id"], administrator["reason"]) == (citizen["id"], "ticket 4711")
    text = table_text(idp)
    assert new not in text and "not my password" not in text and citizen["email"] not in text


def test_deleting_an_account_is_recorded_with_the_session_it_was_done_in(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    browser = CitizenBrowser(idp.issuer)
    browser.authorize(make_client().authorization().url, citizen["email"], citizen["password"])
    page = browser.get(idp.url("/account/delete"))
    done = browser.submit(page, {"current_password": citizen["password"], "confirm": "y"})
    assert done.status_code == 200, done.text[:500]

    deleted = only(idp, "citizen.deleted")
    session = only(idp, "second_factor.succeeded")
    assert (deleted["citizen_id"], deleted["session_ref"]) == (
        citizen["id"],
        session["session_ref"],
    )
    assert deleted["methods"] == "pwd otp"


# -- Departments: codes, tokens, client authentication, registration ---------------------------


def test_replayed_codes_and_refresh_tokens_are_recorded_with_their_sign_in(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    client = make_client(grant_types=GRANTS)
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    code = browser.authorize(attempt.url, citizen["email"], citizen["password"]).params["code"]
    tokens = client.token_request(code, attempt.code_verifier).json()
    assert refresh(client, tokens["refresh_token"]).status_code == 200
    assert refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    # After the refresh replay: a code replay also revokes the family (which would leave no
    # live refresh token to replay).
    assert client.token_request(code, attempt.code_verifier).json()["error"] == "invalid_grant"

    issued = only(idp, "authorization_code.issued")
    code_replay = only(idp, "authorization_code.replayed")
    refresh_replay = only(idp, "refresh_token.replayed")
    assert (code_replay["reason"], refresh_replay["reason"]) == (
        "code_reused",
        "refresh_token_reused",
    )
    for entry in (code_replay, refresh_replay):
        assert entry["outcome"] == "failure"
        assert (entry["citizen_id"], entry["client_id"]) == (citizen["id"], client.client_id)
        assert entry["session_ref"] == issued["session_ref"]
        assert (entry["level"], entry["methods"]) == JOURNEY
    # One refusal, one entry: the replay is the event, not a second generic failure.
    assert entries(idp, "token.failed") == []


def test_client_authentication_failures_say_how_and_why_never_with_the_credential(idp, make_client):
    basic = make_client("basic-dept")
    post = make_client("post-dept", auth_method="client_secret_post")
    keyed = make_client("key-dept", auth_method="private_key_jwt")
    wrong = "canary-wrong-client-secret-0d9f3b7a61c2"
    code = {"grant_type": "authorization_code", "code": "no-such-code", "redirect_uri": "x"}
    token = f"{idp.issuer}/token"

    def status(response: httpx.Response) -> int:
        return response.status_code

    assert status(httpx.post(token, data=code, auth=("basic-dept", wrong))) == 401
    assert (
        status(httpx.post(token, data={**code, "client_id": "post-dept", "client_secret": wrong}))
        == 401
    )
    assert status(httpx.post(token, data=code, auth=("nobody-registered-this", wrong))) == 401
    assert status(httpx.post(token, data=code)) == 401
    # A client registered for keys cannot fall back to a secret.
    keys_client_with_a_secret = {**code, "client_id": "key-dept", "client_secret": wrong}
    assert status(httpx.post(token, data=keys_client_with_a_secret)) == 401
    elsewhere = keyed.client_assertion(aud="https://elsewhere.example")
    assertion = {"client_assertion_type": ASSERTION_TYPE}
    assert (
        status(httpx.post(token, data={**code, **assertion, "client_assertion": elsewhere})) == 401
    )
    once = keyed.client_assertion()
    introspection = {"token": "no-such-token", **assertion, "client_assertion": once}
    assert status(httpx.post(f"{idp.issuer}/introspect", data=introspection)) == 200
    assert status(httpx.post(f"{idp.issuer}/introspect", data=introspection)) == 401
    assert (
        status(httpx.post(f"{idp.issuer}/revoke", data={"token": "x"}, auth=("basic-dept", wrong)))
        == 401
    )
    assert status(register(idp, VALID_METADATA, None)) == 401
    assert status(register(idp, VALID_METADATA, "canary-initial-token-4e1a9c0b7d35")) == 401

    failures = entries(idp, "client.authentication_failed")
    assert [
        (e["endpoint"], e["method"], e["reason"], e["client_id"], e["outcome"]) for e in failures
    ] == [
        ("token", "client_secret_basic", "wrong_secret", "basic-dept", "failure"),
        ("token", "client_secret_post", "wrong_secret", "post-dept", "failure"),
        ("token", "client_secret_basic", "unknown_client", None, "failure"),
        ("token", None, "no_credentials", None, "failure"),
        ("token", "client_secret_post", "method_not_registered", "key-dept", "failure"),
        ("token", "private_key_jwt", "wrong_audience", "key-dept", "failure"),
        ("introspection", "private_key_jwt", "assertion_replayed", "key-dept", "failure"),
        ("revocation", "client_secret_basic", "wrong_secret", "basic-dept", "failure"),
        ("registration", "initial_access_token", "no_token", None, "failure"),
        ("registration", "initial_access_token", "invalid_token", None, "failure"),
    ]
    # A refused client is not a second, generic failure of the endpoint.
    assert entries(idp, "token.failed") == entries(idp, "revocation.failed") == []
    text = table_text(idp)
    for credential in (wrong, basic.client_secret, post.client_secret, elsewhere, once):
        assert credential not in text
    assert "nobody-registered-this" not in text and "canary-initial-token" not in text


def test_registration_and_administrator_changes_are_recorded(idp):
    initial = issue_token(idp)
    registered = register(idp, VALID_METADATA, initial)
    assert registered.status_code == 201, registered.text
    body = registered.json()
    client_id = body["client_id"]
    assert manage("GET", body).status_code == 200
    updated = manage("PUT", body, replacement(body, client_name="Apply for a fishing permit"))
    assert updated.status_code == 200, updated.text
    body = {**body, **updated.json()}
    assert change_status(idp, client_id, "approve") == "active"
    assert change_status(idp, client_id, "suspend") == "suspended"
    assert manage("DELETE", body).status_code == 403
    change_status(idp, client_id, "reinstate")
    assert manage("DELETE", body).status_code == 204

    issued = only(idp, "initial_access_token.issued")
    assert issued["actor"] == "operator (tests)"
    by_token = f"initial access token {issued['token_id']}"
    changes = [
        (e["event"], e["outcome"], e.get("via"), e.get("actor"))
        for e in entries(idp, client_id=client_id)
    ]
    assert changes == [
        ("client.registered", "success", "api", by_token),
        ("client.registration_read", "success", "api", None),
        ("client.updated", "success", "api", None),
        ("client.approved", "success", None, "operator (tests)"),
        ("client.suspended", "success", None, "operator (tests)"),
        ("client.registration_refused", "failure", "api", None),
        ("client.reinstated", "success", None, "operator (tests)"),
        ("client.deleted", "success", "api", None),
    ]
    text = table_text(idp)
    for credential in (initial, body["registration_access_token"], body["client_secret"]):
        assert credential not in text


# -- Never a credential ------------------------------------------------------------------------

CANARY_PASSWORD = "canary-password-7f3a91c2e4b6"
CANARY_WRONG_PASSWORD = "canary-wrong-password-5b8d20e7a3f1"
CANARY_CLIENT_SECRET = "canary-client-secret-9e4c7a1f03b2d86e5a7c"
CANARY_WRONG_SECRET = "canary-wrong-client-secret-1c6f8b2e4d90"
CANARY_INITIAL_TOKEN = "canary-initial-access-token-3a7e9c1b5d"


def test_no_credential_reaches_the_audit_table_or_standard_output(
    idp, make_citizen, make_client, idp_output, capsys
):
    canaries: dict[str, str] = {}
    citizen = make_citizen(unique_email(), password=CANARY_PASSWORD)
    canaries |= {"password": CANARY_PASSWORD, "wrong password": CANARY_WRONG_PASSWORD}
    canaries["authenticator key"] = citizen["totp_secret"]
    client = make_client("canary-dept", client_secret=CANARY_CLIENT_SECRET, grant_types=GRANTS)
    keyed = make_client("canary-keyed", auth_method="private_key_jwt")
    canaries |= {"client secret": CANARY_CLIENT_SECRET, "wrong secret": CANARY_WRONG_SECRET}

    # Sign in: a wrong password, the right one, a wrong code, the right code, consent.
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    canaries["PKCE verifier"] = attempt.code_verifier
    page = browser.follow(browser.get(attempt.url))
    page = browser.submit_sign_in(page, citizen["email"], CANARY_WRONG_PASSWORD)
    assert page.status_code == 400
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], CANARY_PASSWORD))
    assert SECOND_FACTOR_HEADING in page.text
    canaries["wrong one-time code"] = wrong_totp(citizen["totp_secret"])
    page = browser.submit(page, {"code": canaries["wrong one-time code"]})
    canaries["one-time code"] = SECOND_FACTORS[citizen["email"]].next_code()
    page = browser.follow(browser.submit(page, {"code": canaries["one-time code"]}))
    code = callback(browser.consent(page)).params["code"]
    canaries["authorization code"] = code
    for cookie in browser.http.cookies.jar:
        canaries[f"cookie {cookie.name}"] = cookie.value

    # The department: tokens, userinfo, refresh, introspection, revocation, a replayed code,
    # a wrong secret; and a department that signs client assertions.
    tokens = client.token_request(code, attempt.code_verifier).json()
    assert userinfo(client, tokens["access_token"]).status_code == 200
    rotated = refresh(client, tokens["refresh_token"]).json()
    for name in ("access_token", "refresh_token", "id_token"):
        canaries[name] = tokens[name]
        canaries[f"refreshed {name}"] = rotated[name]
    assert client.introspect(rotated["access_token"]).json()["active"] is True
    assert client.revoke(rotated["access_token"]).status_code == 200
    assert refresh(client, tokens["refresh_token"]).status_code == 400
    assert client.token_request(code, attempt.code_verifier).status_code == 400
    wrong = httpx.post(
        f"{idp.issuer}/token",
        data={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        auth=(client.client_id, CANARY_WRONG_SECRET),
    )
    assert wrong.status_code == 401
    posted = httpx.post(
        f"{idp.issuer}/introspect",
        data={"token": "x", "client_id": client.client_id, "client_secret": CANARY_WRONG_SECRET},
    )
    assert posted.status_code == 401
    keyed_attempt = keyed.authorization()
    keyed_code = browser.authorize(keyed_attempt.url).params["code"]
    assertion = keyed.client_assertion()
    canaries |= {"client assertion": assertion, "its signature": assertion.rsplit(".", 1)[1]}
    canaries["second authorization code"] = keyed_code
    keyed_tokens = keyed.token_request(keyed_code, keyed_attempt.code_verifier, assertion=assertion)
    assert keyed_tokens.status_code == 200, keyed_tokens.text
    canaries["keyed access_token"] = keyed_tokens.json()["access_token"]
    replayed = {
        "token": "x",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    assert httpx.post(f"{idp.issuer}/introspect", data=replayed).status_code == 401

    # Registration: a wrong initial access token, then a right one, then reading it.
    assert register(idp, VALID_METADATA, CANARY_INITIAL_TOKEN).status_code == 401
    initial = issue_token(idp, pre_approved=True)
    registered = register(idp, VALID_METADATA, initial).json()
    assert manage("GET", registered).status_code == 200
    canaries |= {
        "initial access token": initial,
        "wrong initial access token": CANARY_INITIAL_TOKEN,
        "registration access token": registered["registration_access_token"],
        "registered client secret": registered["client_secret"],
    }

    # A new account: its email code; then the department signs the first citizen out.
    email = unique_email("new")
    signing_up = CitizenBrowser(idp.issuer)
    check = signing_up.follow(
        signing_up.submit(signing_up.get(idp.url("/sign-up")), {"email": email})
    )
    canaries["email code"] = code_in(wait_for_mail(idp, email))
    details = signing_up.follow(signing_up.submit(check, {"code": canaries["email code"]}))
    assert details.url.path == "/sign-up/your-details"
    hint = urlencode({"id_token_hint": rotated["id_token"]})
    assert browser.get(idp.url(f"/logout?{hint}")).status_code == 200

    recorded = {e["event"] for e in entries(idp)}
    assert {
        "sign_in.failed",
        "sign_in.succeeded",
        "second_factor.failed",
        "second_factor.succeeded",
        "consent.given",
        "authorization_code.issued",
        "token.issued",
        "userinfo.released",
        "token.refreshed",
        "token.introspected",
        "token.revoked",
        "authorization_code.replayed",
        "refresh_token.replayed",
        "client.authentication_failed",
        "client.registered",
        "client.registration_read",
        "email_code.sent",
        "email_code.verified",
        "citizen.signed_out_by_service",
    } <= recorded
    table = table_text(idp)
    logged = idp_output.getvalue()
    printed = capsys.readouterr()
    assert '"event": "token.issued"' in logged, "the audit lines were captured"
    assert "\tcanary-dept\t" in table, "the table dump holds the entries' columns"
    for name, secret in canaries.items():
        assert len(secret) >= 6, name
        assert not contains(table, secret), f"the {name} is in the audit table"
        assert not contains(logged, secret), f"the {name} is in the IdP's log lines"
        assert not contains(printed.out + printed.err, secret), f"the {name} was printed"
    for address in (citizen["email"], email):
        assert address not in table and address not in logged

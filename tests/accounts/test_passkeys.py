"""Passkeys over HTTP with a software authenticator: adding one on the account pages, using one
as the second step or to sign in on its own (and what the department's ID token says then),
and every way an answer can be wrong: replayed, expired, another origin or RP ID, another
citizen's passkey, a sign count that goes backwards, malformed JSON, no CSRF token; removing
passkeys (never the last second factor) and throttling of failed assertions."""

from __future__ import annotations

import html
import io
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urljoin

import httpx
import pytest
from sqlalchemy import func, select, update

from idp.extensions import db
from idp.models import Passkey, RecoveryCode, ThrottleCounter, WebAuthnChallenge
from idp.models.timestamps import utcnow
from idp.security.throttle import delay
from tests.conftest import LiveIdP, serve_idp
from tests.support.audit import captured_log, logged_events
from tests.support.authenticator import SoftwareAuthenticator, b64url
from tests.support.browser import (
    SECOND_FACTOR_HEADING,
    SECOND_FACTORS,
    SIGN_IN_FORM,
    CitizenBrowser,
    callback,
)
from tests.support.mail import mails_to

CONSENT_HEADING = "wants to know who you are"
PASSKEY_HEADING = "Use your passkey"
CSRF_COOKIE = "idp_csrf"
BOX = re.compile(
    r'<div class="idp-passkey[^"]*" id="passkey-(?P<kind>[a-z-]+)"(?P<attrs>[^>]*)>', re.S
)
ATTRIBUTE = re.compile(r'(data-[a-z-]+)="([^"]*)"')


# -- Helpers -----------------------------------------------------------------------------------


def unique_email() -> str:
    return f"citizen.{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class PasskeyBox:
    """A passkey button on a page: where its script sends options and answers, with which token."""

    options_url: str
    verify_url: str
    csrf_token: str


def passkey_box(page: httpx.Response, kind: str) -> PasskeyBox:
    """The page's passkey box of this kind (register, setup, second-factor, sign-in)."""
    boxes = {m["kind"]: dict(ATTRIBUTE.findall(m["attrs"])) for m in BOX.finditer(page.text)}
    assert kind in boxes, (kind, sorted(boxes), page.text[:800])
    attrs = {name: html.unescape(value) for name, value in boxes[kind].items()}
    return PasskeyBox(
        options_url=urljoin(str(page.url), attrs["data-options-url"]),
        verify_url=urljoin(str(page.url), attrs["data-verify-url"]),
        csrf_token=attrs["data-csrf-token"],
    )


def post_json(
    browser: CitizenBrowser, url: str, body, token: str | None, *, raw: bytes | None = None
) -> httpx.Response:
    """What passkeys.js sends from the IdP's page: JSON with the X-CSRFToken header (and the
    page's origin, as a browser's fetch does, whichever IdP process it reaches)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Origin": browser.issuer,
    }
    if token is not None:
        headers["X-CSRFToken"] = token
    content = raw if raw is not None else json.dumps(body).encode()
    return browser.http.post(url, content=content, headers=headers)


def options_for(browser: CitizenBrowser, box: PasskeyBox, body: dict | None = None) -> dict:
    """Start a ceremony: the options the browser hands to navigator.credentials."""
    response = post_json(browser, box.options_url, body or {}, box.csrf_token)
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, status: int = 400, error: str | None = None) -> dict:
    """A clear JSON refusal: the status, an error code and a message for the page."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["message"], body
    if error is not None:
        assert body["error"] == error, body
    return body


def went_to(browser: CitizenBrowser, response: httpx.Response) -> httpx.Response:
    """Follow the redirect a successful ceremony answers with, as the page's script does."""
    assert response.status_code == 200, (response.status_code, response.text[:500])
    target = response.json()["redirect"]
    return browser.follow(browser.get(urljoin(str(response.url), target)))


def signed_in_fully(idp, citizen: dict) -> CitizenBrowser:
    """A browser signed in with the password and the authenticator app, on the account page."""
    browser = CitizenBrowser(idp.issuer)
    page = browser.sign_in(browser.get(idp.url("/sign-in")), citizen["email"], citizen["password"])
    assert page.status_code == 200 and page.url.path == "/", (page.url, page.text[:500])
    browser.password = citizen["password"]
    return browser


def register_box(idp, browser: CitizenBrowser, password: str | None = None) -> PasskeyBox:
    """The current password typed on the add-a-passkey page; the passkey box it then shows."""
    page = browser.get(idp.url("/account/passkeys/add"))
    assert page.status_code == 200, page.text[:500]
    page = browser.submit(page, {"current_password": password or browser.password})
    assert page.status_code == 200, page.text[:500]
    return passkey_box(page, "register")


def add_passkey(
    idp, browser: CitizenBrowser, authenticator: SoftwareAuthenticator, name: str = "Laptop", **kw
) -> httpx.Response:
    """Add a passkey (the current password, then the ceremony); the answer to the browser's
    response."""
    box = register_box(idp, browser)
    options = options_for(browser, box, {"name": name})
    return post_json(
        browser,
        box.verify_url,
        {"name": name, "credential": authenticator.create(options, **kw)},
        box.csrf_token,
    )


def stored_passkeys(idp, citizen: dict) -> list[Passkey]:
    with idp.app.app_context():
        rows = db.session.scalars(select(Passkey).filter_by(citizen_id=citizen["id"])).all()
        db.session.expunge_all()
        return list(rows)


def at_second_factor(browser: CitizenBrowser, client, citizen: dict):
    """Start a department's (Cl.Cm) journey and type the password: the second-factor page."""
    attempt = client.authorization()
    page = browser.follow(browser.get(attempt.url))
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    assert page.status_code == 200, page.text[:500]
    return attempt, page


def at_sign_in(browser: CitizenBrowser, client):
    """Start a department's journey: the sign-in page."""
    attempt = client.authorization()
    page = browser.follow(browser.get(attempt.url))
    assert SIGN_IN_FORM in page.text
    return attempt, page


def finish(browser: CitizenBrowser, page: httpx.Response) -> dict[str, str]:
    """Consent if asked; the callback's parameters."""
    if page.status_code == 200 and CONSENT_HEADING in page.text:
        page = browser.consent(page)
    return callback(page).params


def id_token_claims(client, attempt, params: dict[str, str]) -> dict:
    response = client.token_request(params["code"], attempt.code_verifier)
    assert response.status_code == 200, response.text
    return client.validate_id_token(response.json()["id_token"], attempt.nonce)


def assertion_at_second_factor(browser, page, authenticator, **kw) -> httpx.Response:
    """Use a passkey on the second-factor page; the IdP's answer."""
    box = passkey_box(page, "second-factor")
    options = options_for(browser, box)
    return post_json(
        browser, box.verify_url, {"credential": authenticator.get(options, **kw)}, box.csrf_token
    )


def passwordless(browser, page, authenticator, **kw) -> httpx.Response:
    """Use a passkey on the sign-in page; the IdP's answer."""
    box = passkey_box(page, "sign-in")
    options = options_for(browser, box)
    return post_json(
        browser, box.verify_url, {"credential": authenticator.get(options, **kw)}, box.csrf_token
    )


def forget_throttling(idp) -> None:
    with idp.app.app_context():
        db.session.execute(ThrottleCounter.__table__.delete())
        db.session.commit()


def events(lines: io.StringIO, name: str) -> list[dict]:
    return [e for e in logged_events(lines.getvalue()) if e["event"] == name]


@pytest.fixture
def audit_lines() -> Iterator[io.StringIO]:
    """The audit lines the IdP writes while the test runs."""
    with captured_log("idp.audit") as stream:
        yield stream


@pytest.fixture
def citizen(make_citizen) -> dict:
    """A citizen with an authenticator app."""
    return make_citizen(unique_email())


@pytest.fixture
def authenticator(idp) -> SoftwareAuthenticator:
    """The citizen's device, on the IdP's origin."""
    return SoftwareAuthenticator(origin=idp.issuer)


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def with_passkey(idp, citizen, authenticator) -> dict:
    """The citizen, with a passkey added on the account pages (then signed out)."""
    browser = signed_in_fully(idp, citizen)
    response = add_passkey(idp, browser, authenticator)
    assert response.status_code == 200, response.text
    return citizen


def passkey_only_citizen(idp, make_citizen, client, authenticator) -> tuple[dict, list[str]]:
    """A new citizen who chose a passkey instead of an app; and the recovery codes shown."""
    citizen = make_citizen(unique_email(), second_factor=False)
    browser = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(browser, client, citizen)
    assert "Set up an authenticator app" in page.text  # no second factor yet
    box = passkey_box(page, "setup")
    response = post_json(
        browser,
        box.verify_url,
        {"credential": authenticator.create(options_for(browser, box))},
        box.csrf_token,
    )
    page = went_to(browser, response)
    codes = re.findall(r"<li><code>([^<]*)</code></li>", page.text)
    return citizen, codes


# -- Adding a passkey --------------------------------------------------------------------------


def test_adding_a_passkey_lists_it_and_keeps_what_the_authenticator_said(
    idp, citizen, authenticator, audit_lines
):
    browser = signed_in_fully(idp, citizen)
    page = browser.get(idp.url("/account/passkeys"))
    assert page.status_code == 200
    assert "You have no passkeys yet." in page.text
    box = register_box(idp, browser)
    options = options_for(browser, box, {"name": "My laptop"})
    # A discoverable credential (it can sign in alone) with a verified user, for this issuer.
    assert options["rp"]["id"] == "127.0.0.1"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert options["user"]["name"] == citizen["email"]
    assert citizen["email"] not in json.dumps(options["user"]["id"])
    assert options["excludeCredentials"] == []

    answer = authenticator.create(options)
    response = post_json(
        browser, box.verify_url, {"name": "My laptop", "credential": answer}, box.csrf_token
    )
    page = went_to(browser, response)
    assert "Your passkey is added" in page.text
    assert "My laptop" in page.text
    assert "Not used yet" in page.text

    [stored] = stored_passkeys(idp, citizen)
    assert stored.credential_id == authenticator.credentials[0].id
    assert stored.name == "My laptop"
    assert stored.sign_count == 0
    assert stored.device_type == "single_device"
    assert stored.backed_up is False
    assert stored.transports == ["hybrid", "internal"]
    assert stored.aaguid == "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90"
    [added] = events(audit_lines, "passkey.added")
    assert added["citizen_id"] == citizen["id"]
    # Neither the credential nor the challenge is written to the audit record.
    assert stored.credential_id not in audit_lines.getvalue()
    assert options["challenge"] not in audit_lines.getvalue()

    # The next ceremony excludes the passkey the citizen already has.
    box = register_box(idp, browser)
    options = options_for(browser, box)
    assert [d["id"] for d in options["excludeCredentials"]] == [stored.credential_id]


def test_a_passkey_without_a_name_is_called_passkey_and_bad_names_are_refused(
    idp, citizen, authenticator
):
    browser = signed_in_fully(idp, citizen)
    box = register_box(idp, browser)
    for bad in ("x" * 101, "tab\there\x07", 42):
        refused(post_json(browser, box.options_url, {"name": bad}, box.csrf_token), 400)
    assert add_passkey(idp, browser, authenticator, name="   ").status_code == 200
    assert [p.name for p in stored_passkeys(idp, citizen)] == ["Passkey"]


@pytest.mark.both_databases
def test_a_credential_already_registered_is_refused(idp, make_citizen, authenticator):
    first, second = make_citizen(unique_email()), make_citizen(unique_email())
    browser = signed_in_fully(idp, first)
    assert add_passkey(idp, browser, authenticator).status_code == 200
    same_id = authenticator.credentials[0].credential_id

    # Another citizen's browser presents a credential with the same ID.
    other = signed_in_fully(idp, second)
    device = SoftwareAuthenticator(origin=idp.issuer)
    response = add_passkey(idp, other, device, credential_id=same_id)
    refused(response, 400, "already_registered")
    assert stored_passkeys(idp, second) == []
    assert len(stored_passkeys(idp, first)) == 1


@pytest.mark.parametrize(
    ("switch", "value"),
    [("origin", "https://evil.example"), ("rp_id", "evil.example"), ("user_verified", False)],
    ids=["another-origin", "another-rp-id", "no-user-verification"],
)
def test_a_registration_from_elsewhere_or_without_verification_is_refused(
    idp, citizen, authenticator, switch, value, audit_lines
):
    browser = signed_in_fully(idp, citizen)
    response = add_passkey(idp, browser, authenticator, **{switch: value})
    refused(response, 400, "verification_failed")
    assert stored_passkeys(idp, citizen) == []
    [failed] = events(audit_lines, "passkey.failed")
    assert failed["ceremony"] == "registration"


def test_the_passkeys_page_needs_the_second_factor(idp, citizen, authenticator):
    anonymous = CitizenBrowser(idp.issuer)
    response = anonymous.get(idp.url("/account/passkeys"))
    assert response.status_code == 302 and "/sign-in" in response.headers["location"]

    password_only = CitizenBrowser(idp.issuer)
    page = password_only.get(idp.url("/sign-in"))
    page = password_only.follow(
        password_only.submit_sign_in(page, citizen["email"], citizen["password"])
    )
    assert SECOND_FACTOR_HEADING in page.text
    response = password_only.get(idp.url("/account/passkeys"))
    assert response.status_code == 302
    assert response.headers["location"].endswith("/sign-in/second-factor")
    # The ceremony's endpoints say so in JSON.
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    body = refused(
        post_json(password_only, idp.url("/account/passkeys/options"), {}, token),
        401,
        "sign_in_required",
    )
    assert body["redirect"].endswith("/sign-in/second-factor")


# -- The second step of signing in -------------------------------------------------------------


@pytest.mark.parametrize(
    ("synced", "method"), [(False, "hwk"), (True, "swk")], ids=["device-bound", "synced"]
)
def test_a_passkey_as_the_second_step_and_the_department_sees_it(
    idp, make_citizen, client, synced, method
):
    citizen = make_citizen(unique_email())
    device = SoftwareAuthenticator(origin=idp.issuer, synced=synced, counts_signatures=not synced)
    assert add_passkey(idp, signed_in_fully(idp, citizen), device).status_code == 200
    assert stored_passkeys(idp, citizen)[0].device_type == (
        "multi_device" if synced else "single_device"
    )

    browser = CitizenBrowser(idp.issuer)
    attempt, page = at_second_factor(browser, client, citizen)
    # The app's code and the passkey are both offered.
    assert SECOND_FACTOR_HEADING in page.text
    assert "Use a passkey" in page.text
    password_cookie = browser.http.cookies.get("idp_session")
    box = passkey_box(page, "second-factor")
    options = options_for(browser, box)
    assert [d["id"] for d in options["allowCredentials"]] == [device.credentials[0].id]
    assert options["rpId"] == "127.0.0.1"
    response = post_json(
        browser, box.verify_url, {"credential": device.get(options)}, box.csrf_token
    )
    params = finish(browser, went_to(browser, response))
    claims = id_token_claims(client, attempt, params)
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["pwd", method])
    # A new session identifier for the stronger sign-in.
    if password_cookie is not None:
        assert browser.http.cookies.get("idp_session") != password_cookie
    [stored] = stored_passkeys(idp, citizen)
    assert stored.last_used_at is not None


def test_as_the_second_step_possession_is_enough(idp, with_passkey, client, authenticator):
    browser = CitizenBrowser(idp.issuer)
    attempt, page = at_second_factor(browser, client, with_passkey)
    response = assertion_at_second_factor(browser, page, authenticator, user_verified=False)
    claims = id_token_claims(client, attempt, finish(browser, went_to(browser, response)))
    assert claims["amr"] == ["pwd", "hwk"]


def test_another_citizens_passkey_is_refused_at_the_second_step(
    idp, make_citizen, client, audit_lines
):
    owner, other = make_citizen(unique_email()), make_citizen(unique_email())
    owners_device, others_device = (SoftwareAuthenticator(origin=idp.issuer) for _ in range(2))
    assert add_passkey(idp, signed_in_fully(idp, owner), owners_device).status_code == 200
    assert add_passkey(idp, signed_in_fully(idp, other), others_device).status_code == 200

    # Someone who knows the other citizen's password answers with the owner's passkey.
    browser = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(browser, client, other)
    box = passkey_box(page, "second-factor")
    options = options_for(browser, box)
    answer = owners_device.get(options, credential=owners_device.credentials[0])
    refused(post_json(browser, box.verify_url, {"credential": answer}, box.csrf_token), 400)
    # Still only the password: no code for the department, the account page wants more.
    assert browser.get(idp.url("/")).headers["location"].endswith("/sign-in/second-factor")
    [failed] = events(audit_lines, "passkey.failed")
    assert failed["reason"] == "another citizen's passkey"


def test_a_citizen_with_only_a_passkey_is_offered_the_passkey_first(
    idp, make_citizen, client, authenticator
):
    citizen, _ = passkey_only_citizen(idp, make_citizen, client, authenticator)
    browser = CitizenBrowser(idp.issuer)
    attempt, page = at_second_factor(browser, client, citizen)
    assert PASSKEY_HEADING in page.text
    assert 'name="code"' not in page.text  # no app to type a code from
    assert "use a recovery code" in page.text
    response = assertion_at_second_factor(browser, page, authenticator)
    claims = id_token_claims(client, attempt, finish(browser, went_to(browser, response)))
    assert claims["amr"] == ["pwd", "hwk"]


def test_the_second_step_with_a_passkey_needs_the_password_first(idp, with_passkey):
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    token = passkey_box(page, "sign-in").csrf_token
    body = refused(
        post_json(browser, idp.url("/sign-in/second-factor/passkey/options"), {}, token),
        401,
        "sign_in_required",
    )
    assert "/sign-in" in body["redirect"]


# -- Signing in with a passkey alone -----------------------------------------------------------


def test_signing_in_with_a_passkey_alone_meets_cl_cm(
    idp, with_passkey, client, authenticator, audit_lines
):
    browser = CitizenBrowser(idp.issuer)
    attempt, page = at_sign_in(browser, client)
    assert "Sign in with a passkey" in page.text
    box = passkey_box(page, "sign-in")
    options = options_for(browser, box)
    # Discoverable: the browser offers whichever passkey the citizen has, verified.
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    response = post_json(
        browser, box.verify_url, {"credential": authenticator.get(options)}, box.csrf_token
    )
    claims = id_token_claims(client, attempt, finish(browser, went_to(browser, response)))
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["hwk"])
    assert claims["sub"] == with_passkey["subject"]
    [signed_in] = events(audit_lines, "sign_in.passkey_succeeded")
    assert signed_in["citizen_id"] == with_passkey["id"] and signed_in["methods"] == "hwk"
    assert signed_in["level"] == "Cl.Cm"
    assert options["challenge"] not in audit_lines.getvalue()


def test_signing_in_with_a_passkey_without_a_journey_opens_the_account(
    idp, with_passkey, authenticator
):
    browser = CitizenBrowser(idp.issuer)
    response = passwordless(browser, browser.get(idp.url("/sign-in")), authenticator)
    assert response.json()["redirect"].endswith("/")
    page = went_to(browser, response)
    assert page.status_code == 200 and page.url.path == "/"
    assert browser.get(idp.url("/account/passkeys")).status_code == 200


def test_a_synced_passkey_signs_in_as_swk_and_may_keep_its_count_at_zero(idp, citizen, client):
    device = SoftwareAuthenticator(origin=idp.issuer, synced=True, counts_signatures=False)
    assert add_passkey(idp, signed_in_fully(idp, citizen), device).status_code == 200
    for _time in range(2):
        browser = CitizenBrowser(idp.issuer)
        attempt, page = at_sign_in(browser, client)
        response = passwordless(browser, page, device)
        claims = id_token_claims(client, attempt, finish(browser, went_to(browser, response)))
        assert claims["amr"] == ["swk"]


@pytest.mark.parametrize(
    ("switch", "value"),
    [
        ("origin", "https://evil.example"),
        ("origin", "http://127.0.0.1:1"),
        ("rp_id", "evil.example"),
        ("user_verified", False),
        ("with_user_handle", False),
    ],
    ids=["phishing-origin", "another-port", "another-rp-id", "no-user-verification", "no-handle"],
)
def test_a_passkey_sign_in_from_elsewhere_or_unverified_is_refused(
    idp, with_passkey, client, authenticator, switch, value
):
    browser = CitizenBrowser(idp.issuer)
    _, page = at_sign_in(browser, client)
    refused(passwordless(browser, page, authenticator, **{switch: value}), 400)
    assert browser.get(idp.url("/")).status_code == 302  # not signed in
    [stored] = stored_passkeys(idp, with_passkey)
    assert stored.last_used_at is None


def test_an_unknown_passkey_is_refused(idp, with_passkey, client):
    stranger = SoftwareAuthenticator(origin=idp.issuer)
    stranger.create(
        {"rp": {"id": "127.0.0.1"}, "user": {"id": b64url(b"someone")}, "challenge": "x"}
    )
    browser = CitizenBrowser(idp.issuer)
    _, page = at_sign_in(browser, client)
    refused(passwordless(browser, page, stranger), 400, "unknown_credential")


# -- Challenges: once, briefly, in the browser that asked ----------------------------------------


def test_a_replayed_answer_is_refused_even_with_the_old_cookie(idp, with_passkey, authenticator):
    browser = CitizenBrowser(idp.issuer)
    box = passkey_box(browser.get(idp.url("/sign-in")), "sign-in")
    options = options_for(browser, box)
    answer = authenticator.get(options)
    stolen_cookie = browser.http.cookies.get(CSRF_COOKIE)
    response = post_json(browser, box.verify_url, {"credential": answer}, box.csrf_token)
    assert response.status_code == 200, response.text

    # The same answer again from the same browser...
    again = post_json(browser, box.verify_url, {"credential": answer}, box.csrf_token)
    refused(again, 400, "challenge_expired")
    # ...and from another one holding a copy of the cookie that carried the challenge's handle.
    replay = httpx.post(
        box.verify_url,
        json={"credential": answer},
        headers={
            "X-CSRFToken": box.csrf_token,
            "Cookie": f"{CSRF_COOKIE}={stolen_cookie}",
            "Origin": idp.issuer,
        },
    )
    refused(replay, 400, "challenge_expired")
    assert "idp_session" not in replay.headers.get("set-cookie", "")


@pytest.fixture(scope="module")
def second_process(live_idp, database_url) -> Iterator[LiveIdP]:
    """Another IdP process on the same database, instance folder and issuer."""
    settings = live_idp.app.config["IDP_SETTINGS"]
    served = serve_idp(database_url, settings.instance_path, issuer=settings.issuer)
    yield served
    served.close()


@pytest.mark.both_databases
def test_two_processes_cannot_both_accept_one_answer(idp, second_process, citizen):
    # A synced passkey keeps its count at 0, so only the challenge stops the second use.
    authenticator = SoftwareAuthenticator(origin=idp.issuer, synced=True, counts_signatures=False)
    assert add_passkey(idp, signed_in_fully(idp, citizen), authenticator).status_code == 200
    port = second_process.app.config["IDP_SETTINGS"].port
    for _round in range(5):
        browser = CitizenBrowser(idp.issuer)
        box = passkey_box(browser.get(idp.url("/sign-in")), "sign-in")
        answer = {"credential": authenticator.get(options_for(browser, box))}
        urls = [box.verify_url, str(httpx.URL(box.verify_url).copy_with(port=port))]
        barrier = threading.Barrier(len(urls))

        def send(url: str, answer=answer, box=box, browser=browser, barrier=barrier):
            barrier.wait()
            return post_json(browser, url, answer, box.csrf_token)

        with ThreadPoolExecutor(len(urls)) as pool:
            statuses = sorted(r.status_code for r in pool.map(send, urls))
        assert statuses == [200, 400], statuses


def test_an_answer_in_another_browser_is_refused(idp, with_passkey, authenticator):
    asking = CitizenBrowser(idp.issuer)
    box = passkey_box(asking.get(idp.url("/sign-in")), "sign-in")
    answer = authenticator.get(options_for(asking, box))
    other = CitizenBrowser(idp.issuer)
    other_box = passkey_box(other.get(idp.url("/sign-in")), "sign-in")
    refused(
        post_json(other, other_box.verify_url, {"credential": answer}, other_box.csrf_token),
        400,
        "challenge_expired",
    )


def test_an_expired_challenge_is_refused(idp, with_passkey, authenticator):
    browser = CitizenBrowser(idp.issuer)
    box = passkey_box(browser.get(idp.url("/sign-in")), "sign-in")
    answer = authenticator.get(options_for(browser, box))
    with idp.app.app_context():
        db.session.execute(
            update(WebAuthnChallenge).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    refused(
        post_json(browser, box.verify_url, {"credential": answer}, box.csrf_token),
        400,
        "challenge_expired",
    )
    assert (
        "expired"
        in refused(post_json(browser, box.verify_url, {"credential": answer}, box.csrf_token))[
            "message"
        ]
    )


def test_challenges_live_five_minutes_and_only_a_hash_of_the_handle_is_stored(idp, with_passkey):
    browser = CitizenBrowser(idp.issuer)
    box = passkey_box(browser.get(idp.url("/sign-in")), "sign-in")
    options = options_for(browser, box)
    with idp.app.app_context():
        [row] = db.session.scalars(select(WebAuthnChallenge).filter_by(purpose="sign_in")).all()
        lifetime = row.expires_at - row.created_at
        handle_hash = row.handle_hash
        assert row.challenge == options["challenge"]
    assert lifetime == timedelta(minutes=5)
    assert handle_hash not in browser.http.cookies.get(CSRF_COOKIE, "")
    assert options["timeout"] == 300000


# -- Sign counts -------------------------------------------------------------------------------


@pytest.mark.parametrize("stale", [1, 0], ids=["same-count", "count-back-to-zero"])
def test_a_sign_count_that_does_not_increase_is_refused_as_a_possible_clone(
    idp, with_passkey, client, authenticator, audit_lines, stale
):
    first = CitizenBrowser(idp.issuer)
    response = passwordless(first, first.get(idp.url("/sign-in")), authenticator)
    assert response.status_code == 200
    assert stored_passkeys(idp, with_passkey)[0].sign_count == 1

    clone = CitizenBrowser(idp.issuer)
    response = passwordless(clone, clone.get(idp.url("/sign-in")), authenticator, sign_count=stale)
    refused(response, 400, "verification_failed")
    assert clone.get(idp.url("/")).status_code == 302
    assert stored_passkeys(idp, with_passkey)[0].sign_count == 1
    [event] = events(audit_lines, "passkey.sign_count_regressed")
    assert event["citizen_id"] == with_passkey["id"]
    assert "cloned" in event["reason"]


# -- Bad input ----------------------------------------------------------------------------------


def _valid_looking(answer: dict, **response_changes) -> dict:
    changed = json.loads(json.dumps(answer))
    changed["response"].update(response_changes)
    return changed


MALFORMED = {
    "not-json": lambda answer: b"{not json",
    "json-null": lambda answer: b"null",
    "json-list": lambda answer: b"[1, 2, 3]",
    "credential-a-string": lambda answer: json.dumps({"credential": "abc"}).encode(),
    "credential-empty": lambda answer: json.dumps({"credential": {}}).encode(),
    "no-response": lambda answer: json.dumps(
        {"credential": {k: v for k, v in answer.items() if k != "response"}}
    ).encode(),
    "response-fields-numbers": lambda answer: json.dumps(
        {"credential": _valid_looking(answer, clientDataJSON=1, authenticatorData=2)}
    ).encode(),
    "not-base64url": lambda answer: json.dumps(
        {"credential": _valid_looking(answer, clientDataJSON="!!!*** not base64 ***")}
    ).encode(),
    "client-data-not-json": lambda answer: json.dumps(
        {"credential": _valid_looking(answer, clientDataJSON=b64url(b"\xff\xfe garbage"))}
    ).encode(),
    "authenticator-data-garbage": lambda answer: json.dumps(
        {"credential": _valid_looking(answer, authenticatorData=b64url(b"\x00" * 5))}
    ).encode(),
    "signature-garbage": lambda answer: json.dumps(
        {"credential": _valid_looking(answer, signature=b64url(b"\x30\x02\x01"))}
    ).encode(),
    "id-not-raw-id": lambda answer: json.dumps(
        {"credential": {**answer, "id": b64url(b"another id")}}
    ).encode(),
    "huge-id": lambda answer: json.dumps({"credential": {**answer, "id": "A" * 2000}}).encode(),
    "wrong-type": lambda answer: json.dumps(
        {"credential": {**answer, "type": "password"}}
    ).encode(),
    "user-handle-a-number": lambda answer: json.dumps(
        {"credential": _valid_looking(answer, userHandle=7)}
    ).encode(),
    "deeply-nested": lambda answer: b"[" * 5000 + b"]" * 5000,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_answers_get_a_clear_json_400(idp, with_passkey, authenticator, case):
    forget_throttling(idp)
    browser = CitizenBrowser(idp.issuer)
    box = passkey_box(browser.get(idp.url("/sign-in")), "sign-in")
    answer = authenticator.get(options_for(browser, box))
    response = post_json(browser, box.verify_url, None, box.csrf_token, raw=MALFORMED[case](answer))
    refused(response, 400)
    assert browser.get(idp.url("/")).status_code == 302


@pytest.mark.parametrize("case", ["not-json", "credential-empty", "not-base64url", "huge-id"])
def test_malformed_registrations_and_second_steps_get_a_clear_json_400(
    idp, citizen, authenticator, client, case
):
    browser = signed_in_fully(idp, citizen)
    box = register_box(idp, browser)
    answer = authenticator.create(options_for(browser, box))
    answer["response"]["authenticatorData"] = answer["response"]["attestationObject"]
    answer["response"]["signature"] = "AA"
    refused(post_json(browser, box.verify_url, None, box.csrf_token, raw=MALFORMED[case](answer)))
    assert stored_passkeys(idp, citizen) == []

    assert add_passkey(idp, browser, authenticator.__class__(origin=idp.issuer)).status_code == 200
    second = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(second, client, citizen)
    box = passkey_box(page, "second-factor")
    options_for(second, box)
    refused(post_json(second, box.verify_url, None, box.csrf_token, raw=MALFORMED[case](answer)))


def test_an_answer_sent_as_a_form_is_refused(idp, with_passkey):
    browser = CitizenBrowser(idp.issuer)
    box = passkey_box(browser.get(idp.url("/sign-in")), "sign-in")
    response = browser.http.post(
        box.verify_url, data={"credential": "{}"}, headers={"X-CSRFToken": box.csrf_token}
    )
    refused(response, 400, "invalid_request")


@pytest.mark.parametrize("token", [None, "not-the-token"], ids=["no-token", "wrong-token"])
def test_ceremonies_need_the_csrf_token(idp, with_passkey, authenticator, token):
    browser = CitizenBrowser(idp.issuer)
    box = passkey_box(browser.get(idp.url("/sign-in")), "sign-in")
    refused(post_json(browser, box.options_url, {}, token), 400, "csrf")
    answer = authenticator.get(options_for(browser, box))
    refused(post_json(browser, box.verify_url, {"credential": answer}, token), 400, "csrf")
    # Nothing was used up: with the token the same answer still signs in.
    response = post_json(browser, box.verify_url, {"credential": answer}, box.csrf_token)
    assert response.status_code == 200


# -- Removing passkeys -------------------------------------------------------------------------


def remove_button(page: httpx.Response, passkey_id: int) -> str:
    match = re.search(rf'action="(/account/passkeys/{passkey_id}/remove)"', page.text)
    assert match, page.text[:1000]
    return match.group(1)


def test_removing_a_passkey(idp, with_passkey, client, authenticator, audit_lines):
    browser = signed_in_fully(idp, with_passkey)
    [stored] = stored_passkeys(idp, with_passkey)
    page = browser.get(idp.url("/account/passkeys"))
    response = browser.follow(browser.submit(page, {}, action=remove_button(page, stored.id)))
    assert "That passkey is removed" in response.text
    assert "You have no passkeys yet." in response.text
    assert stored_passkeys(idp, with_passkey) == []
    [removed] = events(audit_lines, "passkey.removed")
    assert removed["passkey_id"] == stored.id
    # It no longer signs in.
    other = CitizenBrowser(idp.issuer)
    _, page = at_sign_in(other, client)
    refused(passwordless(other, page, authenticator), 400, "unknown_credential")


@pytest.mark.both_databases
def test_another_citizens_passkey_cannot_be_removed(idp, with_passkey, make_citizen):
    [stored] = stored_passkeys(idp, with_passkey)
    intruder = signed_in_fully(idp, make_citizen(unique_email()))
    token = passkey_box(intruder.get(idp.url("/sign-in")), "sign-in").csrf_token
    for passkey_id in (stored.id, 2**31, 10**30):
        response = intruder.http.post(
            idp.url(f"/account/passkeys/{passkey_id}/remove"), data={"csrf_token": token}
        )
        assert response.status_code == 404
        assert "That passkey is not on your account." in html.unescape(response.text)
    assert len(stored_passkeys(idp, with_passkey)) == 1


def test_removing_needs_the_csrf_token(idp, with_passkey):
    browser = signed_in_fully(idp, with_passkey)
    [stored] = stored_passkeys(idp, with_passkey)
    response = browser.http.post(idp.url(f"/account/passkeys/{stored.id}/remove"))
    assert response.status_code == 400
    assert len(stored_passkeys(idp, with_passkey)) == 1


def test_the_last_second_factor_cannot_be_removed(idp, make_citizen, client, authenticator):
    citizen, _ = passkey_only_citizen(idp, make_citizen, client, authenticator)
    browser = CitizenBrowser(idp.issuer)
    _, page = at_sign_in(browser, client)
    went_to(browser, passwordless(browser, page, authenticator))
    [only] = stored_passkeys(idp, citizen)
    page = browser.get(idp.url("/account/passkeys"))
    response = browser.submit(page, {}, action=remove_button(page, only.id))
    assert response.status_code == 400
    assert "You cannot remove your only passkey" in response.text
    assert len(stored_passkeys(idp, citizen)) == 1

    # With a second passkey, either can go.
    browser.password = citizen["password"]
    assert add_passkey(idp, browser, SoftwareAuthenticator(origin=idp.issuer)).status_code == 200
    page = browser.get(idp.url("/account/passkeys"))
    response = browser.follow(browser.submit(page, {}, action=remove_button(page, only.id)))
    assert "That passkey is removed" in response.text
    assert len(stored_passkeys(idp, citizen)) == 1


# -- Throttling --------------------------------------------------------------------------------


def test_failed_assertions_are_throttled(idp, with_passkey, client, authenticator, clock):
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("second_factor")
    refused_at = next(k for k in range(1, 1000) if k >= limits.max_failures or delay(limits, k) > 0)
    browser = CitizenBrowser(idp.issuer)
    attempt, page = at_second_factor(browser, client, with_passkey)
    for _attempt in range(refused_at - 1):
        response = assertion_at_second_factor(
            browser, page, authenticator, origin="https://x.example"
        )
        refused(response, 400, "verification_failed")
    response = assertion_at_second_factor(browser, page, authenticator, origin="https://x.example")
    body = refused(response, 429, "too_many_attempts")
    assert "Wait" in body["message"]
    assert int(response.headers["retry-after"]) >= 1

    # While throttled, even the right passkey is not checked...
    response = assertion_at_second_factor(browser, page, authenticator)
    refused(response, 429, "too_many_attempts")
    assert browser.get(idp.url("/")).status_code == 302
    # ...and once the wait is over, it works.
    clock.advance(delay(limits, refused_at) + 0.3)
    response = assertion_at_second_factor(browser, page, authenticator)
    claims = id_token_claims(client, attempt, finish(browser, went_to(browser, response)))
    assert claims["amr"] == ["pwd", "hwk"]


def test_failed_passkey_sign_ins_count_against_the_owner(idp, with_passkey, authenticator):
    limits = idp.app.config["IDP_SETTINGS"].throttle_limits("second_factor")
    browser = CitizenBrowser(idp.issuer)
    statuses = []
    for _attempt in range(limits.max_failures + 1):
        page = browser.get(idp.url("/sign-in"))
        response = passwordless(browser, page, authenticator, user_verified=False)
        statuses.append(response.status_code)
    assert statuses[0] == 400
    assert 429 in statuses


# -- A passkey instead of an app, after sign-up ------------------------------------------------


def test_a_new_citizen_can_choose_a_passkey_and_gets_recovery_codes(
    idp, make_citizen, client, authenticator, audit_lines
):
    citizen = make_citizen(unique_email(), second_factor=False)
    browser = CitizenBrowser(idp.issuer)
    attempt, page = at_second_factor(browser, client, citizen)
    assert "Set up an authenticator app" in page.text
    assert "Use a passkey instead" in page.text
    box = passkey_box(page, "setup")
    options = options_for(browser, box)
    assert options["authenticatorSelection"]["residentKey"] == "required"
    response = post_json(
        browser, box.verify_url, {"credential": authenticator.create(options)}, box.csrf_token
    )
    page = went_to(browser, response)
    assert "Your passkey is set up" in page.text
    codes = re.findall(r"<li><code>([^<]*)</code></li>", page.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    with idp.app.app_context():
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.citizen_id == citizen["id"])
            )
            == 10
        )
    # The codes are shown once: reloading the page does not issue new ones.
    again = browser.follow(browser.get(page.url))
    assert codes[0] not in again.text
    # The continue button goes on with the journey, now at Cl.Cm with the passkey.
    link = html.unescape(
        re.search(
            r'<a class="govuk-button" data-module="govuk-button" href="([^"]+)"', page.text
        ).group(1)
    )
    params = finish(browser, browser.follow(browser.get(urljoin(str(page.url), link))))
    claims = id_token_claims(client, attempt, params)
    assert (claims["vot"], claims["amr"]) == ("Cl.Cm", ["pwd", "hwk"])
    [added] = events(audit_lines, "passkey.added")
    assert added["first_second_factor"] is True


def test_setting_up_a_passkey_is_refused_once_the_account_has_a_second_factor(
    idp, citizen, authenticator
):
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    # A password alone must not add a second factor to an account that has one.
    body = refused(
        post_json(browser, idp.url("/two-factor/setup/passkey/options"), {}, token),
        400,
        "already_set_up",
    )
    assert body["redirect"]
    assert stored_passkeys(idp, citizen) == []


def test_a_recovery_code_works_for_a_passkey_only_citizen(idp, make_citizen, client, authenticator):
    citizen, codes = passkey_only_citizen(idp, make_citizen, client, authenticator)
    browser = CitizenBrowser(idp.issuer)
    attempt, page = at_second_factor(browser, client, citizen)
    link = re.search(r'href="(/sign-in/recovery-code[^"]*)"', page.text).group(1)
    page = browser.follow(browser.get(urljoin(str(page.url), html.unescape(link))))
    params = finish(browser, browser.follow(browser.submit(page, {"code": codes[0]})))
    assert id_token_claims(client, attempt, params)["amr"] == ["pwd", "otp"]


# -- A passkey is a credential: the password to add one, and removed with a new password -----


def mail_with_subject(idp, address: str, subject: str, timeout: float = 10.0):
    """The newest email to the address with this subject (they are sent in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        for mail in mails_to(idp, address):
            if mail.subject == subject:
                return mail
        assert time.monotonic() < deadline, f"no email {subject!r} to {address}"
        time.sleep(0.05)


def test_a_stolen_session_cannot_add_a_passkey_without_the_password(
    idp, citizen, authenticator, audit_lines
):
    # Someone with the citizen's session cookie (but not the password) goes straight for the
    # ceremony that the account pages' script would run.
    browser = signed_in_fully(idp, citizen)
    token = passkey_box(browser.get(idp.url("/sign-in")), "sign-in").csrf_token
    options_url, verify_url = idp.url("/account/passkeys/options"), idp.url("/account/passkeys")
    body = refused(post_json(browser, options_url, {"name": "Mine"}, token), 403)
    assert body["error"] == "password_required"
    assert body["redirect"].endswith("/account/passkeys/add")
    refused(post_json(browser, verify_url, {"name": "Mine"}, token), 403, "password_required")

    # The passkeys page offers adding one only through the password.
    page = browser.get(idp.url("/account/passkeys"))
    assert 'id="passkey-register"' not in page.text
    assert 'href="/account/passkeys/add"' in page.text

    # A wrong password is refused (and audited like any re-authentication), and opens nothing.
    page = browser.get(idp.url("/account/passkeys/add"))
    wrong = browser.submit(page, {"current_password": "not the password at all"})
    assert wrong.status_code == 400
    assert "Your current password is not right" in wrong.text
    assert 'id="passkey-register"' not in wrong.text
    assert events(audit_lines, "reauthentication.failed")
    refused(post_json(browser, options_url, {"name": "Mine"}, token), 403, "password_required")
    assert stored_passkeys(idp, citizen) == []

    # With the password, one passkey can be added; the next one needs the password again.
    assert add_passkey(idp, browser, authenticator).status_code == 200
    assert len(stored_passkeys(idp, citizen)) == 1
    refused(post_json(browser, options_url, {"name": "Two"}, token), 403, "password_required")


def test_a_session_alone_cannot_set_up_a_first_passkey_once_the_password_is_not_fresh(
    idp, make_citizen, client, authenticator, clock
):
    # A long password is enough alone for a Cl department, so the journey ends without a second
    # factor; whoever has that browser's session later goes straight for the setup ceremony. A
    # passkey signs in on its own (Cl.Cm): it would be theirs, and lock the owner out.
    from idp.accounts import recent_password

    citizen = make_citizen(unique_email(), second_factor=False)
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization(vtr='["Cl"]')
    page = browser.follow(browser.get(attempt.url))
    page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
    assert "code" in finish(browser, page)
    ahead = recent_password.WINDOW_SECONDS + 60
    clock.advance(ahead)

    token = passkey_box(browser.get(idp.url("/sign-in")), "sign-in").csrf_token
    options_url = idp.url("/two-factor/setup/passkey/options")
    body = refused(post_json(browser, options_url, {}, token), 403, "password_required")
    assert body["redirect"].startswith("/two-factor/setup/password")
    answer = {"credential": {"id": "x", "type": "public-key"}}
    refused(post_json(browser, idp.url("/two-factor/setup/passkey"), answer, token), 403)
    assert stored_passkeys(idp, citizen) == []

    # The owner, with the password, chooses a passkey as usual.
    page = browser.follow(browser.get(urljoin(idp.issuer, body["redirect"])))
    page = browser.follow(browser.submit(page, {"current_password": citizen["password"]}))
    box = passkey_box(page, "setup")
    credential = authenticator.create(options_for(browser, box))
    page = went_to(
        browser, post_json(browser, box.verify_url, {"credential": credential}, box.csrf_token)
    )
    assert "Your passkey is set up" in page.text
    assert len(stored_passkeys(idp, citizen)) == 1


def test_the_password_typed_in_one_session_does_not_serve_another(idp, citizen, authenticator):
    browser = signed_in_fully(idp, citizen)
    box = register_box(idp, browser)
    # The citizen signs in again in the same browser (a new session): the typed password was
    # for the old one.
    browser.sign_in(browser.get(idp.url("/sign-in")), citizen["email"], citizen["password"])
    refused(post_json(browser, box.options_url, {"name": "Late"}, box.csrf_token), 403)


def test_the_email_about_a_new_passkey_says_how_to_remove_it(idp, citizen, authenticator):
    assert add_passkey(idp, signed_in_fully(idp, citizen), authenticator).status_code == 200
    mail = mail_with_subject(idp, citizen["email"], "A passkey was added to your account")
    assert "“Laptop”" in mail.body
    assert f"{idp.issuer}/account/passkeys" in mail.body
    assert "Remove" in mail.body
    assert f"{idp.issuer}/reset-password" in mail.body
    assert "If this was not you" in mail.body


def reset_page(idp, citizen) -> tuple[CitizenBrowser, httpx.Response]:
    """A password reset up to the new-password page (email code, then the app's code)."""
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/reset-password"))
    page = browser.follow(browser.submit(page, {"email": citizen["email"]}))
    mail = mail_with_subject(idp, citizen["email"], "Your code to reset your password")
    code = re.search(r"\b(\d{6})\b", mail.body).group(1)
    page = browser.follow(browser.submit(page, {"code": code}))
    code = SECOND_FACTORS[citizen["email"]].next_code()
    if "-" in code:  # the app's codes are used up for now: a recovery code
        page = browser.get(idp.url("/reset-password/second-factor?method=recovery"))
    page = browser.follow(browser.submit(page, {"code": code}))
    assert "Choose a new password" in page.text, page.text[:800]
    return browser, page


NEW_PASSWORD = "a long new passphrase nobody knows"


@pytest.mark.parametrize("remove", [True, False], ids=["removed", "kept"])
def test_a_password_reset_asks_whether_to_remove_the_passkeys(
    idp, with_passkey, client, authenticator, audit_lines, remove
):
    citizen = with_passkey
    [stored] = stored_passkeys(idp, citizen)
    browser, page = reset_page(idp, citizen)
    # The passkeys are listed by name and when they were added.
    assert "Do you want to remove your passkeys?" in page.text
    assert f"Laptop, added {stored.created_at.strftime('%d/%m/%Y %H:%M UTC')}" in page.text
    fields = {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    if remove:
        fields["remove_passkeys"] = "y"
    done = browser.follow(browser.submit(page, fields))
    assert done.status_code == 200, done.text[:500]

    other = CitizenBrowser(idp.issuer)
    _, page = at_sign_in(other, client)
    if not remove:
        assert len(stored_passkeys(idp, citizen)) == 1
        assert not events(audit_lines, "passkey.removed")
        went_to(other, passwordless(other, page, authenticator))
        return
    assert stored_passkeys(idp, citizen) == []
    [removed] = events(audit_lines, "passkey.removed")
    assert removed["passkey_id"] == stored.id and removed["during"] == "password_reset"
    mail = mail_with_subject(idp, citizen["email"], "Passkeys were removed from your account")
    assert "“Laptop”" in mail.body
    # The passkey someone may have added no longer signs in.
    refused(passwordless(other, page, authenticator), 400, "unknown_credential")


def test_a_password_change_can_remove_the_passkeys(idp, with_passkey, audit_lines):
    citizen = with_passkey
    browser = signed_in_fully(idp, citizen)
    page = browser.get(idp.url("/account/password"))
    assert "Do you want to remove your passkeys?" in page.text
    assert "Laptop, added " in page.text
    done = browser.follow(
        browser.submit(
            page,
            {
                "current_password": citizen["password"],
                "password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
                "remove_passkeys": "y",
            },
        )
    )
    assert done.status_code == 200, done.text[:500]
    assert stored_passkeys(idp, citizen) == []
    [removed] = events(audit_lines, "passkey.removed")
    assert removed["during"] == "password_change"
    mail_with_subject(idp, citizen["email"], "Passkeys were removed from your account")


def test_a_new_password_page_without_passkeys_does_not_ask(idp, citizen):
    browser = signed_in_fully(idp, citizen)
    page = browser.get(idp.url("/account/password"))
    assert page.status_code == 200
    assert "Do you want to remove your passkeys?" not in page.text

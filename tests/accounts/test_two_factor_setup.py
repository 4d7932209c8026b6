"""Setting up an authenticator app over HTTP: straight after sign-up, or when a citizen without
one signs in for a department that needs it; the QR code and the key, confirming with a code,
the ten recovery codes shown once; the account page; the development page with the demo code."""

from __future__ import annotations

import html
import os
import re
import uuid
from urllib.parse import urljoin

import httpx
import pyotp
import pytest
from sqlalchemy import select

from idp import clock, create_app
from idp.development import demo
from idp.extensions import db
from idp.models import RecoveryCode, TotpCredential
from idp.settings import load_settings
from tests.support.audit import captured_log, logged_events
from tests.support.browser import SECOND_FACTOR_HEADING, CitizenBrowser, callback

SETUP_HEADING = "Set up an authenticator app"
CODES_HEADING = "Your authenticator app is set up"
WRONG_TOTP = "Enter the 6-digit code your authenticator app shows now"
CONSENT_HEADING = "wants to know who you are"
RECOVERY_CODE = re.compile(r"<li><code>([^<]*)</code></li>")
SECRET = re.compile(r'id="totp-secret">([^<]+)<')


def unique_email() -> str:
    return f"citizen.{uuid.uuid4().hex[:10]}@example.com"


def sign_up(idp, browser: CitizenBrowser, client, email: str):
    """Start a department's journey and create an account from its sign-in page."""
    attempt = client.authorization()
    sign_in = browser.follow(browser.get(attempt.url))
    match = re.search(r'href="(/sign-up[^"]*)"', sign_in.text)
    assert match, sign_in.text[:800]
    page = browser.get(idp.url(html.unescape(match.group(1))))
    password = "a passphrase for the setup tests"
    fields = {
        "email": email,
        "given_name": "Ada",
        "family_name": "Lovelace",
        "password": password,
        "confirm": password,
    }
    return attempt, browser.sign_up(idp, page, fields)


def shown_secret(page: httpx.Response) -> str:
    """The key shown as text (in groups of four), without the spaces."""
    match = SECRET.search(page.text)
    assert match, page.text[:800]
    return html.unescape(match.group(1)).replace(" ", "")


def fresh_code(secret: str) -> str:
    """The app's code now, away from the end of a time step."""
    left = 30 - clock.time() % 30
    if left < 3:
        clock.advance(left + 0.2)
    return pyotp.TOTP(secret).at(clock.time())


def wrong_code(secret: str) -> str:
    totp = pyotp.TOTP(secret)
    near = {totp.at(clock.time() + 30 * d) for d in range(-3, 4)}
    return next(c for c in (f"{n:06d}" for n in range(0, 10**6, 7919)) if c not in near)


def continue_link(page: httpx.Response) -> str:
    """Where the recovery codes page's button goes."""
    match = re.search(
        r'<a class="govuk-button" data-module="govuk-button" href="([^"]+)"', page.text
    )
    assert match, page.text[:800]
    return urljoin(str(page.url), html.unescape(match.group(1)))


def finish(browser: CitizenBrowser, response: httpx.Response) -> dict[str, str]:
    if response.status_code == 200 and CONSENT_HEADING in response.text:
        response = browser.consent(response)
    return callback(response).params


def id_token_claims(client, attempt, code: str) -> dict:
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    return client.validate_id_token(response.json()["id_token"], attempt.nonce)


def credential_of(idp, email: str) -> TotpCredential | None:
    from idp.accounts.citizens import find_citizen_by_email

    with idp.app.app_context():
        citizen = find_citizen_by_email(email)
        credential = db.session.scalar(select(TotpCredential).filter_by(citizen_id=citizen.id))
        if credential is not None:
            db.session.expunge(credential)
        return credential


def password_sign_in(idp, browser: CitizenBrowser, citizen: dict) -> httpx.Response:
    """Sign in with the password only, outside any journey; the redirect that follows."""
    page = browser.get(idp.url("/sign-in"))
    return browser.submit_sign_in(page, citizen["email"], citizen["password"])


@pytest.fixture
def browser(idp) -> CitizenBrowser:
    return CitizenBrowser(idp.issuer)


# -- After sign-up -----------------------------------------------------------------------------


def test_sign_up_leads_to_setup_with_a_qr_code_and_the_key(idp, browser, make_client):
    client = make_client()
    email = unique_email()
    _, response = sign_up(idp, browser, client, email)
    assert response.status_code == 303
    assert "/two-factor/setup" in response.headers["location"]
    assert "journey=" in response.headers["location"]
    page = browser.follow(response)
    assert page.status_code == 200
    assert SETUP_HEADING in page.text
    # The QR code is inline SVG: no image request, nothing external.
    qr = re.search(r'<div class="idp-qr-code"[^>]*>(.*?)</div>', page.text, re.S)
    assert qr and qr.group(1).lstrip().startswith("<svg")
    assert "<path" in qr.group(1)
    secret = shown_secret(page)
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    assert re.search(r'id="totp-secret">([A-Z2-7]{4} ){7}[A-Z2-7]{4}<', page.text)
    assert 'autocomplete="one-time-code"' in page.text
    assert "no-store" in page.headers.get("cache-control", "")
    # Stored encrypted and not yet confirmed.
    credential = credential_of(idp, email)
    assert credential.confirmed_at is None
    assert secret not in credential.secret_encrypted


def test_the_code_confirms_the_app_and_shows_ten_recovery_codes_once(idp, browser, make_client):
    client = make_client()
    email = unique_email()
    attempt, response = sign_up(idp, browser, client, email)
    page = browser.follow(response)
    secret = shown_secret(page)

    codes_page = browser.submit(page, {"code": fresh_code(secret)})
    assert codes_page.status_code == 200, codes_page.text[:500]
    assert CODES_HEADING in codes_page.text
    assert "no-store" in codes_page.headers.get("cache-control", "")
    codes = RECOVERY_CODE.findall(codes_page.text)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", code), code
        assert not set(code.replace("-", "")) & set("01ilo"), code  # no look-alikes
    credential = credential_of(idp, email)
    assert credential.confirmed_at is not None
    with idp.app.app_context():
        hashes = db.session.scalars(
            select(RecoveryCode.code_hash).where(RecoveryCode.citizen_id == credential.citizen_id)
        ).all()
    assert len(hashes) == 10
    assert not {c.replace("-", "") for c in codes} & set(hashes)  # stored hashed only

    # Reloading the setup page does not show the codes (nor a new key) again.
    reloaded = browser.get(idp.url("/two-factor/setup"))
    assert reloaded.status_code == 302
    followed = browser.follow(reloaded)
    for code in codes:
        assert code not in followed.text
    assert SETUP_HEADING not in followed.text

    # The journey goes on with the second factor already met: consent, then the code.
    params = finish(browser, browser.follow(browser.get(continue_link(codes_page))))
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["pwd", "otp"])

    # A shown recovery code works for a later sign-in.
    other = CitizenBrowser(idp.issuer)
    sign_in = other.follow(other.get(client.authorization().url))
    page = other.follow(other.submit_sign_in(sign_in, email, "a passphrase for the setup tests"))
    assert SECOND_FACTOR_HEADING in page.text
    recovery = other.follow(other.get(idp.url(f"/sign-in/recovery-code?{page.url.query.decode()}")))
    assert "code" in finish(other, other.follow(other.submit(recovery, {"code": codes[3]})))


def test_a_wrong_code_keeps_the_app_unconfirmed(idp, browser, make_client):
    client = make_client()
    email = unique_email()
    _, response = sign_up(idp, browser, client, email)
    page = browser.follow(response)
    secret = shown_secret(page)

    for code in (wrong_code(secret), "12345", "abcdef", ""):
        refused = browser.submit(page, {"code": code})
        assert refused.status_code == 400, (code, refused.status_code)
        assert SETUP_HEADING in refused.text
        assert CODES_HEADING not in refused.text
        assert RECOVERY_CODE.search(refused.text) is None
        # The same key stays on the page, so the citizen can try again.
        assert shown_secret(refused) == secret
        page = refused
    assert WRONG_TOTP in browser.submit(page, {"code": wrong_code(secret)}).text
    assert credential_of(idp, email).confirmed_at is None
    with idp.app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(RecoveryCode)) == 0

    # Still unconfirmed: the account page and the second factor page send the citizen to setup.
    account = browser.follow(browser.get(idp.url("/")))
    assert SETUP_HEADING in account.text

    # (Loading the setup page again gave a new key: see the next test.)
    codes_page = browser.submit(account, {"code": fresh_code(shown_secret(account))})
    assert codes_page.status_code == 200
    assert len(RECOVERY_CODE.findall(codes_page.text)) == 10


def test_reloading_the_setup_page_replaces_an_unconfirmed_key(idp, browser, make_client):
    client = make_client()
    _, response = sign_up(idp, browser, client, unique_email())
    first = browser.follow(response)
    old_secret = shown_secret(first)
    second = browser.get(idp.url("/two-factor/setup"))
    assert second.status_code == 200
    new_secret = shown_secret(second)
    assert new_secret != old_secret
    # A key someone saw earlier no longer confirms the app.
    refused = browser.submit(second, {"code": fresh_code(old_secret)})
    assert refused.status_code == 400
    assert shown_secret(refused) == new_secret
    assert browser.submit(refused, {"code": fresh_code(new_secret)}).status_code == 200


def test_setup_needs_a_signed_in_citizen(idp, browser):
    response = browser.get(idp.url("/two-factor/setup"))
    assert response.status_code == 302
    assert "/sign-in" in response.headers["location"]


# -- A citizen who already has an app ----------------------------------------------------------


def test_a_citizen_with_an_app_is_sent_on_and_cannot_set_up_another(idp, browser, make_citizen):
    citizen = make_citizen(unique_email())
    before = credential_of(idp, citizen["email"])

    # With the password only (someone who knows it): no new key, the second factor is asked.
    response = password_sign_in(idp, browser, citizen)
    assert response.headers["location"].endswith("/sign-in/second-factor")
    setup = browser.get(idp.url("/two-factor/setup"))
    assert setup.status_code == 302
    page = browser.follow(setup)
    assert SETUP_HEADING not in page.text
    assert 'id="totp-secret"' not in page.text
    assert SECOND_FACTOR_HEADING in page.text
    posted = browser.submit(
        page,
        {"code": pyotp.TOTP(pyotp.random_base32()).now()},
        action="/two-factor/setup",
    )
    assert posted.status_code == 303
    after = credential_of(idp, citizen["email"])
    assert after.secret_encrypted == before.secret_encrypted
    assert after.confirmed_at == before.confirmed_at

    # Fully signed in: the setup page goes to the account page.
    browser.follow(browser.second_factor(page, citizen["email"]))
    setup = browser.get(idp.url("/two-factor/setup"))
    assert setup.status_code == 302
    assert setup.headers["location"].rstrip("/") in ("", idp.issuer)
    assert browser.follow(setup).status_code == 200


def test_a_citizen_without_an_app_is_sent_to_setup_for_a_cl_cm_department(
    idp, browser, make_citizen, make_client
):
    citizen = make_citizen(unique_email(), second_factor=False)
    assert citizen["totp_secret"] is None
    client = make_client()
    attempt = client.authorization()
    sign_in = browser.follow(browser.get(attempt.url))
    page = browser.follow(browser.submit_sign_in(sign_in, citizen["email"], citizen["password"]))
    assert page.status_code == 200
    assert SETUP_HEADING in page.text
    assert "/two-factor/setup" in str(page.url)
    assert "journey=" in str(page.url)

    codes_page = browser.submit(page, {"code": fresh_code(shown_secret(page))})
    assert len(RECOVERY_CODE.findall(codes_page.text)) == 10
    params = finish(browser, browser.follow(browser.get(continue_link(codes_page))))
    assert params["state"] == attempt.state
    claims = id_token_claims(client, attempt, params["code"])
    assert (claims["vot"], claims["acr"], claims["amr"]) == ("Cl.Cm", "Cl.Cm", ["pwd", "otp"])


# -- The password typed moments ago, or again -------------------------------------------------

PASSWORD_STEP = "To set up the second step of signing in, enter your current password."


@pytest.fixture
def minutes_later(clock):
    """Moves the clock past the few minutes a typed password counts for (recent_password.py)."""
    from idp.accounts import recent_password

    def later() -> None:
        clock.advance(recent_password.WINDOW_SECONDS + 60)

    return later


def test_a_session_alone_cannot_set_up_the_first_app_once_the_password_is_not_fresh(
    idp, browser, make_citizen, make_client, minutes_later
):
    # A long password is enough alone for a Cl department: the journey ends without a second
    # factor. Whoever has the browser's session later must not set one up (it would sign in
    # as the owner, and keep the owner out).
    citizen = make_citizen(unique_email(), second_factor=False)
    client = make_client()
    attempt = client.authorization(vtr='["Cl"]')
    sign_in = browser.follow(browser.get(attempt.url))
    page = browser.follow(browser.submit_sign_in(sign_in, citizen["email"], citizen["password"]))
    assert "code" in finish(browser, page)
    minutes_later()

    page = browser.follow(browser.get(idp.url("/two-factor/setup")))
    assert PASSWORD_STEP in page.text
    assert not SECRET.search(page.text) and 'id="passkey-setup"' not in page.text
    assert credential_of(idp, citizen["email"]) is None  # no key was even made
    # A code sent straight to the setup form is not looked at.
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    posted = browser.http.post(
        idp.url("/two-factor/setup"), data={"csrf_token": token, "code": "123456"}
    )
    assert posted.status_code == 303
    assert "/two-factor/setup/password" in posted.headers["location"]

    # A wrong password is refused and audited like any re-authentication.
    with captured_log("idp.audit") as audit_lines:
        wrong = browser.submit(page, {"current_password": "not the password at all"})
    assert wrong.status_code == 400
    assert "Your current password is not right" in wrong.text
    events = [e["event"] for e in logged_events(audit_lines.getvalue())]
    assert "reauthentication.failed" in events

    # With the password, the app is set up as usual.
    page = browser.follow(browser.submit(page, {"current_password": citizen["password"]}))
    assert SETUP_HEADING in page.text
    codes_page = browser.submit(page, {"code": fresh_code(shown_secret(page))})
    assert len(RECOVERY_CODE.findall(codes_page.text)) == 10


# -- The account page --------------------------------------------------------------------------


def test_the_account_page_needs_the_second_factor(idp, browser, make_citizen):
    citizen = make_citizen(unique_email())
    response = password_sign_in(idp, browser, citizen)
    assert response.status_code == 303
    assert response.headers["location"].endswith("/sign-in/second-factor")

    account = browser.get(idp.url("/"))
    assert account.status_code == 302
    assert account.headers["location"].endswith("/sign-in/second-factor")

    page = browser.follow(account)
    assert SECOND_FACTOR_HEADING in page.text
    signed_in = browser.second_factor(page, citizen["email"])
    assert signed_in.status_code == 200
    assert str(signed_in.url).rstrip("/") == idp.issuer
    assert citizen["email"] in signed_in.text
    assert browser.get(idp.url("/")).status_code == 200


def test_the_account_page_sends_a_citizen_without_an_app_to_setup(idp, browser, make_citizen):
    citizen = make_citizen(unique_email(), second_factor=False)
    password_sign_in(idp, browser, citizen)
    page = browser.follow(browser.get(idp.url("/")))
    assert SETUP_HEADING in page.text
    codes_page = browser.submit(page, {"code": fresh_code(shown_secret(page))})
    assert len(RECOVERY_CODE.findall(codes_page.text)) == 10
    account = browser.follow(browser.get(continue_link(codes_page)))
    assert account.status_code == 200
    assert citizen["email"] in account.text


# -- The development page with the demo citizen's code -----------------------------------------


def test_dev_totp_shows_the_demo_citizens_current_code(dev_idp):
    totp = pyotp.TOTP(demo.DEMO_TOTP_SECRET)
    before = totp.now()
    response = httpx.get(dev_idp.url("/dev/totp"))
    after = totp.now()
    assert response.status_code == 200
    code = re.search(r'id="totp-code"[^>]*>(\d{6})<', response.text).group(1)
    assert code in {before, after}
    assert demo.DEMO_EMAIL in response.text


def test_dev_pages_are_not_served_on_a_public_issuer(tmp_path):
    settings = load_settings(
        config_file=os.devnull,
        issuer="https://sign-in.example.gov.uk",
        instance_path=str(tmp_path),
        departments_file="",
        log_level="WARNING",
    )
    app = create_app(settings)
    web = app.test_client()
    for path in ("/dev/totp", "/dev/outbox"):
        response = web.get(path, base_url="https://sign-in.example.gov.uk")
        assert response.status_code == 404, path
        assert demo.DEMO_TOTP_SECRET not in response.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()

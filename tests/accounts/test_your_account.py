"""Your account: which services know you (and stopping that), where you are signed in (and
signing a browser out), and recent sign-ins."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import jwt

from tests.support.audit import stored_entries
from tests.support.browser import CitizenBrowser
from tests.support.logout_receiver import LogoutReceiver
from tests.support.mail import wait_for_mail


def signed_in_at(idp, client, citizen) -> tuple[CitizenBrowser, dict]:
    """A browser that signed in at the department; the department's tokens."""
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    tokens = client.token_request(cb.params["code"], attempt.code_verifier).json()
    return browser, tokens


def account_page(idp, browser) -> httpx.Response:
    """The account page, as the citizen sees it."""
    page = browser.get(idp.url("/"))
    assert page.status_code == 200, page.text[:300]
    return page


def post_button(browser, page, action_pattern: str) -> httpx.Response:
    """Press the button of the form whose action matches the pattern."""
    action = re.search(rf'action="({action_pattern})"', page.text).group(1)
    return browser.submit(page, {}, action=action)


def test_a_service_the_citizen_shared_with_is_listed_and_can_be_stopped(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    client = make_client(client_name="Renew your passport")
    browser, tokens = signed_in_at(idp, client, citizen)

    page = account_page(idp, browser)
    assert "Renew your passport" in page.text
    stopped = post_button(browser, page, r"/account/services/[^\"]+/revoke")

    assert stopped.status_code == 303
    after = browser.follow(stopped)
    assert "no longer receives your information" in after.text
    assert "Renew your passport" not in after.text
    userinfo = httpx.get(
        idp.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401
    # Next time the service must ask again.
    again = browser.follow(browser.get(client.authorization().url))
    assert "wants to know who you are" in again.text


def test_another_browser_can_be_signed_out_from_the_account_page(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    laptop, _ = signed_in_at(idp, client, citizen)
    phone, _ = signed_in_at(idp, client, citizen)

    page = account_page(idp, laptop)
    assert page.text.count("Sign out this browser") == 2
    assert "(this browser)" in page.text
    other = re.findall(r'action="(/account/sessions/(\d+)/sign-out)"', page.text)
    this_row = re.search(r"\(this browser\).*?/account/sessions/(\d+)/sign-out", page.text, re.S)
    target = next(path for path, sid in other if sid != this_row.group(1))
    response = laptop.submit(page, {}, action=target)

    assert response.status_code == 303
    assert "That browser is signed out" in laptop.follow(response).text
    # The phone's session has ended: its account page asks it to sign in again.
    assert phone.get(idp.url("/")).headers["location"].endswith("/sign-in")


def test_recent_sign_ins_show_when_and_how(idp, make_citizen, make_client):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client(), citizen)
    history = table(account_page(idp, browser), "history")
    assert history[0][1] == "password and authenticator app"


def test_buttons_without_the_form_token_change_nothing(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client(client_name="Renew your passport")
    browser, _ = signed_in_at(idp, client, citizen)
    page = account_page(idp, browser)
    action = re.search(r'action="(/account/services/[^"]+/revoke)"', page.text).group(1)

    forged = browser.http.post(idp.url(action), data={})

    assert forged.status_code == 400
    assert "Renew your passport" in account_page(idp, browser).text


def test_another_citizens_browser_cannot_be_signed_out(idp, make_citizen, make_client):
    client = make_client()
    ada, _ = signed_in_at(idp, client, make_citizen("ada@example.com"))
    grace, _ = signed_in_at(idp, client, make_citizen("grace@example.com"))
    grace_session = re.search(r"/account/sessions/(\d+)/sign-out", account_page(idp, grace).text)

    page = account_page(idp, ada)
    response = ada.submit(page, {}, action=f"/account/sessions/{grace_session.group(1)}/sign-out")

    assert response.status_code == 404
    assert grace.get(idp.url("/")).status_code == 200


def test_the_account_page_needs_the_second_factor(idp, make_citizen, make_client):
    citizen = make_citizen()
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    response = browser.submit_sign_in(page, citizen["email"], citizen["password"])
    assert response.headers["location"].endswith("/sign-in/second-factor")
    assert browser.get(idp.url("/")).headers["location"].endswith("/sign-in/second-factor")


CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
BROWSERS = {
    CHROME_WINDOWS: "Chrome on Windows",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1": "Safari on iPhone",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0": "Firefox on Linux",
    CHROME_WINDOWS + " Edg/120.0.2210.91": "Edge on Windows",
    "TotallyMadeUp/1.0": "Unknown browser",
}


def signed_in_with(idp, client, citizen, user_agent: str) -> CitizenBrowser:
    """A browser that calls itself user_agent, signed in at the department."""
    browser = CitizenBrowser(idp.issuer)
    browser.http.headers["User-Agent"] = user_agent
    attempt = client.authorization()
    browser.authorize(attempt.url, citizen["email"], citizen["password"])
    return browser


def table(page: httpx.Response, table_id: str) -> list[list[str]]:
    """The rows of a table's body on the page, as the text of their cells (the row's header
    cell first): what a person reads, without the words only a screen reader hears."""
    found = re.search(rf'<table [^>]*id="{table_id}">(.*?)</table>', page.text, re.S)
    body = re.search(r"<tbody[^>]*>(.*?)</tbody>", found.group(1), re.S).group(1)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]
    return [[text_of(cell) for cell in row] for row in cells if row]


def text_of(cell: str) -> str:
    """A cell's words as a person sees them (the visually hidden ones left out)."""
    seen = re.sub(r'<span class="govuk-visually-hidden">.*?</span>', "", cell, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", seen).split())


def test_browsers_are_named_as_people_know_them(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browsers = [signed_in_with(idp, client, citizen, agent) for agent in BROWSERS]

    page = account_page(idp, browsers[0])

    devices = [row[0] for row in table(page, "sessions")]
    assert sorted(d.removesuffix(" (this browser)") for d in devices) == sorted(BROWSERS.values())
    assert "Chrome on Windows (this browser)" in devices
    assert "Mozilla/5.0" not in page.text
    assert sorted(row[2] for row in table(page, "history")) == sorted(BROWSERS.values())


def test_each_sign_in_is_one_row_and_a_password_alone_shows_as_such(idp, make_citizen, make_client):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client(), citizen)
    assert [row[1] for row in table(account_page(idp, browser), "history")] == [
        "password and authenticator app"
    ]
    # Someone else typed the password but never got past the second step.
    stranger = CitizenBrowser(idp.issuer)
    stranger.http.headers["User-Agent"] = CHROME_WINDOWS
    page = stranger.get(idp.url("/sign-in"))
    second_step = stranger.submit_sign_in(page, citizen["email"], citizen["password"])
    assert second_step.headers["location"].endswith("/sign-in/second-factor")

    rows = table(account_page(idp, browser), "history")
    assert [row[1:] for row in rows] == [
        ["password", "Chrome on Windows"],
        ["password and authenticator app", "Unknown browser"],
    ]


def set_sign_in_times(idp, citizen_id: int, *moments) -> None:
    """The citizen's sign-ins happened at these moments (UTC), newest first."""
    from idp.extensions import db
    from idp.models import BrowserSession

    with idp.app.app_context():
        sessions = db.session.scalars(
            db.select(BrowserSession)
            .filter_by(citizen_id=citizen_id, replaced_by_id=None)
            .order_by(BrowserSession.id.desc())
        ).all()
        for session, moment in zip(sessions, moments, strict=True):
            session.created_at = moment
        db.session.commit()


def test_times_are_uk_local_time_written_the_gov_uk_way(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browsers = [signed_in_at(idp, client, citizen)[0] for _ in range(4)]
    set_sign_in_times(
        idp,
        citizen["id"],
        datetime(2026, 12, 6, 7, 42, tzinfo=UTC),  # winter: GMT
        datetime(2026, 7, 1, 6, 42, tzinfo=UTC),  # summer: BST, an hour ahead
        datetime(2026, 7, 1, 11, 0, tzinfo=UTC),  # noon BST
        datetime(2026, 1, 15, 0, 0, tzinfo=UTC),  # midnight GMT
    )

    page = account_page(idp, browsers[0])

    assert [row[0] for row in table(page, "history")] == [
        "6 December 2026 at 7:42am",
        "1 July 2026 at 12pm",
        "1 July 2026 at 7:42am",
        "15 January 2026 at 12am",
    ]
    welsh = browsers[0].get(idp.url("/?lang=cy"))
    assert "6 Rhagfyr 2026 am 7:42yb" in welsh.text
    assert "1 Gorffennaf 2026 am 12yh" in welsh.text


def logout_claims(token: str, client) -> dict:
    """A logout token's claims, checked against the IdP's published keys as a department does."""
    discovery = client.discovery()
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "logout+jwt"
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key(header["kid"])
    return jwt.decode(
        token,
        key.key,
        algorithms=[header["alg"]],
        audience=client.client_id,
        issuer=discovery["issuer"],
    )


def sid_of(tokens: dict) -> str:
    """The sid the department was told in its ID token."""
    return jwt.decode(tokens["id_token"], options={"verify_signature": False})["sid"]


def test_stop_sharing_tells_the_department_it_signed_the_citizen_out(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    passport, fishing = LogoutReceiver(), LogoutReceiver()
    try:
        client = make_client(client_name="Renew your passport", backchannel_logout_uri=passport.uri)
        other = make_client(
            "dept-b", redirect_uri="https://b.example/cb", backchannel_logout_uri=fishing.uri
        )
        browser, tokens = signed_in_at(idp, client, citizen)
        attempt = other.authorization()
        back = browser.authorize(attempt.url)
        assert other.token_request(back.params["code"], attempt.code_verifier).is_success

        page = account_page(idp, browser)
        assert post_button(browser, page, "/account/services/dept-a/revoke").status_code == 303

        (received,) = passport.wait_for(1)
        claims = logout_claims(received.logout_token, client)
        assert (claims["aud"], claims["sid"]) == ("dept-a", sid_of(tokens))
        # Only that department: the citizen is still signed in here and at the other one.
        assert account_page(idp, browser).status_code == 200
        assert fishing.received == []

        # Used again in the same browser, the department hears of the next sign-out too.
        _, tokens_again = signed_in_at_again(browser, client)
        post_button(browser, account_page(idp, browser), "/sign-out")
        second = passport.wait_for(2)[1]
        assert logout_claims(second.logout_token, client)["sid"] == sid_of(tokens_again)
        assert logout_claims(fishing.wait_for(1)[0].logout_token, other)["aud"] == "dept-b"
    finally:
        passport.close()
        fishing.close()


def signed_in_at_again(browser: CitizenBrowser, client) -> tuple[CitizenBrowser, dict]:
    """The same browser, still signed in at the IdP, agrees to share with the service again."""
    attempt = client.authorization()
    back = browser.authorize(attempt.url)
    return browser, client.token_request(back.params["code"], attempt.code_verifier).json()


def test_reporting_something_unrecognised_signs_out_everywhere_and_says_what_next(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    receiver = LogoutReceiver()
    try:
        client = make_client(client_name="Renew your passport", backchannel_logout_uri=receiver.uri)
        laptop, tokens = signed_in_at(idp, client, citizen)
        phone, _ = signed_in_at(idp, client, citizen)

        account = account_page(idp, laptop)
        link = re.search(r'<a class="govuk-link" href="([^"]+)" id="report">', account.text)
        assert "Report something you do not recognise" in account.text
        confirm = laptop.get(idp.url(link.group(1)))
        assert "sign you out of every browser, including this one (2 signed in now)" in confirm.text
        # Nothing happens until the citizen presses the button.
        assert phone.get(idp.url("/")).status_code == 200

        done = laptop.submit(confirm, {})

        assert done.status_code == 200
        assert "You have been signed out everywhere" in done.text
        services = re.search(r'id="signed-out-services">(.*?)</ul>', done.text, re.S).group(1)
        assert re.findall(r"<li>([^<]+)</li>", services) == ["Renew your passport"]
        assert 'href="/reset-password"' in done.text
        for browser in (laptop, phone):
            assert browser.get(idp.url("/")).headers["location"].endswith("/sign-in")
        # The department hears of both sessions' end; its tokens end too.
        assert len(receiver.wait_for(1)) >= 1
        userinfo = httpx.get(
            idp.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert userinfo.status_code == 401
        mail = wait_for_mail(idp, citizen["email"])
        assert mail.subject == "You reported something you did not recognise"
        assert "/reset-password" in mail.body
        assert "authenticator app, passkeys and recovery codes" in mail.body
        (entry,) = stored_entries(idp, event="citizen.reported_unrecognised")
        assert entry["citizen_id"] == citizen["id"]
        assert entry["sessions_ended"] == 2
    finally:
        receiver.close()


def test_a_report_without_the_form_token_changes_nothing(idp, make_citizen, make_client):
    citizen = make_citizen()
    browser, _ = signed_in_at(idp, make_client(), citizen)

    forged = browser.http.post(idp.url("/account/report"), data={})

    assert forged.status_code == 400
    assert account_page(idp, browser).status_code == 200


def test_a_code_not_yet_redeemed_is_worthless_after_stop_sharing(idp, make_citizen, make_client):
    """The citizen stops sharing between the department getting a code and redeeming it: the
    code gives nothing (invalid_grant), so the department cannot still obtain tokens."""
    citizen = make_citizen()
    client = make_client(client_name="Renew your passport")
    browser, _ = signed_in_at(idp, client, citizen)
    attempt = client.authorization()
    back = browser.authorize(attempt.url)
    code = back.params["code"]

    page = account_page(idp, browser)
    assert post_button(browser, page, "/account/services/dept-a/revoke").status_code == 303

    refused = client.token_request(code, attempt.code_verifier)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"

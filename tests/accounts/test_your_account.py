"""Your account: which services know you (and stopping that), where you are signed in (and
signing a browser out), and recent sign-ins."""

from __future__ import annotations

import re

import httpx

from tests.support.browser import CitizenBrowser


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
    history = re.search(
        r'<table class="table" id="history">(.*?)</table>', account_page(idp, browser).text, re.S
    )
    assert "password and authenticator app" in history.group(1)


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

"""Single sign-on behaviour: prompt, max_age, login_hint, consent memory, session cookie."""

from __future__ import annotations

from tests.support.browser import SIGN_IN_FORM, CitizenBrowser, callback


def signed_in_browser(idp, client, citizen) -> tuple[CitizenBrowser, dict]:
    """A browser that signed in through one department, and that department's ID token claims."""
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    token = client.token_request(cb.params["code"], attempt.code_verifier)
    assert token.status_code == 200, token.text
    return browser, client.validate_id_token(token.json()["id_token"], attempt.nonce)


def test_session_cookie_is_random_httponly_and_samesite_lax(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization().url))
    response = browser.submit_sign_in(page, citizen["email"], citizen["password"])
    set_cookie = [
        h for h in response.headers.get_list("set-cookie") if h.startswith("idp_session=")
    ]
    assert len(set_cookie) == 1
    attributes = set_cookie[0].lower()
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    value = set_cookie[0].split(";")[0].split("=", 1)[1]
    assert len(value) >= 40
    assert citizen["email"] not in value


def test_prompt_none_with_a_session_succeeds_silently(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browser, first = signed_in_browser(idp, client, citizen)
    attempt = client.authorization(prompt="none")
    cb = callback(browser.follow(browser.get(attempt.url)))
    assert "code" in cb.params
    assert cb.params["iss"] == idp.issuer
    token = client.token_request(cb.params["code"], attempt.code_verifier)
    claims = client.validate_id_token(token.json()["id_token"], attempt.nonce)
    assert claims["sid"] == first["sid"]


def test_prompt_none_without_a_session_returns_login_required(idp, make_client):
    client = make_client()
    attempt = client.authorization(prompt="none")
    browser = CitizenBrowser(idp.issuer)
    cb = callback(browser.get(attempt.url))
    assert cb.params["error"] == "login_required"
    assert cb.params["state"] == attempt.state
    assert cb.params["iss"] == idp.issuer


def test_prompt_none_without_consent_returns_consent_required(idp, make_citizen, make_client):
    citizen = make_citizen()
    first = make_client("first", redirect_uri="https://first.example.gov.uk/cb")
    second = make_client("second", redirect_uri="https://second.example.gov.uk/cb")
    browser, _ = signed_in_browser(idp, first, citizen)
    attempt = second.authorization(prompt="none")
    cb = callback(browser.follow(browser.get(attempt.url)))
    assert cb.params["error"] == "consent_required"
    assert cb.params["state"] == attempt.state


def test_prompt_login_forces_a_fresh_sign_in_and_a_later_auth_time(
    idp, make_citizen, make_client, clock
):
    citizen = make_citizen()
    client = make_client()
    browser, first = signed_in_browser(idp, client, citizen)
    clock.advance(1.1)
    attempt = client.authorization(prompt="login")
    page = browser.follow(browser.get(attempt.url))
    assert SIGN_IN_FORM in page.text, "prompt=login must ask for the password again"
    cb = callback(browser.sign_in(page, citizen["email"], citizen["password"]))
    token = client.token_request(cb.params["code"], attempt.code_verifier)
    claims = client.validate_id_token(token.json()["id_token"], attempt.nonce)
    assert claims["auth_time"] > first["auth_time"]
    assert claims["sid"] != first["sid"], "the session identifier changes at sign-in"


def test_max_age_older_than_the_session_forces_sign_in(idp, make_citizen, make_client, clock):
    citizen = make_citizen()
    client = make_client()
    browser, first = signed_in_browser(idp, client, citizen)
    # A generous max_age is satisfied by the existing session...
    attempt = client.authorization(max_age="3600")
    cb = callback(browser.follow(browser.get(attempt.url)))
    assert "code" in cb.params
    # ...and an exceeded one asks again, then issues a fresh auth_time.
    clock.advance(1.1)
    attempt = client.authorization(max_age="0")
    page = browser.follow(browser.get(attempt.url))
    assert SIGN_IN_FORM in page.text
    cb = callback(browser.sign_in(page, citizen["email"], citizen["password"]))
    token = client.token_request(cb.params["code"], attempt.code_verifier)
    claims = client.validate_id_token(token.json()["id_token"], attempt.nonce)
    assert claims["auth_time"] > first["auth_time"]


def test_max_age_exceeded_with_prompt_none_returns_login_required(
    idp, make_citizen, make_client, clock
):
    citizen = make_citizen()
    client = make_client()
    browser, _ = signed_in_browser(idp, client, citizen)
    clock.advance(1.1)
    attempt = client.authorization(prompt="none", max_age="0")
    cb = callback(browser.follow(browser.get(attempt.url)))
    assert cb.params["error"] == "login_required"


def test_login_hint_prefills_the_email(idp, make_client):
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization(login_hint="hint@example.com").url))
    assert 'value="hint@example.com"' in page.text


def test_sign_in_page_names_the_department(idp, make_client):
    client = make_client("tax", client_name="HMRC: Your tax account")
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization().url))
    assert "HMRC: Your tax account" in page.text


def test_consent_is_remembered_and_prompt_consent_asks_again(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browser, _ = signed_in_browser(idp, client, citizen)
    # Remembered: no consent page the second time.
    cb = callback(browser.follow(browser.get(client.authorization().url)))
    assert "code" in cb.params
    # prompt=consent shows the page again, listing what the department will receive.
    page = browser.follow(browser.get(client.authorization(prompt="consent").url))
    assert "wants to know who you are" in page.text
    assert "your email address" in page.text
    cb = callback(browser.consent(page))
    assert "code" in cb.params


def test_consent_page_lists_new_scopes_when_a_department_asks_for_more(
    idp, make_citizen, make_client
):
    citizen = make_citizen(phone_number="+447700900123", phone_number_verified=True)
    client = make_client()
    browser, _ = signed_in_browser(idp, client, citizen)
    page = browser.follow(browser.get(client.authorization(scope="openid email phone").url))
    assert "wants to know who you are" in page.text
    assert "your phone number" in page.text


def test_consent_page_promises_only_what_the_account_holds(idp, make_citizen, make_client):
    """A department asking for a phone number of a citizen who never gave one: the consent page
    does not list it (userinfo would leave it out)."""
    citizen = make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization(scope="openid email phone").url))
    page = browser.sign_in(page, citizen["email"], citizen["password"])
    assert "wants to know who you are" in page.text
    assert "your email address" in page.text
    assert "your phone number" not in page.text


def test_refusing_consent_returns_access_denied(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"], allow=False)
    assert cb.params["error"] == "access_denied"
    assert cb.params["state"] == attempt.state
    assert cb.params["iss"] == idp.issuer


def test_wrong_password_shows_an_error_summary_and_no_session(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization().url))
    response = browser.submit_sign_in(page, citizen["email"], "not the password")
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert "Enter the correct password for this email address" in response.text
    assert not any(h.startswith("idp_session=") for h in response.headers.get_list("set-cookie"))


def test_unknown_email_gets_the_same_answer_as_a_wrong_password(idp, make_citizen, make_client):
    make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization().url))
    response = browser.submit_sign_in(page, "nobody@example.com", "whatever1")
    assert response.status_code == 400
    assert "Enter the correct password for this email address" in response.text


def test_signing_out_at_the_idp_ends_single_sign_on(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browser, _ = signed_in_browser(idp, client, citizen)
    account = browser.get(idp.url("/"))
    assert citizen["email"] in account.text
    signed_out = browser.submit(account, {}, action="/sign-out")
    assert "You have signed out" in signed_out.text
    cb = callback(browser.get(client.authorization(prompt="none").url))
    assert cb.params["error"] == "login_required"


def test_a_stale_or_unknown_journey_gets_a_clear_page(idp):
    browser = CitizenBrowser(idp.issuer)
    response = browser.get(idp.url("/authorize/resume?journey=not-a-journey"))
    assert response.status_code == 400
    assert "start again" in response.text

"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at /logout."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from idp.departments.services import change_client_status, update_registration
from idp.extensions import db
from idp.models import Client

RETURN = "https://dept-a.example.gov.uk/signed-out"


def signed_in_department(make_client, issue_code, **metadata):
    client = make_client(post_logout_redirect_uris=[RETURN], **metadata)
    attempt, code = issue_code(client)
    tokens = client.token_request(code, attempt.code_verifier).json()
    return client, tokens


def logout(browser, idp, **params):
    return browser.get(idp.url("/logout?" + urlencode(params)))


def signed_in(browser, idp) -> bool:
    return browser.get(idp.url("/")).status_code == 200


def test_discovery_names_the_end_session_endpoint(make_client):
    assert make_client().discovery()["end_session_endpoint"].endswith("/logout")


def continue_link(page) -> str | None:
    """Where the signed-out page's "Continue to <service>" link goes, if it has one."""
    found = re.search(r'<a href="([^"]+)" role="button"[^>]* id="continue">', page.text)
    return html.unescape(found.group(1)) if found else None


def signed_out_of(page) -> list[str]:
    """The services the signed-out page says the citizen was signed out of."""
    listed = re.search(r'<ul class="[^"]*" id="signed-out-services">(.*?)</ul>', page.text, re.S)
    return re.findall(r"<li>([^<]+)</li>", listed.group(1)) if listed else []


def test_a_valid_hint_signs_out_at_once_and_offers_the_way_back_with_state(
    idp, browser, make_client, issue_code
):
    client, tokens = signed_in_department(make_client, issue_code, client_name="Tax your car")
    response = logout(
        browser,
        idp,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=RETURN,
        state="abc 123",
    )
    # The citizen sees that it worked before going back: no automatic redirect.
    assert response.status_code == 200
    assert "location" not in response.headers
    assert "You have signed out" in response.text
    assert signed_out_of(response) == ["Tax your car"]
    assert "Continue to Tax your car" in response.text
    location = urlsplit(continue_link(response))
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN
    assert parse_qs(location.query) == {"state": ["abc 123"]}
    assert not signed_in(browser, idp)


def test_the_signed_out_page_names_every_service_of_the_session(
    idp, browser, make_client, issue_code
):
    tax, tokens = signed_in_department(make_client, issue_code, client_name="Tax your car")
    fishing = make_client(
        "dept-b", client_name="Get a fishing licence", redirect_uri="https://b.example/cb"
    )
    attempt, code = issue_code(fishing)
    assert fishing.token_request(code, attempt.code_verifier).status_code == 200
    fines = make_client(
        "dept-d",
        client_name="Pay a fine",
        redirect_uri="https://d.example/cb",
        backchannel_logout_uri="https://d.example/logout",
    )
    attempt, code = issue_code(fines)
    assert fines.token_request(code, attempt.code_verifier).status_code == 200
    # A service registered but not used in this session is not named.
    make_client("dept-c", client_name="Register to vote", redirect_uri="https://c.example/cb")

    page = logout(browser, idp, id_token_hint=tokens["id_token"], post_logout_redirect_uri=RETURN)

    # Told: the one that asked, and the one with back-channel logout. The fishing licence
    # service registered no way to be told, so the page does not claim it was.
    assert signed_out_of(page) == ["Pay a fine", "Tax your car"]
    still = re.search(r'id="still-signed-in-services">(.*?)</ul>', page.text, re.S).group(1)
    assert re.findall(r"<li>([^<]+)</li>", still) == ["Get a fishing licence"]
    assert "you may still be signed in to them" in page.text
    assert "Continue to Tax your car" in page.text


def test_an_unregistered_return_address_is_never_used(idp, browser, make_client, issue_code):
    _, tokens = signed_in_department(make_client, issue_code)
    response = logout(
        browser,
        idp,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri="https://evil.example/steal",
        state="s",
    )
    assert response.status_code == 200
    assert "You have signed out" in response.text
    assert "location" not in response.headers
    assert 'href="https://evil.example' not in response.text
    assert continue_link(response) is None
    assert not signed_in(browser, idp)


def change_settings(idp, client_id: str, **metadata):
    """The department changes its service's settings (as on its service page or by RFC 7592);
    a change to where citizens are sent waits for a platform administrator's approval."""
    with idp.app.app_context():
        row = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        update_registration(row, {**row.client_metadata, **metadata}, via="test")
        return row.status


def test_a_return_address_waiting_for_approval_is_never_used(idp, browser, make_client, issue_code):
    client, tokens = signed_in_department(make_client, issue_code)
    # The department adds a return address; the service waits for approval of the change.
    status = change_settings(
        idp, client.client_id, post_logout_redirect_uris=[RETURN, "https://evil.example/x"]
    )
    assert status == "pending"
    for unreviewed in ("https://evil.example/x", RETURN):
        page = logout(
            browser, idp, id_token_hint=tokens["id_token"], post_logout_redirect_uri=unreviewed
        )
        # The citizen is signed out, but stays on the IdP's own page.
        assert page.status_code == 200, page.headers.get("location")
        assert "location" not in page.headers
        assert "You have signed out" in page.text
        assert 'href="https://evil.example' not in page.text
        assert continue_link(page) is None


def test_a_suspended_service_is_not_returned_to(idp, browser, make_client, issue_code):
    client, tokens = signed_in_department(make_client, issue_code)
    with idp.app.app_context():
        row = db.session.scalar(db.select(Client).filter_by(client_id=client.client_id))
        change_client_status(row, "suspend", actor="test", platform_admin=True)
    page = logout(browser, idp, id_token_hint=tokens["id_token"], post_logout_redirect_uri=RETURN)
    assert page.status_code == 200
    assert "location" not in page.headers
    assert "You have signed out" in page.text
    assert not signed_in(browser, idp)


def test_without_a_hint_the_citizen_confirms_first(idp, browser, make_client, issue_code):
    client, _ = signed_in_department(make_client, issue_code)
    page = logout(
        browser, idp, client_id=client.client_id, post_logout_redirect_uri=RETURN, state="xyz"
    )
    assert page.status_code == 200
    assert "Do you want to sign out?" in page.text
    assert signed_in(browser, idp)
    # The confirmation form carries the department's parameters (as hidden fields).
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    assert hidden["post_logout_redirect_uri"] == RETURN
    confirmed = browser.submit(page, hidden)
    # Nothing vouches for the request: the IdP's own page, never a redirect.
    assert confirmed.status_code == 200
    assert "You have signed out" in confirmed.text
    assert "location" not in confirmed.headers
    assert continue_link(confirmed) is None
    assert signed_out_of(confirmed) == ["Department dept-a"]
    assert not signed_in(browser, idp)


def test_without_a_valid_hint_nobody_is_sent_anywhere(
    idp, browser, make_client, issue_code, citizen
):
    # Anyone can send a citizen to /logout with a department's client_id and registered URI:
    # without a hint the IdP signed, the IdP never redirects (an open redirect otherwise).
    client, tokens = signed_in_department(make_client, issue_code)
    forged_hint = tokens["id_token"][:-4] + "AAAA"
    for hint in (None, forged_hint, "not.a.jwt"):
        params = {"client_id": client.client_id, "post_logout_redirect_uri": RETURN, "state": "s"}
        if hint:
            params["id_token_hint"] = hint
        page = logout(browser, idp, **params)
        hidden = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
        )
        confirmed = browser.submit(page, hidden)
        assert confirmed.status_code == 200, hint
        assert "location" not in confirmed.headers
        assert "You have signed out" in confirmed.text
        assert continue_link(confirmed) is None
        # Nobody signed in now: still the signed-out page, no redirect.
        again = logout(browser, idp, **params)
        assert again.status_code == 200
        assert "location" not in again.headers
        assert "You have signed out" in again.text
        page = browser.get(idp.url("/sign-in"))
        browser.sign_in(page, citizen["email"], citizen["password"])
        assert signed_in(browser, idp)


def test_a_forged_hint_is_not_trusted(idp, browser, make_client, issue_code):
    client, tokens = signed_in_department(make_client, issue_code)
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    forged = jwt.encode(
        claims,
        ec.generate_private_key(ec.SECP256R1()),
        algorithm="ES256",
        headers={"kid": jwt.get_unverified_header(tokens["id_token"])["kid"]},
    )
    page = logout(browser, idp, id_token_hint=forged, post_logout_redirect_uri=RETURN)
    assert page.status_code == 200
    assert "We could not check that this request came from a service" in page.text
    assert signed_in(browser, idp)
    for garbage in ("not.a.jwt", "x" * 10_000):
        assert logout(browser, idp, id_token_hint=garbage).status_code == 200
        assert signed_in(browser, idp)


def test_a_hint_for_another_client_id_is_not_trusted(idp, browser, make_client, issue_code):
    _, tokens = signed_in_department(make_client, issue_code)
    page = logout(browser, idp, id_token_hint=tokens["id_token"], client_id="someone-else")
    assert "Do you want to sign out?" in page.text
    assert signed_in(browser, idp)


def test_a_hint_from_an_older_session_asks_first(idp, browser, make_client, issue_code, citizen):
    _, tokens = signed_in_department(make_client, issue_code)
    logout(browser, idp, id_token_hint=tokens["id_token"])
    # Signed in again: a new session; the old ID token does not end it silently.
    page = browser.get(idp.url("/sign-in"))
    browser.sign_in(page, citizen["email"], citizen["password"])
    assert signed_in(browser, idp)
    again = logout(browser, idp, id_token_hint=tokens["id_token"])
    assert "Do you want to sign out?" in again.text
    assert signed_in(browser, idp)


def test_nobody_signed_in_sees_the_signed_out_page(idp, make_client):
    from tests.support.browser import CitizenBrowser

    response = CitizenBrowser(idp.issuer).get(idp.url("/logout"))
    assert response.status_code == 200
    assert "You have signed out" in response.text


def test_the_logout_pages_speak_the_language_the_department_asked_for(
    idp, browser, make_client, issue_code
):
    client, _ = signed_in_department(make_client, issue_code)
    page = logout(
        browser, idp, client_id=client.client_id, post_logout_redirect_uri=RETURN, ui_locales="cy"
    )
    assert page.status_code == 200
    assert '<html lang="cy" ' in page.text
    assert "Do you want to sign out?" not in page.text
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    assert hidden["ui_locales"] == "cy"
    # Nowhere to return to: the signed-out page is in Welsh too.
    nowhere = {k: v for k, v in hidden.items() if k != "post_logout_redirect_uri"}
    done = browser.submit(page, nowhere)
    assert done.status_code == 200
    assert '<html lang="cy" ' in done.text
    english = logout(browser, idp, ui_locales="fr en")
    assert '<html lang="en" ' in english.text

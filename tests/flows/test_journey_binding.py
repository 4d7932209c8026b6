"""A sign-in journey belongs to the browser and the sign-in that took it, and finishes once."""

from __future__ import annotations

import threading

import pytest

from tests.support.browser import CitizenBrowser, callback


def reach_consent(idp, client, citizen) -> tuple[CitizenBrowser, object]:
    """A browser that started a journey and signed in; returns it and the consent page."""
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization().url))
    consent = browser.sign_in(page, citizen["email"], citizen["password"])
    assert "wants to know who you are" in consent.text
    return browser, consent


def test_another_browser_cannot_continue_a_journey(idp, make_citizen, make_client):
    victim = make_citizen("victim@example.com")
    attacker = make_citizen("attacker@example.com")
    client = make_client()
    # The attacker starts a journey, signs in, agrees, and stops before the code is issued.
    attacker_browser, consent = reach_consent(idp, client, attacker)
    allowed = attacker_browser.submit(consent, {}, button="allow")
    resume_url = allowed.headers["location"]
    assert "/authorize/resume?journey=" in resume_url
    # The victim, signed in at the IdP in their own browser, is sent to that link.
    victim_browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    victim_browser.authorize(attempt.url, victim["email"], victim["password"], allow=False)
    victim_browser.authorize(client.authorization().url, victim["email"], victim["password"])
    response = victim_browser.get(idp.url(resume_url) if resume_url.startswith("/") else resume_url)
    assert response.status_code == 400
    assert "start again" in response.text
    assert "location" not in response.headers


def test_consent_given_in_a_journey_does_not_carry_over_to_a_new_sign_in(
    idp, make_citizen, make_client
):
    first = make_citizen("first@example.com")
    second = make_citizen("second@example.com")
    client = make_client()
    browser, consent = reach_consent(idp, client, first)
    allowed = browser.submit(consent, {}, button="allow")
    journey = allowed.headers["location"].split("journey=")[1]
    # Someone else signs in on the same device before the journey resumes.
    sign_in = browser.get(idp.url(f"/sign-in?journey={journey}"))
    resumed = browser.sign_in(sign_in, second["email"], second["password"])
    assert "wants to know who you are" in resumed.text, "the second person must be asked"


@pytest.mark.both_databases
def test_a_journey_finishes_once_even_when_resumed_twice_at_the_same_time(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    client = make_client()
    browser, consent = reach_consent(idp, client, citizen)
    resume_url = browser.submit(consent, {}, button="allow").headers["location"]
    url = resume_url if resume_url.startswith("http") else idp.url(resume_url)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(browser.http.get(url))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = [r for r in results if r.status_code == 302 and "code=" in r.headers["location"]]
    assert len(codes) == 1
    assert all(r.status_code in (302, 400) for r in results)


@pytest.mark.both_databases
def test_a_nul_in_a_journey_link_is_a_clear_400(idp):
    browser = CitizenBrowser(idp.issuer)
    for path in ("/authorize/resume?journey=%00", "/sign-in?journey=%00", "/consent?journey=%00"):
        response = browser.get(idp.url(path))
        assert response.status_code == 400, path
        assert "There is a problem" in response.text or "problem" in response.text


@pytest.mark.both_databases
def test_allow_clicked_twice_at_once_is_not_an_error(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    browser, consent = reach_consent(idp, client, citizen)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(browser.submit(consent, {}, button="allow")))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 303 for r in results), [r.status_code for r in results]
    cb = callback(browser.follow(results[0]))
    assert "code" in cb.params

"""Welsh and English pages: ui_locales from the department, or the citizen's own choice."""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.support.browser import CitizenBrowser

TRANSLATIONS = Path(__file__).resolve().parents[2] / "idp" / "translations"


def test_ui_locales_cy_shows_the_sign_in_page_in_welsh(idp, make_client):
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization(ui_locales="cy-GB en").url))
    assert '<html lang="cy" ' in page.text
    assert "Mewngofnodi" in page.text
    assert "Cyfeiriad e-bost" in page.text


def test_unsupported_ui_locales_fall_back_to_english(idp, make_client):
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization(ui_locales="fr de").url))
    assert '<html lang="en" ' in page.text
    assert "Email address" in page.text


def test_the_citizen_can_switch_language_and_the_choice_is_remembered(idp, make_client):
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization().url))
    assert "Cymraeg" in page.text
    welsh = browser.get(str(page.url) + "&lang=cy")
    assert '<html lang="cy" ' in welsh.text
    again = browser.get(idp.url("/sign-in"))
    assert '<html lang="cy" ' in again.text


def test_error_messages_are_translated_too(idp, make_citizen, make_client):
    make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    page = browser.follow(browser.get(client.authorization(ui_locales="cy").url))
    response = browser.submit_sign_in(page, "citizen@example.com", "wrong one")
    assert "Rhowch y cyfrinair cywir ar gyfer y cyfeiriad e-bost hwn" in response.text


def test_the_welsh_catalogue_translates_every_message_and_is_compiled():
    template = read_po((TRANSLATIONS / "messages.pot").open("rb"))
    welsh = read_po((TRANSLATIONS / "cy" / "LC_MESSAGES" / "messages.po").open("rb"))
    compiled = read_mo((TRANSLATIONS / "cy" / "LC_MESSAGES" / "messages.mo").open("rb"))
    expected = {m.id for m in template if m.id}
    assert expected == {m.id for m in welsh if m.id}, "run `make translations`"
    untranslated = [m.id for m in welsh if m.id and not m.string]
    assert not untranslated
    assert {m.id: m.string for m in compiled if m.id} == {m.id: m.string for m in welsh if m.id}

"""Welsh and English pages: ui_locales from the department, or the citizen's own choice."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from idp.departments.services import ensure_department, register_client
from tests.support.browser import SECOND_FACTORS, CitizenBrowser, callback
from tests.support.oidc_client import DepartmentClient

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


def welsh(page) -> bool:
    """The page is in Welsh."""
    return '<html lang="cy"' in page.text


def test_welsh_chosen_once_stays_for_the_journey_and_the_account_pages(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    # The department asks for English; the citizen prefers Welsh.
    client = make_client(client_name="Renew your passport", **{"client_name#cy": "Adnewyddu"})
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization(ui_locales="en")
    page = browser.follow(browser.get(attempt.url))
    assert not welsh(page)
    switch = re.search(r'href="([^"]*lang=cy[^"]*)"', page.text).group(1)
    chosen = browser.get(idp.url(html.unescape(switch)))
    assert welsh(chosen)
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith("idp_lang=cy;")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie

    # Every later page, without ?lang=, stays Welsh: the password's answer (a POST), the
    # second factor, the consent page, and the account pages after the journey.
    second_step = browser.follow(
        browser.submit_sign_in(chosen, citizen["email"], citizen["password"])
    )
    assert welsh(second_step)
    code = SECOND_FACTORS[citizen["email"]].next_code()
    consent = browser.follow(browser.submit(second_step, {"code": code}))
    assert welsh(consent)
    assert "Adnewyddu" in consent.text
    back = browser.follow(browser.submit(consent, {}, button="allow"))
    assert back.headers["location"].startswith(client.redirect_uri)  # back to the department
    assert welsh(browser.get(idp.url("/")))
    assert welsh(browser.get(idp.url("/account/report")))

    # English chosen again is remembered the same way.
    assert not welsh(browser.get(idp.url("/?lang=en")))
    assert not welsh(browser.get(idp.url("/")))


RETURN = "https://dept-a.example.gov.uk/signed-out"


def passport_service(idp) -> DepartmentClient:
    """A service registered with its name in Welsh, run by a department named in Welsh."""
    metadata = {
        "client_name": "Renew your passport",
        "client_name#cy": "Adnewyddu eich pasbort",
        "redirect_uris": ["https://dept-a.example.gov.uk/callback"],
        "scope": "openid email",
        "subject_type": "public",
        "post_logout_redirect_uris": [RETURN],
    }
    with idp.app.app_context():
        department = ensure_department("HM Passport Office", name_cy="Swyddfa Basbortau EF")
        register_client("dept-a", metadata, "a-secret-" + "x" * 32, department=department)
    return DepartmentClient(
        issuer=idp.issuer,
        client_id="dept-a",
        redirect_uri="https://dept-a.example.gov.uk/callback",
        auth_method="client_secret_basic",
        client_secret="a-secret-" + "x" * 32,
    )


@pytest.mark.parametrize(
    ("ui_locales", "service", "department", "continue_to"),
    [
        ("cy", "Adnewyddu eich pasbort", "Swyddfa Basbortau EF", "Parhau i"),
        ("en", "Renew your passport", "HM Passport Office", "Continue to"),
    ],
)
def test_service_and_department_names_are_shown_in_the_pages_language(
    idp, make_citizen, ui_locales, service, department, continue_to
):
    citizen = make_citizen()
    client = passport_service(idp)
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization(ui_locales=ui_locales)
    sign_in = browser.follow(browser.get(attempt.url))
    assert service in sign_in.text
    assert department in sign_in.text
    second_step = browser.follow(
        browser.submit_sign_in(sign_in, citizen["email"], citizen["password"])
    )
    code = SECOND_FACTORS[citizen["email"]].next_code()
    consent = browser.follow(browser.submit(second_step, {"code": code}))
    assert re.search(rf"<h1[^>]*>[^<]*{service}[^<]*</h1>", consent.text)
    back = callback(browser.follow(browser.submit(consent, {}, button="allow")))
    tokens = client.token_request(back.params["code"], attempt.code_verifier).json()

    account = browser.get(idp.url(f"/?lang={ui_locales}"))
    assert service in account.text
    assert department in account.text
    signed_out = browser.get(
        idp.url("/logout?")
        + urlencode({"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": RETURN})
    )
    assert f"<li>{service}</li>" in signed_out.text
    assert f"{continue_to} {service}" in signed_out.text


@pytest.mark.parametrize(
    ("path", "heading", "sentence"),
    [
        ("/accessibility", "Datganiad hygyrchedd", "defnyddio’r gwasanaeth cyfan gyda"),
        ("/privacy", "Hysbysiad preifatrwydd", "Eich hawliau"),
        ("/cookies", "Cwcis", "Yn cofio eich bod wedi dewis Saesneg neu Gymraeg"),
    ],
)
def test_the_footer_pages_and_the_layout_are_in_welsh(idp, path, heading, sentence):
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url(f"{path}?lang=cy"))
    assert welsh(page)
    assert re.search(rf"<h1[^>]*>\s*{heading}\s*</h1>", page.text)
    assert sentence in page.text
    # GOV.UK Frontend's own words in the layout: the skip link and the footer.
    assert "Neidio i’r prif gynnwys" in page.text
    assert "© Hawlfraint y Goron" in page.text
    assert "Skip to main content" not in page.text

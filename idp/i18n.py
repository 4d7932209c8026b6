"""Page language: English or Welsh, from the citizen's choice (kept in a cookie), else the
department's ui_locales; and the filters that write dates, browsers and names for people."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response, g, has_request_context, request
from flask_babel import Babel
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from idp.browsers import parse_browser
from idp.dates import uk_date, uk_datetime
from idp.oidc.journey import find_interaction
from idp.security.cookies import cookie_name, read_cookie
from idp.settings import current_settings

LANGUAGE_COOKIE = "idp_lang"
TRANSLATIONS_DIR = str(Path(__file__).parent / "translations")

babel = Babel()


def _supported() -> tuple[str, ...]:
    """Languages the pages are offered in; the first is the default."""
    return current_settings().ui_locales_supported


def first_supported(ui_locales: str | None) -> str | None:
    """OIDC Core 3.1.2.1: the first of the space-separated BCP47 tags that we offer."""
    for tag in (ui_locales or "").split()[:10]:
        language = tag.split("-")[0].lower()
        if language in _supported():
            return language
    return None


def _journey_ui_locales() -> str | None:
    """ui_locales of the authorization or logout request this page belongs to."""
    try:
        if request.endpoint in ("authorize.authorize", "end_session.logout"):
            # The authorization request, or RP-initiated logout (its confirmation form
            # carries ui_locales on as a hidden field).
            return request.values.get("ui_locales")
        handle = request.values.get("journey")
    except HTTPException:
        # A body that cannot be read (too large, malformed): the error page is drawn anyway.
        return None
    if not handle:
        return None
    interaction = find_interaction(handle)
    if interaction is None:
        return None
    return (interaction.params.get("ui_locales") or [None])[0]


def select_locale() -> str:
    """The citizen's own choice first: made on this page (?lang=, the language link) or
    remembered from an earlier one (the cookie), so a language picked once stays for the rest
    of the journey and on the account pages. Then the department's ui_locales (OIDC Core
    3.1.2.1: a preference, used for someone who has not chosen), then the default."""
    if not has_request_context():
        return _supported()[0]
    if "page_lang" in g:
        return g.page_lang
    chosen = first_supported(request.args.get("lang"))
    if chosen:
        g.language_chosen = chosen
    language = (
        chosen
        or first_supported(read_cookie(LANGUAGE_COOKIE))
        or first_supported(_journey_ui_locales())
        or _supported()[0]
    )
    g.page_lang = language
    return language


def language_context() -> dict:
    """The page language and a link to the other language, for every template."""
    language = select_locale()
    others = [lang for lang in _supported() if lang != language]
    if not others:
        return {"page_lang": language, "language_switch_url": None, "other_language": None}
    args = {k: v for k, v in request.args.items() if k != "lang"}
    args["lang"] = others[0]
    return {
        "page_lang": language,
        "other_language": others[0],
        "language_switch_url": f"{request.path}?{urlencode(args)}",
    }


def remember_language(response: Response) -> Response:
    """Keep an explicit language choice for the citizen's next pages: a year, as a preference
    outlives the browser; named like the session cookies (__Host- on an https issuer, so no
    other host of the domain can plant a language, idp/security/cookies.py). Secure on https,
    HttpOnly, SameSite=Lax. It only remembers what the citizen asked for, so it is strictly
    necessary and needs no consent (PECR regulation 6(4))."""
    if g.get("language_chosen"):
        response.set_cookie(
            cookie_name(LANGUAGE_COOKIE),
            g.language_chosen,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="Lax",
            secure=current_settings().cookies_secure,
            path="/",
        )
    return response


# -- Filters every page may use (citizen and staff) ---------------------------------------------


def uk_time_filter(moment) -> str:
    """{{ moment|uk_time }}: "6 December 2026 at 7:42am" in UK time, in the page's language."""
    return uk_datetime(moment, select_locale())


def uk_date_filter(moment) -> str:
    """{{ moment|uk_date }}: "6 December 2026", the day in UK time, in the page's language."""
    return uk_date(moment, select_locale()) if moment is not None else ""


def browser_filter(user_agent: str | None) -> str:
    """{{ user_agent|browser }}: "Chrome on Windows", "Safari on iPhone", "Unknown browser"."""
    browser = parse_browser(user_agent)
    if browser.name and browser.system:
        return _("%(browser)s on %(system)s", browser=browser.name, system=browser.system)
    if browser.name:
        return browser.name
    if browser.system:
        return _("A browser on %(system)s", system=browser.system)
    return _("Unknown browser")


def local_name_filter(thing) -> str:
    """{{ client|local_name }}: a service's or department's name in the page's language, where
    it was registered in that language too (RFC 7591 2.2, client_name#cy), else its name."""
    return thing.name_in(select_locale())


def init_i18n(app: Flask) -> None:
    """Flask-Babel with the IdP's locale selector, and the filters that write for people."""
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = TRANSLATIONS_DIR
    babel.init_app(app, locale_selector=select_locale)
    app.context_processor(language_context)
    app.after_request(remember_language)
    app.add_template_filter(uk_time_filter, "uk_time")
    app.add_template_filter(uk_date_filter, "uk_date")
    app.add_template_filter(browser_filter, "browser")
    app.add_template_filter(local_name_filter, "local_name")

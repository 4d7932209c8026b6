"""Real relying-party libraries from PyPI against the live IdP, each configured as its own
documentation says: a department points it at the discovery URL and changes nothing else.

Where a test would need to set a library away from its defaults, that is a finding to fix in
the IdP, not in the test.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from tests.support.browser import CitizenBrowser


def discovery_url(idp) -> str:
    """What a department is given: the discovery URL, and nothing else about the IdP."""
    return idp.url("/.well-known/openid-configuration")


def sign_in_at_the_idp(browser: CitizenBrowser, authorize_url: str, citizen: dict) -> str:
    """The citizen signs in with password and authenticator code, agrees, and is sent back:
    the callback URL the department receives."""
    back = browser.authorize(authorize_url, citizen["email"], citizen["password"])
    assert "code" in back.params, back.params
    return back.url


def sign_out_at_the_idp(browser: CitizenBrowser, logout_url: str) -> str:
    """The browser follows the department's RP-initiated logout URL to the IdP's "You have
    signed out" page; where its "Continue to <service>" link goes back to."""
    response = browser.follow(browser.get(logout_url))
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert "You have signed out" in response.text
    found = re.search(r'<a href="([^"]+)" role="button"[^>]* id="continue">', response.text)
    assert found, response.text[:1000]
    return html.unescape(found.group(1))


def query(url: str) -> dict[str, str]:
    """A URL's query parameters."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

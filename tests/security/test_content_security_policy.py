"""The pages' Content-Security-Policy allows GOV.UK Frontend and nothing inline but its one
script, by hash; and the GOV.UK brand (crown, logotype, GDS Transport) shows only when the
setting turns it on."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from idp import create_app
from idp.extensions import db
from idp.settings import load_settings

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)
PAGES = ["/sign-in", "/sign-up", "/accessibility", "/privacy", "/cookies", "/no-such-page"]


def script_src(policy: str) -> set[str]:
    """The sources the policy's script-src directive allows."""
    for directive in policy.split(";"):
        name, *sources = directive.split()
        if name == "script-src":
            return set(sources)
    raise AssertionError(f"no script-src in {policy}")


@pytest.mark.parametrize("path", PAGES)
def test_every_inline_script_is_allowed_by_its_hash_and_nothing_else_inline(idp, path):
    response = httpx.get(idp.url(path))
    allowed = script_src(response.headers["content-security-policy"])

    assert "'unsafe-inline'" not in allowed and "'unsafe-eval'" not in allowed
    scripts = INLINE_SCRIPT.findall(response.text)
    assert scripts, "GOV.UK Frontend's template marks the body with an inline script"
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in allowed, script
    # GOV.UK Frontend's components start from a module on the IdP itself.
    assert '<script type="module" src="/static/init.js"></script>' in response.text


def test_the_footer_links_to_pages_that_exist(idp):
    page = httpx.get(idp.url("/sign-in")).text
    for path, heading in [
        ("/accessibility", "Accessibility statement"),
        ("/privacy", "Privacy notice"),
        ("/cookies", "Cookies"),
    ]:
        assert f'href="{path}"' in page
        assert f">{heading}</h1>" in httpx.get(idp.url(path)).text


def brand_app(tmp_path, brand: bool):
    """An app with the GOV.UK brand on or off, on its own SQLite database."""
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'brand.sqlite3'}",
        instance_path=str(tmp_path),
        departments_file="",
        govuk_brand=brand,
    )
    app = create_app(settings)
    with app.app_context():
        db.create_all()
    return app


def test_without_the_brand_setting_there_is_no_crown_logotype_or_transport_font(tmp_path):
    client = brand_app(tmp_path, brand=False).test_client()
    page = client.get("/accessibility").get_data(as_text=True)

    assert "govuk-header__logotype" not in page and "govuk-generic-header" in page
    assert "/static/govuk/govuk-frontend-unbranded.min.css" in page
    assert "govuk-icon" not in page  # the crown favicons
    stylesheet = client.get("/static/govuk/govuk-frontend-unbranded.min.css")
    css = stylesheet.get_data(as_text=True)
    stylesheet.close()
    assert "GDS Transport" not in css and "@font-face" not in css


def test_with_the_brand_setting_the_pages_wear_the_gov_uk_header(tmp_path):
    client = brand_app(tmp_path, brand=True).test_client()
    page = client.get("/accessibility").get_data(as_text=True)

    assert "govuk-header__logotype" in page
    assert "/static/govuk/govuk-frontend.min.css" in page
    stylesheet = client.get("/static/govuk/govuk-frontend.min.css")
    assert "GDS Transport" in stylesheet.get_data(as_text=True)
    stylesheet.close()

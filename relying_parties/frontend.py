"""GOV.UK Frontend for the sample departments: its Jinja macros (govuk-frontend-jinja), the
department's colour, and the Content-Security-Policy that lets the pages run.

Each department is a separate service, so this is the samples' own copy of what the IdP's
``idp/frontend.py`` does, never an import of it. GOV.UK Frontend's compiled files are in
``relying_parties/static/govuk/`` (``make assets`` copies them there and into the IdP's
static folder). The samples are not on GOV.UK, so they use the stylesheet without the GOV.UK
brand (Arial, no crown) and no GOV.UK favicons.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from flask import Flask
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader

STATIC_FOLDER = Path(__file__).parent / "static"

# The one inline script of every page, from GOV.UK Frontend's page template
# (govuk_frontend_jinja/template.html): it marks the body so the components' styles and
# JavaScript apply only in browsers that run ES modules. Allowed by its hash (CSP Level 3,
# "hash-source"); tests/relying_parties/test_pages.py fails if a new release changes it.
GOVUK_FRONTEND_SUPPORTED_SCRIPT = (
    "document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype"
    " ? ' govuk-frontend-supported' : '');"
)


def hash_source(text: str) -> str:
    """A CSP hash-source ('sha256-...') allowing one inline script or style by its content."""
    digest = hashlib.sha256(text.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def brand_style(colour: str) -> str:
    """The department's colour as a CSS custom property (the stripe under the header).

    The one inline style of a page, allowed by its hash: the colour is checked to be a
    #rrggbb value when the settings are read, so nothing else can end up in it.
    """
    return f":root {{ --brand: {colour}; }}"


def content_security_policy(issuer_origin: str, colour: str) -> str:
    """Everything from the service itself: GOV.UK Frontend's stylesheet and JavaScript (a
    module, started by static/init.js), the inline script and colour by their hashes; forms
    post to the service or to the IdP (sign out goes there)."""
    return (
        f"default-src 'none'; script-src 'self' {hash_source(GOVUK_FRONTEND_SUPPORTED_SCRIPT)}; "
        f"style-src 'self' {hash_source(brand_style(colour))}; img-src 'self' data:; "
        f"form-action 'self' {issuer_origin}; frame-ancestors 'none'; base-uri 'none'"
    )


def init_frontend(app: Flask, colour: str) -> None:
    """GOV.UK Frontend's macros under ``govuk_frontend_jinja/``, beside the samples' templates;
    the department's colour for the layout."""
    app.jinja_loader = ChoiceLoader(
        [
            app.jinja_loader,
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]
    )
    style = brand_style(colour)
    app.context_processor(lambda: {"brand_style": style})

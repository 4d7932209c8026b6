"""The sample departments' pages on GOV.UK Frontend: its files come from the service itself,
and the page's one inline script and one inline style run under the Content-Security-Policy
(each allowed by its hash, CSP Level 3), with no 'unsafe-inline'."""

import base64
import hashlib
import re

import pytest

from relying_parties.landing import LandingService, create_app
from tests.relying_parties.conftest import DEPARTMENTS

INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.DOTALL)


def allowed_by_hash(policy: str, directive: str, text: str) -> bool:
    """Whether the policy's directive lists the hash-source of this inline text."""
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    sources = next(part for part in policy.split(";") if part.split()[0] == directive)
    return f"'sha256-{digest}'" in sources.split()


def check_inline_code_is_allowed(response) -> None:
    """Every inline script and style of the page is allowed by its hash; nothing else is."""
    policy = response.headers["Content-Security-Policy"]
    inline = INLINE.findall(response.text)
    assert {kind for kind, _ in inline} == {"script", "style"}
    for kind, text in inline:
        directive = "script-src" if kind == "script" else "style-src"
        assert allowed_by_hash(policy, directive, text), f"{kind} {text!r} is refused"
    assert "unsafe-inline" not in policy


@pytest.mark.parametrize("kind", DEPARTMENTS)
def test_a_department_page_runs_under_its_content_security_policy(department_app, kind):
    check_inline_code_is_allowed(department_app(kind).test_client().get("/"))


def test_the_landing_page_runs_under_its_content_security_policy():
    service = LandingService("Your tax account", "HMRC", "http://localhost:8001", "a secret")

    check_inline_code_is_allowed(
        create_app("http://localhost:8000", [service]).test_client().get("/")
    )


@pytest.mark.parametrize(
    ("path", "mimetype", "linked_from", "link"),
    [
        ("/static/govuk/govuk-frontend-unbranded.min.css", "text/css", "/", None),
        ("/static/rp.css", "text/css", "/", None),
        ("/static/init.js", "text/javascript", "/", None),
        # A module the page's init.js imports.
        (
            "/static/govuk/govuk-frontend.min.js",
            "text/javascript",
            "/static/init.js",
            "./govuk/govuk-frontend.min.js",
        ),
    ],
)
def test_govuk_frontend_comes_from_the_service_itself(
    department_app, path, mimetype, linked_from, link
):
    client = department_app("council").test_client()
    assert f'"{link or path}"' in client.get(linked_from).text

    response = client.get(path)

    assert response.status_code == 200
    assert response.mimetype == mimetype

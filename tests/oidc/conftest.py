"""Fixtures for the protocol endpoints: a signed-in citizen and codes issued over HTTP."""

from __future__ import annotations

import pytest

from tests.support.browser import CitizenBrowser
from tests.support.oidc_client import AuthorizationAttempt, DepartmentClient
from tests.support.registration import DocumentServer


@pytest.fixture
def citizen(make_citizen) -> dict:
    """A citizen with an account."""
    return make_citizen()


@pytest.fixture
def browser(idp) -> CitizenBrowser:
    """The citizen's browser."""
    return CitizenBrowser(idp.issuer)


@pytest.fixture
def issue_code(browser, citizen):
    """Run an authorization for a client in the citizen's browser; return the attempt and code."""

    def issue(
        client: DepartmentClient, *, omit: tuple[str, ...] = (), **overrides: str
    ) -> tuple[AuthorizationAttempt, str]:
        attempt = client.authorization(omit=omit, **overrides)
        cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
        assert "code" in cb.params, cb.url
        return attempt, cb.params["code"]

    return issue


@pytest.fixture
def sector_server():
    """A department's own web server, publishing documents such as its sector_identifier_uri."""
    server = DocumentServer()
    yield server
    server.close()

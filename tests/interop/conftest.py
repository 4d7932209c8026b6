"""Fixtures of the interoperability tests: a citizen with both factors, and their browser."""

from __future__ import annotations

import pytest

from tests.support.browser import CitizenBrowser


@pytest.fixture
def citizen(make_citizen) -> dict:
    """A citizen with a password and an authenticator app."""
    return make_citizen()


@pytest.fixture
def browser(idp) -> CitizenBrowser:
    """The citizen's browser."""
    return CitizenBrowser(idp.issuer)

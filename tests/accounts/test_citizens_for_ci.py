"""Test citizens (IDP_ALLOW_TEST_CITIZENS): a department's CI signs in with a known
authenticator key, and parallel jobs may type the same code within its 30 s step. Nobody
else's code is ever reused, nor a test citizen's once the setting is off."""

from __future__ import annotations

import json

import pyotp
import pytest

from idp.accounts.citizens import create_citizen
from idp.accounts.second_factor.logic import enrol_known_totp
from tests.accounts.test_second_factor import (
    WRONG_TOTP,
    assert_refused,
    at_second_factor,
    away_from_a_step_boundary,
    finish,
)
from tests.support.audit import captured_log
from tests.support.browser import CitizenBrowser

KEY = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
PASSWORD = "a test citizen passphrase"


@pytest.fixture
def allow_test_citizens(idp, monkeypatch):
    """IDP_ALLOW_TEST_CITIZENS=true on the running IdP, for this test."""
    settings = idp.app.config["IDP_SETTINGS"]
    monkeypatch.setitem(idp.app.config, "IDP_SETTINGS", settings.replace(allow_test_citizens=True))


def make_ci_citizen(idp, email: str, *, test_citizen: bool) -> dict:
    """A citizen with the known key, as `idp citizens create --totp-secret` makes it."""
    with idp.app.app_context():
        citizen = create_citizen(email, PASSWORD, email_verified=True)
        enrol_known_totp(citizen, KEY, test_citizen=test_citizen, actor="test")
        return {"id": citizen.id, "email": citizen.email, "password": PASSWORD}


def sign_in_twice_with_one_code(idp, client, citizen: dict):
    """Two parallel jobs at their second factor pages; the first succeeds with the code.
    Returns the second job's browser, its page, the code and its time step."""
    first, second = CitizenBrowser(idp.issuer), CitizenBrowser(idp.issuer)
    _, first_page = at_second_factor(idp, first, client, citizen)
    _, second_page = at_second_factor(idp, second, client, citizen)
    step = away_from_a_step_boundary()
    code = pyotp.TOTP(KEY).at(step * 30)
    assert "code" in finish(first, first.follow(first.submit(first_page, {"code": code})))
    return second, second_page, code, step


def test_a_test_citizens_code_works_for_parallel_jobs_within_its_step(
    idp, make_client, allow_test_citizens
):
    client = make_client()
    citizen = make_ci_citizen(idp, "ci-job@example.com", test_citizen=True)
    with captured_log("idp.audit") as lines:
        second, page, code, step = sign_in_twice_with_one_code(idp, client, citizen)
        assert "code" in finish(second, second.follow(second.submit(page, {"code": code})))
    events = [json.loads(line)["event"] for line in lines.getvalue().splitlines()]
    assert "second_factor.test_code_reused" in events
    assert "second_factor.replayed" not in events
    # An older step's code never works again, even for a test citizen.
    third = CitizenBrowser(idp.issuer)
    _, page = at_second_factor(idp, third, client, citizen)
    older = pyotp.TOTP(KEY).at((step - 1) * 30)
    assert_refused(third.submit(page, {"code": older}), 400, WRONG_TOTP)


def test_without_the_setting_a_test_citizens_code_works_once(idp, make_client, monkeypatch):
    client = make_client()
    # Made while the setting was on, then switched off (as in production).
    settings = idp.app.config["IDP_SETTINGS"]
    monkeypatch.setitem(idp.app.config, "IDP_SETTINGS", settings.replace(allow_test_citizens=True))
    citizen = make_ci_citizen(idp, "ci-job@example.com", test_citizen=True)
    monkeypatch.setitem(idp.app.config, "IDP_SETTINGS", settings)
    second, page, code, _ = sign_in_twice_with_one_code(idp, client, citizen)
    assert_refused(second.submit(page, {"code": code}), 400, WRONG_TOTP)


def test_an_ordinary_citizens_code_works_once_even_with_the_setting(
    idp, make_client, allow_test_citizens
):
    client = make_client()
    citizen = make_ci_citizen(idp, "person@example.com", test_citizen=False)
    second, page, code, _ = sign_in_twice_with_one_code(idp, client, citizen)
    assert_refused(second.submit(page, {"code": code}), 400, WRONG_TOTP)


def test_a_test_citizen_cannot_be_made_without_the_setting(idp):
    with idp.app.app_context():
        citizen = create_citizen("refused@example.com", PASSWORD, email_verified=True)
        with pytest.raises(ValueError, match="IDP_ALLOW_TEST_CITIZENS=true"):
            enrol_known_totp(citizen, KEY, test_citizen=True, actor="test")

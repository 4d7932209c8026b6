"""argon2id hashing: verification, no user enumeration, upgrade of old parameters."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from idp.security import passwords


def test_hash_is_argon2id_and_verifies(app):
    with app.app_context():
        stored = passwords.hash_password("correct horse")
        assert stored.startswith("$argon2id$")
        assert passwords.verify_password(stored, "correct horse").ok
        assert not passwords.verify_password(stored, "wrong horse").ok


def test_a_hash_with_old_parameters_is_upgraded_on_the_next_sign_in(app):
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("correct horse")
    with app.app_context():
        check = passwords.verify_password(old, "correct horse")
        assert check.ok
        assert check.new_hash is not None
        settings = app.config["IDP_SETTINGS"]
        assert f"m={settings.argon2_memory_cost},t={settings.argon2_time_cost}" in check.new_hash


def test_current_parameters_are_not_rehashed(app):
    with app.app_context():
        stored = passwords.hash_password("correct horse")
        assert passwords.verify_password(stored, "correct horse").new_hash is None


def test_unknown_account_and_oversized_password_fail_without_error(app):
    with app.app_context():
        assert not passwords.verify_password(None, "anything").ok
        assert not passwords.verify_password("not a hash", "anything").ok
        assert not passwords.verify_password(passwords.hash_password("x" * 10), "x" * 10**6).ok


@pytest.mark.parametrize(
    ("password", "ok"),
    [("1234567", False), ("12345678", True), ("é" * 64, True), ("  spaces  ok ", True)],
)
def test_policy_length_only(app, password, ok):
    with app.app_context():
        if ok:
            passwords.check_password_policy(password)
        else:
            with pytest.raises(passwords.PasswordPolicyError):
                passwords.check_password_policy(password)

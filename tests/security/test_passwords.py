"""argon2id hashing: verification, no user enumeration, upgrade of old parameters."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from idp.security import passwords
from idp.settings import Settings


def test_hash_is_argon2id_and_verifies(app):
    with app.app_context():
        stored = passwords.hash_password("correct horse")
        assert stored.startswith("$argon2id$")
        assert passwords.verify_password(stored, "correct horse").ok
        assert not passwords.verify_password(stored, "wrong horse").ok


def test_the_default_parameters_are_owasps():
    """OWASP Password Storage Cheat Sheet: argon2id with m=19 MiB, t=2, p=1. (The test IdP
    hashes at a lower cost to save time: tests/conftest.py.)"""
    defaults = Settings()
    assert (defaults.argon2_memory_cost, defaults.argon2_time_cost) == (19456, 2)
    assert defaults.argon2_parallelism == 1


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


class RecordingHasher:
    """The configured hasher, noting every password it is given."""

    def __init__(self, hasher: PasswordHasher):
        self.hasher = hasher
        self.seen: list[str] = []

    def hash(self, password: str) -> str:
        self.seen.append(password)
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.seen.append(password)
        return self.hasher.verify(password_hash, password)

    def check_needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)


def test_an_oversized_password_is_never_hashed_but_costs_one_hash(app, monkeypatch):
    with app.app_context():
        stored = passwords.hash_password("x" * 10)
        recorder = RecordingHasher(passwords.password_hasher())
        monkeypatch.setattr(passwords, "password_hasher", lambda: recorder)
        oversized = "x" * 257
        assert not passwords.verify_password(stored, oversized).ok
        assert not passwords.verify_password(None, oversized).ok
    # The same argon2 work as any failed check, so the refusal cannot be told apart by timing.
    assert len(recorder.seen) == 2
    assert oversized not in recorder.seen


def test_the_longest_password_accepted_is_hashed_whole(app):
    # argon2id has no 72-byte limit (unlike bcrypt): every character counts.
    with app.app_context():
        longest = app.config["IDP_SETTINGS"].password_max_length
        first = "a" * 72 + "b" * (longest - 72)
        last_differs = first[:-1] + "c"
        stored = passwords.hash_password(first)
        assert passwords.verify_password(stored, first).ok
        assert not passwords.verify_password(stored, "a" * 72 + "c" * (longest - 72)).ok
        assert not passwords.verify_password(stored, last_differs).ok
        assert not passwords.verify_password(stored, "a" * 72).ok
        # Multi-byte characters: 73 snowmen are 219 bytes, the 73rd still counts.
        snowmen = passwords.hash_password("☃" * 73)
        assert not passwords.verify_password(snowmen, "☃" * 72 + "☂").ok


@pytest.mark.parametrize(
    ("password", "ok"),
    [("1234567", False), ("vq8#Lm2z", True), ("é" * 64, True), ("  spaces  ok ", True)],
)
def test_policy_length(app, password, ok):
    with app.app_context():
        if ok:
            passwords.check_password_policy(password)
        else:
            with pytest.raises(passwords.PasswordPolicyError):
                passwords.check_password_policy(password)


@pytest.mark.parametrize(
    ("password", "alone"),
    [
        ("Fourteen chars", False),
        ("Fifteen chars!!", True),
        # NFKC spells "ﷺ" out as 18 characters: still one keystroke, so 8 characters here.
        ("ﷺabcdefg", False),
        ("ﷺ" * 14, False),
        # 16 code points typed (decomposed accents), 14 characters stored.
        ("cafe\u0301 cre\u0300me 123", False),
        ("e\u0301" * 15, True),  # 30 typed, 15 stored
        ("ｆｕｌｌｗｉｄｔｈ ｐａｓｓ！", True),  # 15 either way
    ],
    ids=["14", "15", "ligature-8", "ligatures-14", "14-after-nfkc", "15-after-nfkc", "fullwidth"],
)
def test_a_password_stands_alone_only_when_long_both_as_typed_and_as_stored(app, password, alone):
    with app.app_context():
        assert passwords.enough_alone(password) is alone


def test_a_password_longer_as_typed_than_the_maximum_still_verifies(app):
    with app.app_context():
        longest = app.config["IDP_SETTINGS"].password_max_length
        # Accepted by the policy (its NFKC form is the maximum), so it must sign in.
        decomposed = "e\u0301" * longest
        passwords.check_password_policy(decomposed)
        assert passwords.verify_password(passwords.hash_password(decomposed), decomposed).ok
        # A hash from before normalisation of a password NFKC makes too long: still its own.
        legacy = passwords.password_hasher().hash("ﷺ" * 15)
        assert passwords.verify_password(legacy, "ﷺ" * 15).ok

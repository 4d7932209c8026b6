"""Settings: defaults < config file < IDP_* environment variables, with named errors."""

from __future__ import annotations

import json
import os

import pytest

from idp.settings import Settings, SettingsError, load_settings


def test_defaults_are_secure(monkeypatch, tmp_path):
    for name in list(__import__("os").environ):
        if name.startswith("IDP_"):
            monkeypatch.delenv(name)
    settings = load_settings(config_file=tmp_path / "missing.toml")
    assert settings == Settings(issuer="http://localhost:8000")
    assert settings.authorization_code_lifetime == 60
    assert settings.session_idle_timeout == 1800
    assert settings.session_absolute_lifetime == 12 * 3600
    assert settings.default_id_token_alg == "ES256"
    assert settings.sqlalchemy_url.startswith("sqlite:///")


def test_config_file_then_environment_override(monkeypatch, tmp_path):
    config = tmp_path / "idp.toml"
    config.write_text(
        '[idp]\nissuer = "https://login.example.gov.uk/"\naccess_token_lifetime = 120\n'
    )
    monkeypatch.setenv("IDP_ACCESS_TOKEN_LIFETIME", "90")
    monkeypatch.setenv("IDP_UI_LOCALES_SUPPORTED", "en, cy")
    monkeypatch.setenv("IDP_DATABASE_URL", "postgresql://idp@db/idp")
    settings = load_settings(config_file=config)
    assert settings.issuer == "https://login.example.gov.uk"
    assert settings.access_token_lifetime == 90
    assert settings.ui_locales_supported == ("en", "cy")
    assert settings.sqlalchemy_url == "postgresql+psycopg://idp@db/idp"
    assert settings.cookies_secure is True


@pytest.mark.parametrize(
    ("content", "env", "message"),
    [
        ("[idp]\nport = 'eighty'\n", {}, "'port'"),
        ("[idp]\nnot_a_setting = 1\n", {}, "unknown setting 'not_a_setting'"),
        ("[idp\n", {}, "is not valid TOML"),
        ("", {"IDP_SECURE_COOKIES": "maybe"}, "'secure_cookies'"),
        ("", {"IDP_DEFAULT_ID_TOKEN_ALG": "HS256"}, "ES256 or RS256"),
        (
            "[idp]\nissuer = 'https://login.example.gov.uk'\n",
            {"IDP_SECURE_COOKIES": "false"},
            "'secure_cookies' cannot be false on an https issuer",
        ),
        ("", {"IDP_DEV_PAGES": "maybe"}, "'dev_pages'"),
        # Authlib refuses plain http off loopback at every endpoint: refused at start instead.
        ("", {"IDP_ISSUER": "http://login.example.gov.uk"}, "must use https outside this machine"),
        ("", {"IDP_ISSUER": "ftp://login.example.gov.uk"}, "must be an https URL"),
        ("", {"IDP_ISSUER": "login.example.gov.uk"}, "must be an https URL"),
    ],
)
def test_bad_settings_name_the_problem(monkeypatch, tmp_path, content, env, message):
    config = tmp_path / "idp.toml"
    config.write_text(content)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(config_file=config)


def test_issuer_follows_the_port_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("IDP_ISSUER", raising=False)
    monkeypatch.setenv("IDP_PORT", "8100")
    assert load_settings(config_file=tmp_path / "none.toml").issuer == "http://localhost:8100"
    monkeypatch.setenv("IDP_ISSUER", "https://login.example.gov.uk")
    assert (
        load_settings(config_file=tmp_path / "none.toml").issuer == "https://login.example.gov.uk"
    )


EVIDENCE = {
    "passport": "http://127.0.0.1:9101",
    "driving_licence": "http://127.0.0.1:9102",
    "address": "http://127.0.0.1:9103",
    "kbv": "http://127.0.0.1:9104",
}


def test_evidence_services_come_from_the_environment_as_json(monkeypatch):
    monkeypatch.setenv("IDP_EVIDENCE_SERVICES", json.dumps(EVIDENCE))
    assert load_settings(config_file=os.devnull).evidence_services == EVIDENCE


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "as JSON"),
        ('["passport"]', "expected a table"),
        (json.dumps({**EVIDENCE, "horoscope": "http://127.0.0.1:1"}), "unknown kinds"),
        (json.dumps({k: v for k, v in EVIDENCE.items() if k != "kbv"}), "missing \\['kbv'\\]"),
        (json.dumps({**EVIDENCE, "kbv": "ftp://127.0.0.1"}), "no usable URL for 'kbv'"),
        (json.dumps({**EVIDENCE, "kbv": "http://kbv.example.com"}), "https outside"),
    ],
)
def test_unusable_evidence_services_are_refused_by_name(monkeypatch, value, message):
    monkeypatch.setenv("IDP_EVIDENCE_SERVICES", value)
    with pytest.raises(SettingsError, match=message):
        load_settings(config_file=os.devnull)

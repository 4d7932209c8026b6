"""The `idp` command as an operator runs it: one-line errors and non-zero exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import messages, migrated_env, run


@pytest.fixture
def idp_env(tmp_path) -> dict[str, str]:
    """Environment for a fresh SQLite IdP in a temporary instance folder, migrated."""
    return migrated_env(tmp_path)


def write_client(tmp_path: Path, **data) -> Path:
    """A client metadata JSON file."""
    path = tmp_path / "client.json"
    path.write_text(json.dumps(data))
    return path


def test_create_citizen_and_refuse_a_duplicate(idp_env):
    created = run(idp_env, "citizens", "create", "--email", "a@example.com", "--password", "p" * 12)
    assert "created citizen a@example.com" in created.stderr
    # Standard output holds the subject alone, for SUBJECT=$(idp citizens create ...).
    assert len(created.stdout.split()) == 1
    again = run(
        idp_env,
        "citizens",
        "create",
        "--email",
        "a@example.com",
        "--password",
        "p" * 12,
        check=False,
    )
    assert again.returncode != 0
    assert "An account already exists with this email address" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "nope", "--password", "p" * 12], "correct format"),
        (["--email", "b@example.com", "--password", "short"], "at least 8 characters"),
        (["--password", "p" * 12], "Missing option '--email'"),
    ],
)
def test_create_citizen_bad_arguments(idp_env, args, message):
    result = run(idp_env, "citizens", "create", *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_add_and_list_clients(idp_env, tmp_path):
    path = write_client(
        tmp_path,
        client_id="hmrc",
        client_secret="s" * 40,
        client_name="HMRC",
        redirect_uris=["https://hmrc.example.gov.uk/cb"],
    )
    assert "registered client hmrc" in run(idp_env, "clients", "add", str(path)).stdout
    # Idempotent: adding the same file again is fine.
    run(idp_env, "clients", "add", str(path))
    listing = run(idp_env, "clients", "list").stdout
    assert "hmrc" in listing
    assert "client_secret_basic" in listing
    assert "s" * 40 not in listing


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must hold a JSON object"),
        (json.dumps({"redirect_uris": ["https://a.example/cb"]}), "has no client_id"),
        (
            json.dumps(
                {
                    "client_id": "x",
                    "client_secret": "s" * 40,
                    "redirect_uris": ["http://a.example/cb"],
                }
            ),
            "must use https",
        ),
        (
            json.dumps(
                {
                    "client_id": "x",
                    "client_secret": "s" * 40,
                    "redirect_uris": ["https://a.example/cb#frag"],
                }
            ),
            "must not have a fragment",
        ),
        (
            json.dumps(
                {
                    "client_id": "x",
                    "client_secret": "short",
                    "redirect_uris": ["https://a.example/cb"],
                }
            ),
            "client_secret must be at least 32 characters",
        ),
        (
            json.dumps(
                {
                    "client_id": "x",
                    "redirect_uris": ["https://a.example/cb"],
                    "token_endpoint_auth_method": "private_key_jwt",
                }
            ),
            "jwks_uri or jwks is required for private_key_jwt",
        ),
        (
            json.dumps(
                {
                    "client_id": "x",
                    "client_secret": "s" * 40,
                    "redirect_uris": ["https://a.example/cb"],
                    "id_token_signed_response_alg": "HS256",
                }
            ),
            "id_token_signed_response_alg must be one of ES256, RS256",
        ),
    ],
)
def test_add_client_bad_files(idp_env, tmp_path, content, message):
    path = tmp_path / "client.json"
    path.write_text(content)
    result = run(idp_env, "clients", "add", str(path), check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert len(messages(result.stderr)) == 1
    assert "x" not in run(idp_env, "clients", "list").stdout.split()


def test_add_client_missing_file(idp_env, tmp_path):
    result = run(idp_env, "clients", "add", str(tmp_path / "missing.json"), check=False)
    assert result.returncode != 0
    assert "does not exist" in result.stderr


def test_bad_setting_is_named(idp_env):
    result = run({**idp_env, "IDP_PORT": "eighty"}, "clients", "list", check=False)
    assert result.returncode != 0
    assert "port" in result.stderr
    assert "Traceback" not in result.stderr


def test_create_citizen_asks_for_the_password_when_not_given(idp_env):
    result = run(
        idp_env,
        "citizens",
        "create",
        "--email",
        "asked@example.com",
        input="a long passphrase\na long passphrase\n",
    )
    assert "created citizen asked@example.com" in result.stderr
    assert "a long passphrase" not in result.stdout + result.stderr

"""Storage: migrations match the models, and private keys are encrypted at rest."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet

from idp.extensions import db
from idp.models import SigningKey
from idp.oidc.keys import signing_key
from idp.security.secrets import decrypt

pytestmark = pytest.mark.both_databases


def test_migrations_create_exactly_the_models_schema(app):
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == [], "models changed without a migration: run `idp db migrate`"


def test_signing_keys_exist_for_es256_and_rs256_with_private_parts_encrypted(app):
    with app.app_context():
        rows = db.session.scalars(db.select(SigningKey)).all()
        assert {row.alg for row in rows} >= {"ES256", "RS256"}
        for row in rows:
            assert "d" not in row.public_jwk
            assert '"d"' not in row.private_jwk_encrypted
            private = json.loads(decrypt(app.config["IDP_KEY_FERNET"], row.private_jwk_encrypted))
            assert private["kid"] == row.kid
            assert "d" in private
        assert signing_key("ES256").kid in {row.kid for row in rows}


def test_a_wrong_key_encryption_key_is_named(app):
    with app.app_context():
        row = db.session.scalars(db.select(SigningKey)).first()
        with pytest.raises(ValueError, match="IDP_KEY_ENCRYPTION_KEY is not the key"):
            decrypt(Fernet(Fernet.generate_key()), row.private_jwk_encrypted)


def test_clients_from_before_departments_keep_their_public_subjects(tmp_path):
    """Upgrading must not change the sub any department already stored for its citizens."""
    from flask_migrate import upgrade

    from idp import create_app
    from idp.models import Client
    from idp.settings import load_settings

    app = create_app(load_settings(instance_path=str(tmp_path), departments_file=""))
    directory = app.extensions["migrate"].directory
    with app.app_context():
        upgrade(directory=directory, revision="b7abfa1b5ae0")
        db.session.execute(
            db.text(
                "INSERT INTO client (client_id, client_metadata, status, client_id_issued_at)"
                " VALUES ('old', :metadata, 'active', '2026-01-01 00:00:00+00:00')"
            ),
            {
                "metadata": json.dumps(
                    {"redirect_uris": ["https://b.example/cb", "https://a.example/cb"]}
                )
            },
        )
        db.session.commit()
        upgrade(directory=directory)
        client = db.session.scalar(db.select(Client).filter_by(client_id="old"))
        assert client.subject_type == "public"
        assert client.sector_identifier == "a.example"
        assert client.approved_at is not None


@pytest.mark.processes
def test_processes_starting_at_once_share_one_generated_secret(tmp_path):
    """Several IdP processes started together on a new instance folder (as gunicorn workers
    are) all end up with the same development secret, and none fails."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from idp.security.secrets import secret_file, new_token\n"
        "print(secret_file(Path(sys.argv[1]) / 'shared-secret', new_token))\n"
    )
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    results = [process.communicate(timeout=60) for process in starts]
    assert all(process.returncode == 0 for process in starts), [err for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shared-secret"]

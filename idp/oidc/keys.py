"""The IdP's signing keys: created on first start, private parts encrypted in the database."""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import current_app, g
from joserfc.jwk import ECKey, RSAKey, import_key
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import SigningKey
from idp.security.secrets import decrypt

SUPPORTED_ALGS = ("ES256", "RS256")

_cache_lock = threading.Lock()
_private_key_cache: dict[str, Any] = {}


def _generate(alg: str):
    """A fresh key for the algorithm, with its RFC 7638 thumbprint as kid."""
    if alg == "ES256":
        return ECKey.generate_key("P-256", auto_kid=True)
    return RSAKey.generate_key(2048, auto_kid=True)


def create_signing_key(alg: str) -> SigningKey:
    """Generate, encrypt and store a new signing key."""
    key = _generate(alg)
    public = {**key.as_dict(private=False), "use": "sig", "alg": alg}
    private = json.dumps(key.as_dict(private=True))
    fernet = current_app.config["IDP_KEY_FERNET"]
    row = SigningKey(
        kid=key.kid,
        alg=alg,
        public_jwk=public,
        private_jwk_encrypted=fernet.encrypt(private.encode()).decode(),
    )
    db.session.add(row)
    db.session.commit()
    return row


def ensure_signing_keys() -> None:
    """Make sure one active key exists for each supported algorithm."""
    for alg in SUPPORTED_ALGS:
        if current_signing_key_row(alg) is None:
            try:
                create_signing_key(alg)
            except IntegrityError:
                db.session.rollback()


def current_signing_key_row(alg: str) -> SigningKey | None:
    """The newest active key for an algorithm."""
    return db.session.scalar(
        db.select(SigningKey)
        .filter_by(alg=alg, retired_at=None)
        .order_by(SigningKey.created_at.desc(), SigningKey.id.desc())
        .limit(1)
    )


def signing_key(alg: str):
    """The private key (joserfc) that signs with this algorithm now, looked up once a request."""
    chosen = g.setdefault("signing_keys", {})
    if alg not in chosen:
        chosen[alg] = _load_signing_key(alg)
    return chosen[alg]


def _load_signing_key(alg: str):
    """The newest key for the algorithm, decrypted once per process."""
    row = current_signing_key_row(alg)
    if row is None:
        ensure_signing_keys()
        row = current_signing_key_row(alg)
    with _cache_lock:
        key = _private_key_cache.get(row.kid)
    if key is None:
        fernet = current_app.config["IDP_KEY_FERNET"]
        key = import_key(json.loads(decrypt(fernet, row.private_jwk_encrypted)))
        with _cache_lock:
            _private_key_cache[row.kid] = key
    return key


def public_jwks() -> dict[str, list[dict[str, Any]]]:
    """Public members only, one entry per published key."""
    rows = db.session.scalars(
        db.select(SigningKey).filter_by(retired_at=None).order_by(SigningKey.id)
    )
    return {"keys": [dict(row.public_jwk) for row in rows]}

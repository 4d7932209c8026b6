"""Secrets at rest: the Flask secret and the key that encrypts private signing keys.

Production sets IDP_SECRET_KEY and IDP_KEY_ENCRYPTION_KEY. A developer's machine gets
generated values kept in the instance folder, and a loud warning says so.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

log = logging.getLogger("idp")


def hash_token(value: str) -> str:
    """SHA-256 hex digest of a high-entropy token (codes, access tokens, cookies)."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_token(nbytes: int = 32) -> str:
    """A random URL-safe token with nbytes of entropy."""
    return secrets.token_urlsafe(nbytes)


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in a file, created (mode 0600) with make() on first use.

    Several processes may start at once on a new instance folder: each writes its candidate to
    a file of its own and links it into place, which succeeds for one of them only, whole;
    the others read the winner's secret, so every process ends up with the same one.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = make()
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.link(candidate, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        candidate.unlink(missing_ok=True)
    return value


def _instance_secret(instance_path: str, name: str, make: Callable[[], str]) -> str:
    """A generated development secret from the instance folder, announced loudly."""
    value = secret_file(Path(instance_path) / name, make)
    log.warning(
        "DEVELOPMENT ONLY: using a generated %s from the instance folder; set IDP_%s in production",
        name,
        name.upper().replace("-", "_"),
    )
    return value


def resolve_secret_key(configured: str, instance_path: str) -> str:
    """The Flask secret key: configured, or generated for development."""
    if configured:
        return configured
    return _instance_secret(instance_path, "secret-key", lambda: secrets.token_hex(32))


def resolve_pairwise_secret(configured: str, instance_path: str) -> bytes:
    """The key of the keyed hash that derives pairwise subject identifiers."""
    value = configured or _instance_secret(
        instance_path, "pairwise-secret", lambda: secrets.token_hex(32)
    )
    if len(value) < 32:
        raise ValueError("IDP_PAIRWISE_SECRET must be at least 32 characters")
    return value.encode("utf-8")


def resolve_key_encryption_key(configured: str, instance_path: str) -> Fernet:
    """The Fernet key that encrypts private signing keys at rest."""
    return _fernet(configured, instance_path, "key-encryption-key")


def resolve_identity_encryption_key(configured: str, instance_path: str) -> Fernet:
    """The Fernet key that encrypts citizens' verified identity details at rest."""
    return _fernet(configured, instance_path, "identity-encryption-key")


def _fernet(configured: str, instance_path: str, name: str) -> Fernet:
    """A Fernet key: configured (IDP_<NAME>), or generated into the instance folder (dev)."""
    value = configured or _instance_secret(
        instance_path, name, lambda: Fernet.generate_key().decode()
    )
    try:
        return Fernet(value.encode())
    except (ValueError, TypeError):
        variable = "IDP_" + name.upper().replace("-", "_")
        raise ValueError(
            f"{variable} must be a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def decrypt(fernet: Fernet, token: str) -> bytes:
    """Decrypt a value encrypted at rest, naming the likely cause when it fails."""
    try:
        return fernet.decrypt(token.encode())
    except InvalidToken:
        raise ValueError(
            "a private signing key cannot be decrypted: IDP_KEY_ENCRYPTION_KEY is not the key "
            "it was encrypted with"
        ) from None

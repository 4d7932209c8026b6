"""The service's own RSA key for private_key_jwt client authentication, and its JWKS."""

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

SIGNING_ALG = "RS256"
KEY_SIZE = 2048


def load_or_create_private_key(path: str) -> RSAKey:
    """Load the PEM private key at path, generating an RSA key there (mode 0600) if missing."""
    key_path = Path(path)
    if not key_path.exists():
        write_new_private_key(key_path)
    key = RSAKey.import_key(key_path.read_bytes(), parameters={"use": "sig", "alg": SIGNING_ALG})
    # RFC 7638: the kid is the key's thumbprint, so it is stable across restarts.
    key.ensure_kid()
    return key


def write_new_private_key(key_path: Path) -> None:
    """Write a fresh RSA key to key_path without ever exposing a partly written file."""
    key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    # mkstemp creates the file with mode 0600; linking it into place fails if another
    # process got there first, and then that process's key wins.
    descriptor, temporary_path = tempfile.mkstemp(dir=key_path.parent, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as temporary_file:
            temporary_file.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(temporary_path, key_path)
    finally:
        os.unlink(temporary_path)


def public_jwks(key: RSAKey) -> dict:
    """The JWKS the IdP fetches from the client's jwks_uri: public members only."""
    return {"keys": [key.as_dict(private=False)]}

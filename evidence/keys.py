"""Each evidence service's own EC P-256 key: it signs the service's credentials (ES256), and
its public half is published at /.well-known/jwks.json for the IdP to check them with."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

SIGNING_ALG = "ES256"


@dataclass(frozen=True)
class SigningKey:
    """The private key, and its kid: the RFC 7638 thumbprint, stable across restarts."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str

    def public_jwks(self) -> dict:
        """The JWKS to publish: the public key only."""
        jwk = ECKey.import_key(self.private_key.public_key())
        return {
            "keys": [
                {**jwk.as_dict(private=False), "kid": self.kid, "use": "sig", "alg": SIGNING_ALG}
            ]
        }


def signing_key_env_name(kind: str) -> str:
    """The environment variable that may hold the service's key as a PEM."""
    return f"EVIDENCE_{kind.upper()}_SIGNING_KEY"


def load_signing_key(kind: str, instance_path: str) -> SigningKey:
    """The key from the environment when set, else the one in the instance folder (made there,
    mode 0600, the first time)."""
    env_name = signing_key_env_name(kind)
    pem = os.environ.get(env_name, "").strip()
    if pem:
        return _from_pem(pem.encode(), f"{env_name}")
    path = Path(instance_path) / f"{kind}-signing-key.pem"
    if not path.exists():
        _write_new_key(path)
    return _from_pem(path.read_bytes(), str(path))


def _from_pem(pem: bytes, where: str) -> SigningKey:
    """A SigningKey from a PEM private key, refusing anything but EC P-256."""
    try:
        private_key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
        private_key.curve, ec.SECP256R1
    ):
        raise ValueError(f"{where}: the key must be an EC P-256 private key (ES256)")
    return SigningKey(private_key, ECKey.import_key(private_key).thumbprint())


def _write_new_key(path: Path) -> None:
    """Write a fresh key to path (mode 0600); if another process got there first, its key wins."""
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file with mode 0600; linking it into place never shows half a key.
    descriptor, temporary_path = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as temporary_file:
            temporary_file.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(temporary_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary_path)

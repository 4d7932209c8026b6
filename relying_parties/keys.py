"""The service's own RSA key for private_key_jwt client authentication, and its JWKS."""

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey

from relying_parties.files import write_owner_only

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
    """Write a fresh RSA key to key_path; if another process got there first, its key wins."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    write_owner_only(key_path, pem, replace=False)


def public_jwks(key: RSAKey) -> dict:
    """The public JWKS, served at the jwks_uri or registered by value: no private members."""
    return {"keys": [key.as_dict(private=False)]}


def public_jwks_for(private_key_path: str) -> dict:
    """The public JWKS to register by value for the key at private_key_path, made if missing."""
    return public_jwks(load_or_create_private_key(private_key_path))

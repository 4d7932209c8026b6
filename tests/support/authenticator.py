"""A software passkey authenticator for tests over HTTP: what a browser and its authenticator
send back from navigator.credentials.create() and .get(), built by hand (WebAuthn Level 3).

Each credential is an EC P-256 key (COSE ES256). Registration answers use "none" attestation;
assertions sign authenticatorData || SHA-256(clientDataJSON). Switches send what a broken or
hostile client would: another origin, another RP ID, a stale sign count, no user verification,
and the backup flags of a synced passkey.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

# Authenticator data flags (WebAuthn Level 3 6.1).
UP = 0x01  # user present
UV = 0x04  # user verified
BE = 0x08  # backup eligible (a synced, multi-device passkey)
BS = 0x10  # backed up
AT = 0x40  # attested credential data included
AAGUID = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")


def b64url(data: bytes) -> str:
    """base64url without padding, as WebAuthn's JSON forms use."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    """The bytes of a base64url string (padding optional)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """One passkey on the authenticator."""

    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0

    @property
    def id(self) -> str:
        """The credential ID, base64url (as the IdP stores it)."""
        return b64url(self.credential_id)

    def cose_public_key(self) -> bytes:
        """The public key as a COSE_Key (EC2, P-256, ES256)."""
        numbers = self.private_key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,  # kty: EC2
                3: -7,  # alg: ES256
                -1: 1,  # crv: P-256
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


@dataclass
class SoftwareAuthenticator:
    """A platform authenticator that keeps discoverable credentials (passkeys)."""

    origin: str
    # Synced passkeys (iCloud Keychain, Google Password Manager) set BE and BS: amr "swk".
    synced: bool = False
    # Sign counts go up by one per assertion; synced passkeys usually keep them at 0.
    counts_signatures: bool = True
    credentials: list[Credential] = field(default_factory=list)

    @property
    def rp_id(self) -> str:
        """The host name of the origin."""
        return self.origin.split("://", 1)[1].split(":", 1)[0].split("/", 1)[0]

    def _flags(self, *, user_verified: bool, attested: bool = False) -> int:
        flags = UP | (UV if user_verified else 0)
        if self.synced:
            flags |= BE | BS
        return flags | (AT if attested else 0)

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False},
            separators=(",", ":"),
        ).encode()

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.create(): a new credential and its RegistrationResponseJSON."""
        rp_id_used = rp_id or options["rp"]["id"]
        excluded = {d["id"] for d in options.get("excludeCredentials") or []}
        if any(c.id in excluded for c in self.credentials if c.rp_id == rp_id_used):
            raise ValueError("InvalidStateError: this authenticator already has a credential")
        credential = Credential(
            credential_id=credential_id or secrets.token_bytes(32),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp_id_used,
            user_handle=from_b64url(options["user"]["id"]),
        )
        self.credentials.append(credential)
        client_data = self._client_data(
            "webauthn.create", options["challenge"], origin or self.origin
        )
        attested = (
            AAGUID
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + credential.cose_public_key()
        )
        auth_data = (
            hashlib.sha256(rp_id_used.encode()).digest()
            + bytes([self._flags(user_verified=user_verified, attested=True)])
            + struct.pack(">I", credential.sign_count)
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": credential.id,
            "rawId": credential.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential: Credential | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        sign_count: int | None = None,
        with_user_handle: bool = True,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion (AuthenticationResponseJSON).

        Without `credential` it picks the first one allowed (or, for a discoverable request
        with no allowCredentials, the first for the RP ID), as a citizen choosing would.
        """
        if credential is None:
            allowed = {d["id"] for d in options.get("allowCredentials") or []}
            credential = next(
                c
                for c in self.credentials
                if (c.id in allowed) or (not allowed and c.rp_id == options.get("rpId"))
            )
        rp_id_used = rp_id or credential.rp_id
        if sign_count is None:
            if self.counts_signatures:
                credential.sign_count += 1
            sign_count = credential.sign_count
        client_data = self._client_data("webauthn.get", options["challenge"], origin or self.origin)
        auth_data = (
            hashlib.sha256(rp_id_used.encode()).digest()
            + bytes([self._flags(user_verified=user_verified)])
            + struct.pack(">I", sign_count)
        )
        signature = credential.private_key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        response = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if with_user_handle:
            response["userHandle"] = b64url(credential.user_handle)
        return {
            "id": credential.id,
            "rawId": credential.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": response,
        }

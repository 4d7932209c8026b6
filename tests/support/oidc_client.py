"""An independent department client: httpx and PyJWT only, no IdP internals.

It does what a department's OIDC library does: discovery, an authorization URL with state,
nonce and PKCE, the code exchange with client authentication, and ID token validation
against the published JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass
class SigningKeyPair:
    """A department's key pair for private_key_jwt."""

    private_key: Any
    kid: str
    alg: str

    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK with kid."""
        algorithm = (
            jwt.algorithms.RSAAlgorithm if self.alg.startswith("RS") else jwt.algorithms.ECAlgorithm
        )
        jwk = json.loads(algorithm.to_jwk(self.private_key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return jwk


# Generating an RSA 2048 key takes a fifth of a second: the tests draw them from a pool that
# grows as needed, the n-th key a test asks for being the n-th of the pool (tests/conftest.py
# starts each test at the first). A test's keys are different from one another; the next test
# reuses them under new kids, its IdP having forgotten the last test's clients.
_RSA_POOL: list[rsa.RSAPrivateKey] = []
_rsa_drawn = 0


def restart_rsa_pool() -> None:
    """The next make_rsa_key returns the pool's first key."""
    global _rsa_drawn
    _rsa_drawn = 0


def make_rsa_key() -> SigningKeyPair:
    """An RSA 2048 key pair, different from every other this test made, with a new kid."""
    global _rsa_drawn
    if _rsa_drawn == len(_RSA_POOL):
        _RSA_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    key = _RSA_POOL[_rsa_drawn]
    _rsa_drawn += 1
    return SigningKeyPair(key, kid=uuid.uuid4().hex, alg="RS256")


def make_ec_key() -> SigningKeyPair:
    """A fresh P-256 key pair."""
    return SigningKeyPair(
        ec.generate_private_key(ec.SECP256R1()), kid=uuid.uuid4().hex, alg="ES256"
    )


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class AuthorizationAttempt:
    """What the client remembers between the redirect and the callback."""

    url: str
    params: dict[str, str]
    state: str | None
    nonce: str | None
    code_verifier: str | None


@dataclass
class DepartmentClient:
    """A relying party as a real department would write it, over HTTP only."""

    issuer: str
    client_id: str
    redirect_uri: str
    auth_method: str = "client_secret_basic"
    client_secret: str | None = None
    private_key: SigningKeyPair | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))
    # The department's clock, for its assertions' iat/exp (tests pass the IdP's, which they move).
    clock: Callable[[], float] = time.time

    def discovery(self) -> dict[str, Any]:
        """The provider metadata."""
        response = self.http.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        return response.json()

    def authorization(
        self, *, omit: tuple[str, ...] = (), **overrides: str
    ) -> AuthorizationAttempt:
        """An authorization URL with state, nonce and PKCE S256 unless overridden or omitted."""
        verifier = secrets.token_urlsafe(48)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid email",
            "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        for name in omit:
            params.pop(name, None)
        endpoint = self.discovery()["authorization_endpoint"]
        return AuthorizationAttempt(
            url=f"{endpoint}?{urlencode(params)}",
            params=params,
            state=params.get("state"),
            nonce=params.get("nonce"),
            code_verifier=verifier if "code_challenge" in params else None,
        )

    def client_assertion(self, **claim_overrides: Any) -> str:
        """A private_key_jwt assertion, as department libraries build it (no kid by default)."""
        now = int(self.clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": f"{self.issuer}/token",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
        }
        claims.update(claim_overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        assert self.private_key is not None
        return jwt.encode(claims, self.private_key.private_key, algorithm=self.private_key.alg)

    def token_request(
        self,
        code: str,
        code_verifier: str | None,
        *,
        redirect_uri: str | None = None,
        extra: dict[str, str] | None = None,
        assertion: str | None = None,
    ) -> httpx.Response:
        """POST the code to the token endpoint with the client's authentication method."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.redirect_uri,
        }
        if code_verifier:
            data["code_verifier"] = code_verifier
        auth = self._authenticate(data, assertion)
        data.update(extra or {})
        return self.http.post(f"{self.issuer}/token", data=data, auth=auth)

    def _authenticate(self, data: dict[str, str], assertion: str | None = None):
        """Add the client's authentication to a form; the basic-auth pair, if it uses one."""
        if self.auth_method == "client_secret_basic":
            # RFC 6749 2.3.1: form-urlencode each part before base64.
            from urllib.parse import quote_plus

            return (quote_plus(self.client_id), quote_plus(self.client_secret or ""))
        if self.auth_method == "client_secret_post":
            data.update(client_id=self.client_id, client_secret=self.client_secret or "")
        elif self.auth_method == "private_key_jwt":
            data.update(
                client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                client_assertion=assertion or self.client_assertion(),
            )
        elif self.auth_method == "none":
            data.update(client_id=self.client_id)
        return None

    def revoke(self, token: str, **extra: str) -> httpx.Response:
        """RFC 7009: revoke a token, authenticated as this client."""
        data = {"token": token, **extra}
        auth = self._authenticate(data)
        return self.http.post(self.discovery()["revocation_endpoint"], data=data, auth=auth)

    def introspect(self, token: str, **extra: str) -> httpx.Response:
        """RFC 7662: ask whether a token is active, authenticated as this client."""
        data = {"token": token, **extra}
        auth = self._authenticate(data)
        return self.http.post(self.discovery()["introspection_endpoint"], data=data, auth=auth)

    def validate_id_token(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        """Check signature (published JWKS), iss, aud, exp and nonce as a department must."""
        meta = self.discovery()
        header = jwt.get_unverified_header(id_token)
        jwks = self.http.get(meta["jwks_uri"]).json()
        matching = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
        assert matching, f"kid {header['kid']} is not in the published JWKS"
        key = jwt.PyJWK(matching[0])
        claims = jwt.decode(
            id_token,
            key,
            algorithms=[header["alg"]],
            audience=self.client_id,
            issuer=meta["issuer"],
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            # PyJWT reads the real clock: allow for a department clock a test moved forward.
            leeway=max(0.0, self.clock() - time.time()),
        )
        if nonce is not None:
            assert claims.get("nonce") == nonce, "nonce in the ID token does not match"
        return claims

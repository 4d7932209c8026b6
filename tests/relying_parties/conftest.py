"""Fixtures for the department services: their settings and a stand-in IdP on a loopback port."""

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from werkzeug.serving import make_server

from relying_parties import driving, tax
from relying_parties.common import DepartmentSettings

UNREACHABLE_ISSUER = "http://127.0.0.1:9"
TAX_SECRET = "tax-client-secret"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CITIZEN_USERINFO = {
    "email": "ada@example.com",
    "email_verified": True,
    "phone_number": "+447700900123",
    "phone_number_verified": False,
    "name": "Ada Lovelace",
}


class FakeIdentityProvider:
    """A stand-in IdP: discovery, JWKS, token and UserInfo endpoints, and a test-driven authorize.

    Tests change its behaviour through id_token_changes, userinfo_changes, discovery_changes and
    token_error, and read what the department sent from authorization_requests and
    token_requests.
    """

    CITIZEN_SUB = "urn:fdc:gov.uk:2022:pairwise-citizen-1"
    AUTH_TIME = 1741183389  # 5 March 2025 at 14:03:09 UTC

    def __init__(self) -> None:
        """Create the signing key and the WSGI server on a free loopback port."""
        self.signing_key = ECKey.generate_key(
            "P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True
        )
        self.clients: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, str] = {}
        self.authorization_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self.discovery_fetches = 0
        self.id_token_changes: dict = {}
        self.userinfo_changes: dict = {}
        self.discovery_changes: dict = {}
        self.id_token_key: ECKey | None = None
        self.token_error: dict | None = None
        self.server = make_server("127.0.0.1", 0, self.build_app(), threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.port}"
        self.token_endpoint = f"{self.issuer}/token"

    def register_client(self, client_id: str, secret: str | None = None, jwks: dict | None = None):
        """Register a department the way the real IdP's registration would."""
        self.clients[client_id] = {"secret": secret, "jwks": jwks}

    def authorize(self, authorization_url: str) -> dict:
        """Play the citizen signing in: issue a code for the request, return callback params."""
        parts = urlsplit(authorization_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{self.issuer}/authorize"
        params = {name: values[0] for name, values in parse_qs(parts.query).items()}
        self.authorization_requests.append(params)
        code = secrets.token_urlsafe(16)
        self.codes[code] = params
        return {"code": code, "state": params["state"], "iss": self.issuer}

    def build_app(self) -> Flask:
        """The IdP's HTTP endpoints."""
        app = Flask(__name__)

        @app.get("/.well-known/openid-configuration")
        def discovery():
            self.discovery_fetches += 1
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": self.token_endpoint,
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
                "authorization_response_iss_parameter_supported": True,
                **self.discovery_changes,
            }

        @app.get("/jwks")
        def jwks():
            return {"keys": [self.signing_key.as_dict(private=False)]}

        @app.post("/token")
        def token():
            client_id = self.authenticate_client()
            if client_id is None:
                return jsonify(error="invalid_client"), 401
            if self.token_error:
                return jsonify(self.token_error), 400
            grant = self.codes.pop(request.form.get("code", ""), None)
            if (
                grant is None
                or grant["client_id"] != client_id
                or grant["redirect_uri"] != request.form.get("redirect_uri")
                or grant["code_challenge_method"] != "S256"
                or s256(request.form.get("code_verifier", "")) != grant["code_challenge"]
            ):
                return jsonify(error="invalid_grant"), 400
            access_token = secrets.token_urlsafe(24)
            self.access_tokens[access_token] = self.CITIZEN_SUB
            return {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self.issue_id_token(client_id, grant["nonce"]),
            }

        @app.get("/userinfo")
        def userinfo():
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            sub = self.access_tokens.get(bearer)
            if sub is None:
                return jsonify(error="invalid_token"), 401
            return {"sub": sub, **CITIZEN_USERINFO, **self.userinfo_changes}

        return app

    def authenticate_client(self) -> str | None:
        """Check client_secret_basic or private_key_jwt, recording what the client sent."""
        record: dict = {"form": request.form.to_dict()}
        self.token_requests.append(record)
        if request.authorization and request.authorization.type == "basic":
            client_id = request.authorization.username
            record["basic"] = (client_id, request.authorization.password)
            client = self.clients.get(client_id)
            if client and client["secret"] == request.authorization.password:
                return client_id
            return None
        if request.form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return None
        assertion = request.form["client_assertion"]
        client_id = unverified_claims(assertion).get("iss")
        client = self.clients.get(client_id)
        if not client or not client["jwks"]:
            return None
        token = jwt.decode(assertion, KeySet.import_key_set(client["jwks"]), algorithms=["RS256"])
        record["assertion_header"] = token.header
        record["assertion_claims"] = token.claims
        claims = token.claims
        if (
            claims["iss"] != client_id
            or claims["sub"] != client_id
            or claims["aud"] != self.token_endpoint
            or claims["exp"] < time.time()
        ):
            return None
        return client_id

    def issue_id_token(self, client_id: str, nonce: str) -> str:
        """An ES256 ID token about the citizen, with any changes a test asked for."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.CITIZEN_SUB,
            "aud": client_id,
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "auth_time": self.AUTH_TIME,
            "amr": ["pwd", "otp"],
            "sid": "sid-1234",
        }
        claims.update(self.id_token_changes)
        key = self.id_token_key or self.signing_key
        return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def s256(code_verifier: str) -> str:
    """RFC 7636 S256 code challenge."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def unverified_claims(token: str) -> dict:
    """The claims of a JWT before its signature is checked, to find which client signed it."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def fake_idp() -> Iterator[FakeIdentityProvider]:
    """A running stand-in IdP."""
    idp = FakeIdentityProvider()
    thread = threading.Thread(target=idp.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield idp
    idp.server.shutdown()
    idp.server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def department_settings(tmp_path: Path) -> Callable[..., DepartmentSettings]:
    """Settings for the 'tax' or 'driving' sample, against a given issuer."""

    def build(kind: str, issuer: str = UNREACHABLE_ISSUER, **changes) -> DepartmentSettings:
        if kind == "tax":
            values = {
                "name": "Your tax account",
                "department": "HM Revenue & Customs",
                "client_id": "tax",
                "base_url": "http://localhost:8001",
                "token_endpoint_auth_method": "client_secret_basic",
                "client_secret": TAX_SECRET,
                "colour": "#008670",
            }
        else:
            values = {
                "name": "Your driving licence",
                "department": "Driver and Vehicle Licensing Agency",
                "client_id": "driving",
                "base_url": "http://localhost:8002",
                "token_endpoint_auth_method": "private_key_jwt",
                "private_key_path": str(tmp_path / "keys" / "driving.pem"),
                "colour": "#d53880",
            }
        return DepartmentSettings(issuer=issuer, **{**values, **changes})

    return build


@pytest.fixture
def department_app(department_settings) -> Callable[..., Flask]:
    """Build the 'tax' or 'driving' service app."""

    def build(kind: str, issuer: str = UNREACHABLE_ISSUER, **changes) -> Flask:
        factory = tax.create_app if kind == "tax" else driving.create_app
        app = factory(department_settings(kind, issuer, **changes))
        app.config["TESTING"] = True
        return app

    return build


@pytest.fixture
def signed_up(fake_idp: FakeIdentityProvider, department_app):
    """A department service registered with the running stand-in IdP, and its test client."""

    def build(kind: str):
        app = department_app(kind, fake_idp.issuer)
        client = app.test_client()
        if kind == "tax":
            fake_idp.register_client("tax", secret=TAX_SECRET)
        else:
            # The real IdP fetches this from the client's registered jwks_uri.
            fake_idp.register_client("driving", jwks=client.get("/jwks.json").get_json())
        return app, client

    return build

"""Fixtures for the department services: their settings and a stand-in IdP on a loopback port."""

import base64
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from werkzeug.serving import make_server

from relying_parties import benefits, council, driving, health, keys, tax
from relying_parties.common import DepartmentSettings
from relying_parties.keys import public_jwks_for
from relying_parties.registration import RegisteredClient, register_dynamically

UNREACHABLE_ISSUER = "http://127.0.0.1:9"
DRIVING_SECRET = "driving-client-secret"
COUNCIL_SECRET = "council-client-secret"
INITIAL_ACCESS_TOKEN = "initial-access-token-for-the-council"
COUNCIL_CLIENT_NAME = "Northfield Borough Council: Pay your council tax"
STRONG_VECTOR = "Cl.Cm"
# The start page's GOV.UK Frontend start button, a link to the service's sign-in.
SIGN_IN_BUTTON = re.compile(
    r'<a href="/sign-in" role="button"[^>]*class="govuk-button govuk-button--start"[^>]*>'
    r"\s*Sign in with Government sign in\s*<svg"
)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CITIZEN_USERINFO = {
    "email": "ada@example.com",
    "email_verified": True,
    "phone_number": "+447700900123",
    "phone_number_verified": False,
    "name": "Ada Lovelace",
}
SECRET_METHODS = ("client_secret_basic", "client_secret_post")

# The five samples as a government would run them; private_key_path is a file name under
# the test's keys folder.
SERVICES: dict[str, tuple[ModuleType, dict]] = {
    "tax": (
        tax,
        {
            "name": "Your tax account",
            "department": "HM Revenue & Customs",
            "client_id": "tax",
            "base_url": "http://localhost:8001",
            "token_endpoint_auth_method": "private_key_jwt",
            "private_key_path": "tax.pem",
            "colour": "#008670",
        },
    ),
    "driving": (
        driving,
        {
            "name": "View your driving licence",
            "department": "Driver and Vehicle Licensing Agency",
            "client_id": "driving",
            "base_url": "http://localhost:8002",
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret": DRIVING_SECRET,
            "colour": "#d53880",
        },
    ),
    "health": (
        health,
        {
            "name": "Your health record",
            "department": "NHS",
            "client_id": "health",
            "base_url": "http://localhost:8003",
            "token_endpoint_auth_method": "private_key_jwt",
            "private_key_path": "health.pem",
            "colour": "#005eb8",
            "authorize_params": {"vtr": f'["{STRONG_VECTOR}"]'},
            "required_vot": STRONG_VECTOR,
        },
    ),
    "benefits": (
        benefits,
        {
            "name": "Check your benefits",
            "department": "Department for Work and Pensions",
            "client_id": "benefits",
            "base_url": "http://localhost:8004",
            "token_endpoint_auth_method": "none",
            "colour": "#00703c",
        },
    ),
    "council": (
        council,
        {
            "name": "Pay your council tax",
            "department": "Northfield Borough Council",
            "client_id": "council",
            "base_url": "http://localhost:8005",
            "token_endpoint_auth_method": "client_secret_post",
            "client_secret": COUNCIL_SECRET,
            "scope": council.SCOPE,
            "colour": "#4c2c92",
        },
    ),
}
DEPARTMENTS = list(SERVICES)
COUNCIL_METADATA = council.registration_metadata(
    SERVICES["council"][1]["base_url"], COUNCIL_CLIENT_NAME
)
COUNCIL_STORE = Path("instance") / "council-registration.json"


class FakeIdentityProvider:
    """A stand-in IdP: discovery, JWKS, token, UserInfo and registration endpoints, and a
    test-driven authorize.

    Tests change its behaviour through id_token_changes (a None value removes the claim),
    userinfo_changes, discovery_changes, token_error and registration_error, publish more
    public keys in its JWKS through published_keys, and read what the department sent from
    authorization_requests, token_requests, registration_requests and jwks_fetches.
    """

    CITIZEN_SUB = "urn:fdc:gov.uk:2022:pairwise-citizen-1"
    AUTH_TIME = 1741183389  # 5 March 2025 at 14:03:09 UTC

    def __init__(self, port: int = 0) -> None:
        """Create the signing key and the WSGI server on a loopback port, by default a free one."""
        self.signing_key = ECKey.generate_key(
            "P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True
        )
        self.clients: dict[str, dict] = {}
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, str] = {}
        self.authorization_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self.registration_requests: list[dict] = []
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.published_keys: list[dict] = []
        self.id_token_changes: dict = {}
        self.userinfo_changes: dict = {}
        self.discovery_changes: dict = {}
        self.id_token_key: ECKey | None = None
        self.token_error: dict | None = None
        self.registration_error: dict | None = None
        self.server = make_server("127.0.0.1", port, self.build_app(), threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.port}"
        self.token_endpoint = f"{self.issuer}/token"

    def register_client(
        self,
        client_id: str,
        method: str,
        secret: str | None = None,
        jwks: dict | None = None,
        metadata: dict | None = None,
    ) -> dict:
        """Register a department the way the real IdP's registration would."""
        client = {
            "method": method,
            "secret": secret,
            "jwks": jwks,
            "metadata": {**(metadata or {}), "token_endpoint_auth_method": method},
            "registration_access_token": secrets.token_urlsafe(16),
        }
        self.clients[client_id] = client
        return client

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
                "registration_endpoint": f"{self.issuer}/register",
                "end_session_endpoint": f"{self.issuer}/logout",
                "response_types_supported": ["code"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                    "none",
                ],
                "authorization_response_iss_parameter_supported": True,
                **self.discovery_changes,
            }

        @app.get("/jwks")
        def jwks():
            self.jwks_fetches += 1
            return {"keys": [self.signing_key.as_dict(private=False), *self.published_keys]}

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
                "id_token": self.issue_id_token(client_id, grant),
            }

        @app.get("/userinfo")
        def userinfo():
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
            sub = self.access_tokens.get(bearer)
            if sub is None:
                return jsonify(error="invalid_token"), 401
            return {"sub": sub, **CITIZEN_USERINFO, **self.userinfo_changes}

        @app.post("/register")
        def register():
            self.record_registration_request()
            if self.bearer_token() != INITIAL_ACCESS_TOKEN:
                return jsonify(error="invalid_token"), 401
            metadata = request.get_json()
            if problem := self.registration_error or metadata_problem(metadata):
                return jsonify(problem), 400
            client_id = f"client-{secrets.token_hex(4)}"
            self.register_client(
                client_id,
                metadata["token_endpoint_auth_method"],
                secret=secrets.token_urlsafe(24),
                metadata=metadata,
            )
            return self.registration_response(client_id), 201

        @app.route("/register/<client_id>", methods=["GET", "PUT"])
        def manage_registration(client_id: str):
            self.record_registration_request()
            client = self.clients.get(client_id)
            if client is None or self.bearer_token() != client["registration_access_token"]:
                return jsonify(error="invalid_token"), 401
            if request.method == "PUT":
                metadata = request.get_json()
                if metadata.get("client_id") != client_id:
                    return jsonify(error="invalid_client_metadata"), 400
                if problem := self.registration_error or metadata_problem(metadata):
                    return jsonify(problem), 400
                client["metadata"] = {
                    name: value for name, value in metadata.items() if name != "client_id"
                }
            return self.registration_response(client_id)

        return app

    def bearer_token(self) -> str | None:
        """The RFC 6750 bearer token the request carries, if any."""
        authorization = request.headers.get("Authorization", "")
        return (
            authorization.removeprefix("Bearer ") if authorization.startswith("Bearer ") else None
        )

    def record_registration_request(self) -> None:
        """Keep what a registration request sent, for tests to read."""
        self.registration_requests.append(
            {
                "method": request.method,
                "path": request.path,
                "bearer": self.bearer_token(),
                "body": request.get_json(silent=True),
            }
        )

    def registration_response(self, client_id: str) -> dict:
        """RFC 7591 3.2.1 / RFC 7592 2.1: the registered metadata and the credentials."""
        client = self.clients[client_id]
        return {
            **client["metadata"],
            "client_id": client_id,
            "client_secret": client["secret"],
            "client_id_issued_at": int(time.time()),
            "client_secret_expires_at": 0,
            "registration_access_token": client["registration_access_token"],
            "registration_client_uri": f"{self.issuer}/register/{client_id}",
        }

    def authenticate_client(self) -> str | None:
        """Check the client authenticated the way it registered, recording what it sent."""
        form = request.form
        record: dict = {"form": form.to_dict()}
        self.token_requests.append(record)
        basic = request.authorization if request.authorization else None
        used = [
            method
            for method, present in (
                ("client_secret_basic", basic and basic.type == "basic"),
                ("private_key_jwt", "client_assertion" in form),
                ("client_secret_post", "client_secret" in form),
            )
            if present
        ]
        # RFC 6749 2.3: a client must not use more than one authentication method.
        if len(used) > 1:
            return None
        method = used[0] if used else "none"
        record["method"] = method
        if method == "client_secret_basic":
            client_id, secret = basic.username, basic.password
            record["basic"] = (client_id, secret)
        elif method == "private_key_jwt":
            client_id, secret = unverified_claims(form["client_assertion"]).get("iss"), None
        else:
            client_id, secret = form.get("client_id"), form.get("client_secret")
        client = self.clients.get(client_id)
        if client is None or client["method"] != method:
            return None
        if method in SECRET_METHODS:
            return client_id if secret == client["secret"] else None
        if method == "private_key_jwt":
            return client_id if self.assertion_is_valid(client_id, client, record) else None
        return client_id

    def assertion_is_valid(self, client_id: str, client: dict, record: dict) -> bool:
        """RFC 7523 3: the client assertion is signed by the client's key, for us, in date."""
        if request.form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return False
        keys = KeySet.import_key_set(client["jwks"])
        token = jwt.decode(request.form["client_assertion"], keys, algorithms=["RS256"])
        record["assertion_header"] = token.header
        record["assertion_claims"] = claims = token.claims
        return (
            claims["iss"] == client_id
            and claims["sub"] == client_id
            and claims["aud"] == self.token_endpoint
            and claims["exp"] >= time.time()
        )

    def issue_id_token(self, client_id: str, grant: dict) -> str:
        """An ES256 ID token about the citizen, with any changes a test asked for.

        Like GOV.UK One Login, it asserts the first vector of trust the service asked for.
        """
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": self.CITIZEN_SUB,
            "aud": client_id,
            "exp": now + 300,
            "iat": now,
            "nonce": grant["nonce"],
            "auth_time": self.AUTH_TIME,
            "amr": ["pwd", "otp"],
            "sid": "sid-1234",
        }
        if "vtr" in grant:
            claims["vot"] = json.loads(grant["vtr"])[0]
        claims.update(self.id_token_changes)
        claims = {name: value for name, value in claims.items() if value is not None}
        key = self.id_token_key or self.signing_key
        return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def metadata_problem(metadata: object) -> dict | None:
    """RFC 7591 3.2.2: what is wrong with the client metadata, if anything."""
    if not isinstance(metadata, dict):
        return {"error": "invalid_client_metadata", "error_description": "Not a JSON object."}
    redirect_uris = metadata.get("redirect_uris")
    if not redirect_uris or not all(uri.startswith("http") for uri in redirect_uris):
        return {"error": "invalid_redirect_uri", "error_description": "redirect_uris are needed."}
    if metadata.get("token_endpoint_auth_method") not in SECRET_METHODS:
        return {
            "error": "invalid_client_metadata",
            "error_description": "Only client_secret_basic and client_secret_post can register.",
        }
    return None


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


@pytest.fixture(scope="session", autouse=True)
def _one_rsa_key_for_the_samples() -> Iterator[None]:
    """Generating a 2048-bit RSA key takes a fifth of a second and nearly every test here starts
    a sample service that makes one: the samples get one key, generated once. The service still
    writes its key file itself (owner-only, kept across restarts) as at a first start."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=keys.KEY_SIZE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keys, "rsa", SimpleNamespace(generate_private_key=lambda **_: key))
        yield


@pytest.fixture
def department_settings(tmp_path: Path) -> Callable[..., DepartmentSettings]:
    """Settings for one of the five samples, against a given issuer."""

    def build(kind: str, issuer: str = UNREACHABLE_ISSUER, **changes) -> DepartmentSettings:
        values = {**SERVICES[kind][1], "issuer": issuer}
        if "private_key_path" in values:
            values["private_key_path"] = str(tmp_path / "keys" / values["private_key_path"])
        return DepartmentSettings(**{**values, **changes})

    return build


@pytest.fixture
def department_app(department_settings) -> Callable[..., Flask]:
    """Build one of the five sample apps, registered with nobody unless the test does it."""

    def build(kind: str, issuer: str = UNREACHABLE_ISSUER, **changes) -> Flask:
        return in_testing_mode(
            SERVICES[kind][0].create_app(department_settings(kind, issuer, **changes))
        )

    return build


@pytest.fixture
def register_council(fake_idp: FakeIdentityProvider, tmp_path: Path):
    """Register the council with the stand-in IdP through RFC 7591, as it does at start-up."""

    def register(metadata: dict | None = None, **options) -> RegisteredClient:
        return register_dynamically(
            options.pop("issuer", fake_idp.issuer),
            metadata or COUNCIL_METADATA,
            INITIAL_ACCESS_TOKEN,
            tmp_path / COUNCIL_STORE,
            **options,
        )

    return register


@pytest.fixture
def signed_up(
    fake_idp: FakeIdentityProvider, department_app, department_settings, register_council
):
    """A department service registered with the running stand-in IdP, and its test client."""

    def build(kind: str, **changes) -> tuple[Flask, object]:
        if kind == "council":
            values = {
                name: value
                for name, value in SERVICES["council"][1].items()
                if name not in ("client_id", "client_secret", "token_endpoint_auth_method", "scope")
            }
            settings = council.settings_from_registration(
                register_council(), **{**values, "issuer": fake_idp.issuer, **changes}
            )
            app = in_testing_mode(council.create_app(settings))
            return app, app.test_client()
        app = department_app(kind, fake_idp.issuer, **changes)
        settings: DepartmentSettings = app.extensions["relying_party"].settings
        client = app.test_client()
        if kind == "tax":
            # The real IdP fetches tax's key from its registered jwks_uri.
            jwks = client.get("/jwks.json").get_json()
            fake_idp.register_client("tax", "private_key_jwt", jwks=jwks)
        elif kind == "health":
            # Health's public key is registered by value: nobody fetches its /jwks.json.
            jwks = public_jwks_for(settings.private_key_path)
            fake_idp.register_client("health", "private_key_jwt", jwks=jwks)
        else:
            fake_idp.register_client(
                settings.client_id,
                settings.token_endpoint_auth_method,
                secret=settings.client_secret,
            )
        return app, client

    return build


def in_testing_mode(app: Flask) -> Flask:
    """The app in Flask's testing mode."""
    app.config["TESTING"] = True
    return app

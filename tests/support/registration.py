"""Helpers for tests of self-service registration (RFC 7591/7592), client status and the
documents a registration makes the IdP fetch (sector_identifier_uri, jwks_uri).

Everything a department does goes over HTTP; only what a platform administrator or the
operator would do (issue an initial access token, approve or suspend a service) runs in an
app context, as the CLI does.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.oidc_client import DepartmentClient, SigningKeyPair

# A trickling answer stops after this many seconds, so a test of it cannot hang.
TRICKLE_LIMIT = 4.0

# One connection pool for the department's registration tooling (a new httpx.Client per call
# would build a TLS context each time).
HTTP = httpx.Client(timeout=15)

# RFC 7591 2: a department's first request, before a test changes it.
VALID_METADATA: dict[str, Any] = {
    "client_name": "Apply for a fishing licence",
    "redirect_uris": ["https://fishing.example.gov.uk/callback"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid email",
}


def issue_token(
    idp,
    *,
    pre_approved: bool = False,
    max_uses: int = 1,
    department: str | None = None,
) -> str:
    """An initial access token, as `idp clients initial-token` issues it."""
    from idp.departments.services import ensure_department, issue_initial_access_token

    with idp.app.app_context():
        owner = ensure_department(department) if department else None
        _, value = issue_initial_access_token(
            description="tests",
            created_by="operator (tests)",
            department=owner,
            pre_approved=pre_approved,
            max_uses=max_uses,
        )
    return value


def register(idp, metadata: Any, token: str | None) -> httpx.Response:
    """POST /register with the metadata as JSON and the token as a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return HTTP.post(idp.url("/register"), json=metadata, headers=headers)


def manage(
    method: str, registration: dict, body: Any = None, token: str | None = None
) -> httpx.Response:
    """RFC 7592: GET, PUT or DELETE at the registration_client_uri with a bearer token."""
    value = registration["registration_access_token"] if token is None else token
    return HTTP.request(
        method,
        registration["registration_client_uri"],
        json=body,
        headers={"Authorization": f"Bearer {value}"},
    )


def replacement(registration: dict, **changes: Any) -> dict:
    """RFC 7592 2.2: a PUT body, the whole metadata, from a registration response."""
    server_assigned = {
        "client_secret",
        "client_secret_expires_at",
        "client_id_issued_at",
        "registration_access_token",
        "registration_client_uri",
    }
    body = {k: v for k, v in registration.items() if k not in server_assigned}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def registered_client(
    idp, registration: dict, private_key: SigningKeyPair | None = None
) -> DepartmentClient:
    """The department's OIDC client, configured from the registration response alone."""
    return DepartmentClient(
        issuer=idp.issuer,
        client_id=registration["client_id"],
        redirect_uri=registration["redirect_uris"][0],
        auth_method=registration["token_endpoint_auth_method"],
        client_secret=registration.get("client_secret"),
        private_key=private_key,
    )


def change_status(idp, client_id: str, action: str, *, platform_admin: bool = True) -> str:
    """Approve, suspend, reinstate, disable or enable a service, as the CLI does."""
    from idp.departments.services import change_client_status
    from idp.extensions import db
    from idp.models import Client

    with idp.app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        change_client_status(
            client, action, actor="operator (tests)", platform_admin=platform_admin
        )
        return client.status


def registration_error(response: httpx.Response, status: int, error: str) -> str:
    """An RFC 7591 3.2.2 error: status, JSON, not cached, this code; returns the description."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    return body.get("error_description", "")


@dataclass
class Document:
    """What the document server answers on one path."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds between bytes of the body: a server that answers, but ever so slowly.
    trickle: float = 0.0


class DocumentServer:
    """A department's web server on a loopback port, serving documents a test sets per path."""

    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers)))
                document = owner.documents.get(self.path) or Document(
                    b"not found", 404, "text/plain"
                )
                self.send_response(document.status)
                self.send_header("Content-Type", document.content_type)
                self.send_header("Content-Length", str(len(document.body)))
                for name, value in document.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not document.trickle:
                    self.wfile.write(document.body)
                    return
                deadline = time.monotonic() + TRICKLE_LIMIT
                try:
                    for byte in document.body:
                        if time.monotonic() > deadline:
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(document.trickle)
                except OSError:
                    return  # the IdP gave up and closed the connection

            def log_message(self, format: str, *args) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(
        self,
        path: str,
        content: Any,
        *,
        status: int = 200,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        trickle: float = 0.0,
    ) -> str:
        """Serve content (bytes as they are, anything else as JSON) at path; returns its URL."""
        body = content if isinstance(content, bytes) else json.dumps(content).encode()
        self.documents[path] = Document(body, status, content_type, headers or {}, trickle)
        return self.base + path

    def paths_requested(self) -> list[str]:
        """Every path fetched so far, in order."""
        return [path for path, _ in self.requests]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """A port that accepts connections (the kernel does) and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/never.json"

    def close(self) -> None:
        """Stop listening."""
        self.sock.close()

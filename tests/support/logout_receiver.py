"""A department's backchannel_logout_uri: a tiny HTTP server that keeps what the IdP posts and
answers with the statuses a test scripts (to play a department that is down for a while)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Received:
    """One POST the department received."""

    content_type: str
    form: dict[str, list[str]]
    at: float

    @property
    def logout_token(self) -> str:
        """The one logout_token parameter."""
        (token,) = self.form["logout_token"]
        return token


class LogoutReceiver:
    """Answers each POST with the next scripted status (then 200); can hold answers back."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.received: list[Received] = []
        self.answered: list[int] = []
        # Cleared: every request waits until it is set again (a department that hangs).
        self.released = threading.Event()
        self.released.set()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                with owner._lock:
                    owner.received.append(
                        Received(
                            content_type=self.headers.get("Content-Type", ""),
                            form=parse_qs(body),
                            at=time.monotonic(),
                        )
                    )
                    status = owner.statuses.pop(0) if owner.statuses else 200
                owner.released.wait(30)
                self.send_response(status)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()
                with owner._lock:
                    owner.answered.append(status)

            def log_message(self, format: str, *args) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}/backchannel-logout"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[Received]:
        """The first count POSTs, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} back-channel logouts, got {len(self.received)}")

    def close(self) -> None:
        """Stop answering: the department is down (a second call does nothing)."""
        self.released.set()
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()

"""The benchmark's peer: node-oidc-provider (bench/node/), a certified OpenID provider that a
department might run instead of ours, set up the same way and driven by the same load generator.

bench/node/server.js is a cluster of as many node worker processes as cores on one Redis
(node-oidc-provider's documented Redis adapter pattern), with one department like the
benchmark's: code flow with PKCE S256, ES256 ID tokens, opaque access tokens and refresh tokens
rotated on every use. Its citizens are written into Redis here (email and a scrypt hash of the
password) and signed in over HTTP through its sign-in and consent pages, so each virtual user
has a live session and a refresh token, as on ours.

Node comes from Debian's `nodejs` package (`make node` installs it with npm when missing and
runs `npm ci` in bench/node); node-oidc-provider 8.x is pinned, the line that supports Debian
bookworm's Node 18 as well as Node 20 (9.x wants Node 22).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import redis

from bench.forms import follow, submit
from bench.loadgen import authorization_query
from idp.settings import PROJECT_ROOT

NODE_DIR = PROJECT_ROOT / "bench" / "node"
SESSION_COOKIE = "_session"  # node-oidc-provider's cookie name, and its ".sig" signature


class PeerError(RuntimeError):
    """The peer could not be installed or started; the message says why."""


def node_binary() -> str:
    """The path of `node`, or PeerError saying how to install it."""
    node = shutil.which("node")
    if not node:
        raise PeerError("node is not installed: `make node` installs Debian's nodejs package")
    return node


def ensure_node_modules() -> None:
    """`npm ci` in bench/node when its modules are missing or older than package-lock.json."""
    node_binary()
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if not npm:
        raise PeerError("npm is not installed: `make node` installs Debian's npm package")
    done = subprocess.run(  # noqa: S603 - a fixed command
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise PeerError(f"`npm ci` in bench/node failed: {done.stderr.strip()[-1000:]}")


def password_record(password: str) -> str:
    """scrypt (N=2^14, r=8, p=1, 32 bytes) as "salt$hash" in base64url, as server.js checks it."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(salt)}${b64(digest)}"


@dataclass
class NodePeer:
    """node-oidc-provider's cluster on a loopback port, its data under a Redis key prefix."""

    redis_url: str
    client: dict
    port: int = 8090
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    prefix: str = "oidc-bench:"
    log_dir: Path | None = None
    process: subprocess.Popen | None = None

    def issuer_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_connect_timeout=3)

    def forget(self) -> None:
        """Delete every key of this peer (its sessions, grants, tokens and accounts)."""
        client = self.redis()
        keys = list(client.scan_iter(match=self.prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])

    def start(self, timeout: float = 60.0) -> NodePeer:
        """Start the cluster on a clean key prefix and wait until every worker answers."""
        node = node_binary()
        ensure_node_modules()
        try:
            self.redis().ping()
        except redis.RedisError as exc:
            raise PeerError(f"Redis cannot be used: {type(exc).__name__}") from None
        self.forget()
        env = {
            **os.environ,
            "NODE_ENV": "production",
            "PEER_ISSUER": self.issuer_url(),
            "PEER_PORT": str(self.port),
            "PEER_REDIS_URL": self.redis_url,
            "PEER_REDIS_PREFIX": self.prefix,
            "PEER_WORKERS": str(self.workers),
            "PEER_CLIENT": json.dumps(
                {k: self.client[k] for k in ("client_id", "client_secret", "redirect_uri", "scope")}
            ),
        }
        output = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = open(self.log_dir / "node-peer.log", "ab")  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command
            [node, "server.js"],
            cwd=NODE_DIR,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        """Discovery answers 200 as many times in a row as there are workers (round-robin)."""
        deadline = time.monotonic() + timeout  # real time: processes starting
        answered, last = 0, "no answer yet"
        while answered < 2 * self.workers:
            if self.process.poll() is not None:
                raise PeerError(
                    f"the node peer stopped while starting (exit {self.process.returncode})"
                )
            try:
                response = httpx.get(
                    self.issuer_url() + "/.well-known/openid-configuration", timeout=2
                )
                answered = answered + 1 if response.status_code == 200 else 0
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                answered, last = 0, str(exc) or type(exc).__name__
                time.sleep(0.2)
            if time.monotonic() > deadline:
                raise PeerError(f"the node peer was not ready after {timeout:.0f} s ({last})")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the cluster (SIGTERM to the primary, SIGKILL after the timeout), forget its keys."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(redis.RedisError):  # nothing to clean up if Redis went first
            self.forget()

    def worker_pids(self) -> list[int]:
        """The node worker processes (children of the cluster's primary)."""
        if self.process is None:
            return []
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        return [int(p) for p in children.read_text().split()] if children.exists() else []

    def __enter__(self) -> NodePeer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the peer's citizens ----------------------------------------------------------------

    def add_accounts(self, people: list[dict]) -> None:
        """Write each citizen (email verified, password hashed) where server.js finds them."""
        client = self.redis()
        for number, person in enumerate(people):
            sub = f"citizen-{number:05d}"
            record = {
                "email": person["email"],
                "email_verified": True,
                "password": password_record(person["password"]),
            }
            client.set(f"{self.prefix}Account:{sub}", json.dumps(record))
            client.set(f"{self.prefix}AccountByEmail:{person['email']}", sub)

    def sign_in(self, person: dict) -> dict:
        """Sign a citizen in over HTTP (email and password, then consent) and redeem the code:
        their session cookie and refresh token, and the tokens themselves."""
        base = self.issuer_url()
        http = httpx.Client(timeout=30, follow_redirects=False)
        verifier, query = authorization_query(self.client)
        page = follow(http, http.get(f"{base}/authorize?{query}"), base)
        credentials = {"email": person["email"], "password": person["password"]}
        page = follow(http, submit(http, page, credentials), base)
        page = follow(http, submit(http, page, {}), base)  # consent: allow
        location = page.headers.get("location", "")
        code = parse_qs(urlsplit(location).query).get("code")
        if not code:
            raise PeerError(
                f"signing {person['email']} in to the node peer: no code"
                f" ({page.status_code} {page.text[:300]})"
            )
        response = httpx.post(
            f"{base}/token",
            data={
                "grant_type": "authorization_code",
                "code": code[0],
                "redirect_uri": self.client["redirect_uri"],
                "code_verifier": verifier,
            },
            auth=(self.client["client_id"], self.client["client_secret"]),
        )
        tokens = response.json()
        if response.status_code != 200:
            raise PeerError(f"the node peer's token endpoint: {response.status_code} {tokens}")
        # The jar holds the interaction's path-scoped cookies too: keep the session's only.
        cookie = "; ".join(
            f"{c.name}={c.value}" for c in http.cookies.jar if c.name.startswith(SESSION_COOKIE)
        )
        return {
            "email": person["email"],
            "cookie": cookie,
            "refresh_token": tokens["refresh_token"],
            "tokens": tokens,
        }

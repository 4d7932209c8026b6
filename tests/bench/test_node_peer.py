"""The benchmark's peer, node-oidc-provider (bench/node, bench/peer.py), as `make bench` runs
it: a node cluster on Redis whose department gets what ours gives (ES256 ID tokens, opaque
access tokens, refresh tokens rotated on use), and against which the load generator's journey
runs without an error. Skipped when node cannot run here, unless IDP_REQUIRE_SERVICES=1."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import jwt
import pytest

from bench.peer import NodePeer, PeerError, ensure_node_modules
from idp.settings import PROJECT_ROOT
from tests.conftest import SERVICES_REQUIRED, free_port
from tests.security.test_throttle import REDIS_URL, redis_or_skip

pytestmark = [pytest.mark.processes, pytest.mark.xdist_group("node-peer")]
CLIENT = {
    "client_id": "bench-department",
    "client_secret": "a secret only this test knows",
    "redirect_uri": "https://bench.example.gov.uk/callback",
    "scope": "openid email",
}
PERSON = {"email": "peer.citizen@example.gov.uk", "password": "a passphrase for the peer"}


def node_or_skip() -> None:
    """node and bench/node's modules (`npm ci`), or a skip that says why."""
    try:
        ensure_node_modules()
    except PeerError as exc:
        reason = f"the node-oidc-provider peer cannot run here: {exc}"
        if SERVICES_REQUIRED:
            pytest.fail(f"IDP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def peer(tmp_path_factory) -> Iterator[NodePeer]:
    node_or_skip()
    redis_or_skip()
    peer = NodePeer(
        redis_url=REDIS_URL,
        client=CLIENT,
        port=free_port(),
        workers=2,
        prefix=f"oidc-test:{uuid.uuid4().hex[:8]}:",
        log_dir=tmp_path_factory.mktemp("peer"),
    )
    try:
        peer.start(timeout=60)
    except PeerError:
        print((peer.log_dir / "node-peer.log").read_text()[-3000:])
        raise
    peer.add_accounts([PERSON])
    yield peer
    peer.stop()


def test_the_peers_department_gets_es256_id_tokens_and_opaque_access_tokens(peer):
    tokens = peer.sign_in(PERSON)["tokens"]

    keys = httpx.get(peer.issuer_url() + "/jwks.json").json()["keys"]
    header = jwt.get_unverified_header(tokens["id_token"])
    key = next(k for k in keys if k["kid"] == header["kid"])
    claims = jwt.decode(
        tokens["id_token"],
        jwt.PyJWK(key).key,
        algorithms=["ES256"],
        audience=CLIENT["client_id"],
        issuer=peer.issuer_url(),
    )
    assert header["alg"] == "ES256"
    assert claims["sub"]
    assert tokens["access_token"].count(".") == 0  # opaque, not a JWT
    userinfo = httpx.get(
        peer.issuer_url() + "/userinfo",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    ).json()
    assert userinfo == {"sub": claims["sub"], "email": PERSON["email"], "email_verified": True}


def test_the_peer_rotates_a_refresh_token_and_refuses_the_old_one(peer):
    old = peer.sign_in(PERSON)["refresh_token"]
    auth = (CLIENT["client_id"], CLIENT["client_secret"])
    form = {"grant_type": "refresh_token", "refresh_token": old}

    first = httpx.post(peer.issuer_url() + "/token", data=form, auth=auth)
    again = httpx.post(peer.issuer_url() + "/token", data=form, auth=auth)

    assert first.status_code == 200
    assert first.json()["refresh_token"] != old
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_the_load_generators_journey_runs_against_the_peer(peer, tmp_path):
    user = peer.sign_in(PERSON)
    user.pop("tokens")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"client": CLIENT, "users": [user]}))
    out = tmp_path / "journey.json"

    subprocess.run(  # noqa: S603 - the benchmark's own load generator
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            "journey",
            "--url",
            peer.issuer_url(),
            "--concurrency",
            "2",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--state",
            str(state),
            "--out",
            str(out),
        ],  # fmt: skip
        cwd=PROJECT_ROOT,
        check=True,
        timeout=60,
    )

    result = json.loads(out.read_text())
    assert result["errors"] == {}
    assert result["count"] > 0
    assert set(result["steps"]) == {"authorize", "token", "userinfo"}

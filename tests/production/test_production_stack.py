"""The production path, as `make run-prod` runs it: nginx balancing round-robin over two
separate IdP instances (gunicorn, several worker processes each) on PostgreSQL and Redis.

A citizen's browser and a department talk to the instances the way they would behind the load
balancer, except that here each request is sent to the other instance than the one before, so
every step of a journey provably lands on a different process from the previous step.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from idp.extensions import db
from idp.models import AuditEntry
from idp.operations.production import NGINX, ProductionStack
from tests.conftest import (
    SERVICES_REQUIRED,
    LiveIdP,
    _drop_postgres,
    _postgres_or_skip,
    free_port,
    new_citizen,
    new_client,
)
from tests.security.test_throttle import REDIS_URL, forget_redis_keys, redis_or_skip
from tests.support.browser import CitizenBrowser, browser_http

pytestmark = [pytest.mark.postgres, pytest.mark.processes, pytest.mark.xdist_group("production")]
WRONG = "not the password at all"
MAX_FAILURES = 6


def nginx_or_skip() -> None:
    if not os.path.exists(NGINX) and not shutil.which("nginx"):
        reason = "nginx is not installed (`make nginx` installs Debian's package)"
        if SERVICES_REQUIRED:
            pytest.fail(f"IDP_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[ProductionStack]:
    """The production stack on a fresh PostgreSQL database and a Redis key prefix of its own."""
    nginx_or_skip()
    client = redis_or_skip()
    database_url = _postgres_or_skip()
    prefix = f"idp:test:{uuid.uuid4().hex[:8]}:"
    run_dir = tmp_path_factory.mktemp("production")
    stack = ProductionStack(
        database_url=database_url,
        redis_url=REDIS_URL,
        run_dir=run_dir,
        port=free_port(),
        instance_ports=(free_port(), free_port()),
        workers=2,
        show_upstream=True,
        log_dir=run_dir / "logs",
        settings_env={
            "IDP_THROTTLE_REDIS_PREFIX": prefix,
            "IDP_THROTTLE_MAX_FAILURES": str(MAX_FAILURES),
            "IDP_THROTTLE_DELAY_SECONDS": "0",
            "IDP_LOG_LEVEL": "WARNING",
            # Every worker process of both instances signs the audit head each second.
            "IDP_AUDIT_CHECKPOINT_INTERVAL": "1",
        },
    )
    try:
        stack.start(timeout=90)
    except Exception:
        logs = run_dir / "logs"
        for log in sorted(logs.glob("*.log")) if logs.exists() else []:
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        _drop_postgres(database_url)
        raise
    stack.redis_prefix = prefix
    yield stack
    stack.stop()
    forget_redis_keys(client, prefix)
    _drop_postgres(database_url)


@pytest.fixture(scope="module")
def data(stack) -> Iterator[LiveIdP]:
    """The stack's database, seen through an app in this process (for test data only)."""
    app = stack.local_app()
    yield LiveIdP(app=app, issuer=stack.issuer)
    with app.app_context():
        db.engine.dispose()


class Alternating(httpx.BaseTransport):
    """Sends each request to the next instance in turn, bypassing the load balancer, and
    remembers which instance answered which path."""

    def __init__(self, stack: ProductionStack):
        self.instances = stack.instances
        self.turn = 0
        self.lock = threading.Lock()
        self.inner = httpx.HTTPTransport()
        self.served: list[tuple[str, str, str]] = []  # (instance, method, path)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            instance = self.instances[self.turn % len(self.instances)]
            self.turn += 1
            self.served.append((instance.name, request.method, request.url.path))
        target = urlsplit(instance.url)
        direct = httpx.Request(
            request.method,
            request.url.copy_with(scheme=target.scheme, host=target.hostname, port=target.port),
            headers=request.headers,
            content=request.read(),
        )
        return self.inner.handle_request(direct)


def alternating_browser(stack: ProductionStack) -> tuple[CitizenBrowser, Alternating]:
    browser = CitizenBrowser(stack.issuer)
    transport = Alternating(stack)
    browser.http = browser_http(timeout=15, follow_redirects=False, transport=transport)
    return browser, transport


def audit_instances(data: LiveIdP, *, client_id: str | None = None, events=()) -> set[str]:
    """The instances that wrote audit entries of these events (of this client)."""
    query = db.select(AuditEntry.instance).where(AuditEntry.event.in_(events)).distinct()
    if client_id:
        query = query.where(AuditEntry.client_id == client_id)
    with data.app.app_context():
        return set(db.session.scalars(query))


def test_the_load_balancer_shares_requests_round_robin_between_the_instances(stack):
    upstreams = []
    bodies = set()
    with httpx.Client(timeout=10) as http:
        for _ in range(8):
            response = http.get(stack.issuer_url() + "/.well-known/openid-configuration")
            assert response.status_code == 200
            upstreams.append(response.headers["x-idp-upstream"])
            bodies.add(response.content)
    ports = {f"127.0.0.1:{i.port}" for i in stack.instances}
    assert set(upstreams) == ports
    assert all(a != b for a, b in zip(upstreams, upstreams[1:], strict=False)), upstreams
    assert len(bodies) == 1, "both instances publish the same metadata"


def test_a_sign_in_started_on_one_instance_finishes_on_the_other(stack, data):
    citizen = new_citizen(data, email=f"{uuid.uuid4().hex[:8]}@example.com")
    department = new_client(data, client_id=f"dept-{uuid.uuid4().hex[:6]}")
    browser, transport = alternating_browser(stack)
    attempt = department.authorization()
    callback = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    assert callback.params["state"] == attempt.state
    assert callback.params["iss"] == stack.issuer

    department.http = httpx.Client(timeout=10, transport=Alternating(stack))
    tokens = department.token_request(callback.params["code"], attempt.code_verifier)
    assert tokens.status_code == 200, tokens.text
    claims = department.validate_id_token(tokens.json()["id_token"], attempt.nonce)
    assert claims["sub"] == citizen["subject"]
    userinfo = department.http.get(
        stack.issuer + "/userinfo",
        headers={"Authorization": f"Bearer {tokens.json()['access_token']}"},
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["email"] == citizen["email"]

    # Each step of the browser's journey went to the other instance than the step before.
    instances = [name for name, _, _ in transport.served]
    assert len(instances) >= 5, transport.served
    assert all(a != b for a, b in zip(instances, instances[1:], strict=False))
    # And the IdP's own record agrees: both instances wrote this citizen's journey.
    journey = audit_instances(
        data,
        client_id=department.client_id,
        events=("authorization_code.issued", "token.issued", "userinfo.served"),
    )
    assert journey == {"idp-a", "idp-b"}, journey


def test_throttling_counts_failures_on_every_instance(stack, data):
    citizen = new_citizen(data, email=f"{uuid.uuid4().hex[:8]}@example.com")
    browser, transport = alternating_browser(stack)
    page = browser.get(stack.issuer + "/sign-in")
    assert page.status_code == 200
    statuses = []
    for _ in range(MAX_FAILURES + 1):
        statuses.append(
            browser.submit(page, {"email": citizen["email"], "password": WRONG}).status_code
        )
    # Alone, each instance saw only half of the failures: together they lock the account.
    assert statuses == [400] * (MAX_FAILURES - 1) + [429, 429], statuses
    for _ in stack.instances:
        right = browser.submit(page, {"email": citizen["email"], "password": citizen["password"]})
        assert right.status_code == 429, "the right password is refused on every instance"
        assert "You entered the wrong password too many times" in right.text
    posted = {name for name, method, _ in transport.served if method == "POST"}
    assert posted == {"idp-a", "idp-b"}
    # The counters live in Redis, under this deployment's prefix.
    assert list(redis_or_skip().scan_iter(match=stack.redis_prefix + "*"))


def test_a_code_is_redeemed_once_even_when_both_instances_get_it_at_once(stack, data):
    citizen = new_citizen(data, email=f"{uuid.uuid4().hex[:8]}@example.com")
    department = new_client(data, client_id=f"dept-{uuid.uuid4().hex[:6]}")
    browser, _ = alternating_browser(stack)
    for round_ in range(4):
        attempt = department.authorization()
        callback = browser.authorize(attempt.url, citizen["email"], citizen["password"])
        code = callback.params["code"]
        results: dict[str, httpx.Response] = {}
        start = threading.Barrier(len(stack.instances))

        def redeem(instance, code=code, attempt=attempt, start=start, results=results) -> None:
            with httpx.Client(timeout=15) as http:
                data_ = {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": department.redirect_uri,
                    "code_verifier": attempt.code_verifier,
                }
                auth = (department.client_id, department.client_secret)
                start.wait()
                results[instance.name] = http.post(instance.url + "/token", data=data_, auth=auth)

        threads = [threading.Thread(target=redeem, args=(i,)) for i in stack.instances]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        statuses = sorted(r.status_code for r in results.values())
        assert statuses == [200, 400], (round_, {k: r.text for k, r in results.items()})
        refused = next(r for r in results.values() if r.status_code == 400)
        assert refused.json()["error"] == "invalid_grant"


def test_the_audit_chain_stays_valid_with_every_process_writing(stack, data):
    department = new_client(data, client_id=f"dept-{uuid.uuid4().hex[:6]}")
    citizens = [new_citizen(data, email=f"{uuid.uuid4().hex[:8]}@example.com") for _ in range(4)]
    errors: list[str] = []

    def journeys(citizen) -> None:
        browser = CitizenBrowser(stack.issuer)  # through nginx, as a real browser
        try:
            for _ in range(3):
                attempt = department.authorization()
                callback = browser.authorize(attempt.url, citizen["email"], citizen["password"])
                if "code" not in callback.params:
                    errors.append(str(callback.params))
        except AssertionError as exc:  # pragma: no cover - reported below
            errors.append(str(exc))

    threads = [threading.Thread(target=journeys, args=(c,)) for c in citizens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    issued = audit_instances(
        data, client_id=department.client_id, events=("authorization_code.issued",)
    )
    assert issued == {"idp-a", "idp-b"}
    result = stack.idp("audit", "verify", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    verified = re.search(
        r"the audit chain verifies: entries 1 to (\d+), (\d+) signed", result.stdout
    )
    assert verified, result.stdout
    entries, checkpoints = map(int, verified.groups())
    assert entries >= 4 * 3 * 2
    assert checkpoints >= 1, "the workers of both instances sign the head as it moves"


def test_each_instance_serves_metrics_merged_over_its_workers_but_not_through_the_balancer(
    stack, data
):
    with httpx.Client(timeout=10) as http:
        for instance in stack.instances:
            for _ in range(6):
                http.get(instance.url + "/jwks.json")
            metrics = http.get(instance.url + "/metrics")
            assert metrics.status_code == 200
            jwks_lines = [
                line
                for line in metrics.text.splitlines()
                if line.startswith("idp_request_duration_seconds_count")
                and 'endpoint="jwks.jwks"' in line
            ]
            assert jwks_lines, metrics.text[:2000]
            assert sum(float(line.rsplit(" ", 1)[1]) for line in jwks_lines) >= 6
        outside = http.get(stack.issuer_url() + "/metrics")
        assert outside.status_code == 404


def test_every_benchmark_scenario_runs_cleanly_against_the_stack(stack, data, tmp_path):
    """`make bench` drives this same stack: each of its scenarios completes without an error
    (a benchmark of failing requests would measure nothing)."""
    from bench.run import auditor_browser, auditor_first_page, create_people, load, sign_in_user

    client, people, auditor = create_people(data.app, 2)
    base = stack.issuer_url()
    state = {"client": client, "users": [sign_in_user(base, client, p) for p in people]}
    quick = {"concurrency": 2, "duration": 1.0, "warmup": 0.0}
    results = {
        name: load(name, base, tmp_path, state=state, **quick)
        for name in ("discovery", "jwks", "journey", "refresh", "sign_in")
    }
    minted = load("mint", base, tmp_path, state=state, **quick)
    codes = minted.pop("minted")
    assert codes
    results["token"] = load(
        "token", base, tmp_path, state={**state, "codes": codes}, **{**quick, "duration": 30}
    )
    for name, result in results.items():
        assert result["error_count"] == 0, (name, result["errors"])
        assert result["count"] > 0, name
    assert results["token"]["count"] == len(codes), "every minted code is redeemed once"
    assert set(results["journey"]["steps"]) == {"authorize", "token", "userinfo"}
    page = auditor_first_page(auditor_browser(base, auditor), base, people[0]["id"], rounds=2)
    assert page["count"] == 2

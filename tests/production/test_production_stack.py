"""The production path, as `make run-prod` runs it: nginx balancing round-robin over two
separate IdP instances (granian, or gunicorn with IDP_SERVER, several worker processes each) on
PostgreSQL and Redis.

A citizen's browser and a department talk to the instances the way they would behind the load
balancer, except that here each request is sent to the other instance than the one before, so
every step of a journey provably lands on a different process from the previous step.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from idp.audit.linker import link_pending
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
JWKS_MAX_AGE = 2


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
            # A key rotation shows in the JWKS served by nginx within seconds, not minutes.
            "IDP_JWKS_MAX_AGE": str(JWKS_MAX_AGE),
            # The load of the failure tests sends many unknown clients to /token.
            "IDP_ENDPOINT_IP_MAX_FAILURES": "1000000",
            "IDP_ENDPOINT_CLIENT_MAX_FAILURES": "1000000",
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
    # What `idp run-prod` does while it runs: restart an instance that dies.
    stack.supervision_log = []
    stack.supervisor = threading.Thread(
        target=stack.supervise, kwargs={"say": stack.supervision_log.append}, daemon=True
    )
    stack.supervisor.start()
    yield stack
    stack.stop()
    stack.supervisor.join(5)
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
    """The instances that wrote audit entries of these events (of this client), once chained
    (the instances' workers chain them every few seconds; this chains them now)."""
    query = db.select(AuditEntry.instance).where(AuditEntry.event.in_(events)).distinct()
    if client_id:
        query = query.where(AuditEntry.client_id == client_id)
    with data.app.app_context():
        link_pending()
        return set(db.session.scalars(query))


def test_the_load_balancer_shares_requests_round_robin_between_the_instances(stack):
    upstreams = []
    with httpx.Client(timeout=10) as http:
        for _ in range(8):
            response = http.get(stack.issuer_url() + "/sign-in")
            assert response.status_code == 200
            upstreams.append(response.headers["x-idp-upstream"])
        bodies = {
            http.get(i.url + "/.well-known/openid-configuration").content for i in stack.instances
        }
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
        statuses.append(browser.submit_sign_in(page, citizen["email"], WRONG).status_code)
    # Alone, each instance saw only half of the failures: together they lock the account.
    assert statuses == [400] * (MAX_FAILURES - 1) + [429, 429], statuses
    for _ in stack.instances:
        right = browser.submit_sign_in(page, citizen["email"], citizen["password"])
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


# -- Discovery and the JWKS from nginx's cache ---------------------------------------------------

DISCOVERY = "/.well-known/openid-configuration"


def served_by_instances(stack: ProductionStack, endpoint: str) -> float:
    """How many requests the IdP's processes answered at this endpoint (their metrics)."""
    total = 0.0
    with httpx.Client(timeout=10) as http:
        for instance in stack.instances:
            for line in http.get(instance.url + "/metrics").text.splitlines():
                if line.startswith("idp_request_duration_seconds_count") and (
                    f'endpoint="{endpoint}"' in line
                ):
                    total += float(line.rsplit(" ", 1)[1])
    return total


def test_discovery_is_answered_by_nginx_without_reaching_the_idp(stack):
    before = served_by_instances(stack, "discovery.openid_configuration")
    with httpx.Client(timeout=10, base_url=stack.issuer_url()) as http:
        answers = [http.get(DISCOVERY) for _ in range(20)]
        # A query string does not make a new entry (nor reach the IdP's processes).
        answers.append(http.get(DISCOVERY, params={"nocache": uuid.uuid4().hex}))
        etag = answers[-1].headers["etag"]
        not_modified = http.get(DISCOVERY, headers={"If-None-Match": etag})
    assert all(a.status_code == 200 for a in answers)
    assert len({a.content for a in answers}) == 1
    assert answers[0].json()["issuer"] == stack.issuer
    statuses = [a.headers["x-cache-status"] for a in answers]
    assert set(statuses[1:]) == {"HIT"}, statuses
    assert answers[-1].headers["cache-control"] == "public, max-age=3600"
    assert not_modified.status_code == 304
    assert not_modified.headers["x-cache-status"] == "HIT"
    # The IdP's processes saw one request at most (the first, unless an earlier test made it).
    assert served_by_instances(stack, "discovery.openid_configuration") - before <= 1


def test_errors_at_the_cached_paths_are_not_cached(stack):
    with httpx.Client(timeout=10, base_url=stack.issuer_url()) as http:
        for _ in range(2):
            refused = http.post("/jwks.json")
            assert refused.status_code == 405
            assert refused.headers.get("x-cache-status") in (None, "", "BYPASS")
        assert http.get("/jwks.json").status_code == 200


def published_kids(http: httpx.Client) -> tuple[set[str], str]:
    """The kids of the JWKS nginx serves, and whether it came from its cache."""
    response = http.get("/jwks.json")
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}, response.headers["x-cache-status"]


def test_a_rotated_key_is_served_by_nginx_within_the_max_age_before_it_signs(stack):
    from idp.oidc.jwks import longest_stale_jwks

    with httpx.Client(timeout=10, base_url=stack.issuer_url()) as http:
        response = http.get("/jwks.json")
        assert response.headers["cache-control"] == f"public, max-age={JWKS_MAX_AGE}"
        assert "age" not in response.headers  # so a department may keep it max-age more
        # From the cache, not the IdP's processes. A copy an earlier test left there may have
        # expired: nginx then answers from it (UPDATING) while it asks an instance for a fresh
        # one in the background, which takes a loaded machine longer than a few requests to
        # the cache; the fresh copy is a HIT for max-age.
        statuses: list[str] = []
        deadline = time.monotonic() + JWKS_MAX_AGE
        while "HIT" not in statuses and time.monotonic() < deadline:
            statuses.append(published_kids(http)[1])
            time.sleep(0.05)  # real time: nginx's background refresh
        assert "HIT" in statuses, statuses

        rotated = stack.idp("keys", "rotate").stdout
        # The ID-token keys (the identity-signing key is published in the DID document).
        new_kids = set(
            re.findall(r"(?:ES256|RS256): new key (\S+) is published now and signs from", rotated)
        )
        assert len(new_kids) == 2, rotated
        rotated_at = time.monotonic()
        while not new_kids <= published_kids(http)[0]:
            waited = time.monotonic() - rotated_at
            # An instance's copy, then nginx's, each at most max-age old (and the request).
            assert waited < longest_stale_jwks(JWKS_MAX_AGE) + 1, "the new keys never showed"
            time.sleep(0.2)  # real time: nginx's cache expires on its own clock
    # Published before they sign: every department that fetches the JWKS knows them first.
    listing = stack.idp("keys", "list").stdout
    for kid in new_kids:
        (line,) = [line for line in listing.splitlines() if kid in line]
        assert " waiting " in line, listing


# -- One instance's death is not the service's ---------------------------------------------------


class SteadyLoad:
    """A few clients sending requests through nginx as fast as they are answered: a page
    (GET, which nginx may retry on the other instance) and /token (POST, which it must not
    retry once sent). A failure is what a citizen or department would see: no answer, or a
    5xx."""

    def __init__(self, stack: ProductionStack, clients: int = 4):
        self.base = stack.issuer_url()
        self.clients = clients
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.answered = 0
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        token = {"grant_type": "authorization_code", "code": "x", "redirect_uri": "x"}
        with httpx.Client(timeout=30, base_url=self.base) as http:
            while not self.done.is_set():
                for method, path in (("GET", "/sign-in"), ("POST", "/token")):
                    try:
                        if method == "GET":
                            response = http.get(path)
                        else:
                            response = http.post(path, data=token, auth=("nobody", "wrong"))
                        failure = (
                            response.status_code >= 500
                            and f"{method} {path}: HTTP {response.status_code}"
                        )
                    except httpx.TransportError as exc:
                        failure = f"{method} {path}: {type(exc).__name__}"
                    with self.lock:
                        self.answered += 1
                        if failure:
                            self.failures.append(failure)

    def __enter__(self) -> SteadyLoad:
        self.started = time.monotonic()
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(30)
        self.duration = time.monotonic() - self.started

    @property
    def per_second(self) -> float:
        return self.answered / self.duration


def answers(url: str, timeout: float = 60) -> bool:
    """Whether url answers 200 within the timeout (a process starting)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # real time: a process starting
    return False


def back_again(stack: ProductionStack, instance, old_pid: int, timeout: float = 60) -> int:
    """Wait until the supervisor has started the instance again and it answers; its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = instance.process
        if process is not None and process.pid != old_pid and answers(instance.url + "/readyz"):
            return process.pid
        time.sleep(0.2)  # real time: a process starting
    raise AssertionError(f"{instance.name} did not come back: {stack.supervision_log}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_an_instance_killed_under_load_costs_less_than_a_seconds_requests(stack, sig):
    instance = stack.instances[0]
    old_pid = instance.process.pid
    nginx_pid = stack.nginx.pid
    with SteadyLoad(stack) as load:
        time.sleep(1)  # real time: the load runs
        os.kill(old_pid, sig)
        time.sleep(4)
    new_pid = back_again(stack, instance, old_pid)

    assert load.answered > 20, load.answered
    assert len(load.failures) < load.per_second, (load.answered, load.failures)
    assert new_pid != old_pid
    assert stack.supervisor.is_alive() and stack.nginx.pid == nginx_pid
    assert all(i.process is not None and i.process.poll() is None for i in stack.instances)
    log = "\n".join(stack.supervision_log)
    assert f"{instance.name} (pid {old_pid}) stopped" in log
    assert f"{instance.name} started again (pid {new_pid})" in log


def test_killing_busy_workers_on_both_instances_costs_only_their_requests(stack):
    """A dead worker is replaced in a moment while its siblings serve: nginx must not take
    its whole instance out of the rotation for it."""
    kills = 0
    with SteadyLoad(stack) as load:
        for round_ in range(8):
            time.sleep(0.5)  # real time: the load runs
            instance = stack.instances[round_ % 2]
            children = Path(f"/proc/{instance.process.pid}/task/{instance.process.pid}/children")
            workers = [int(p) for p in children.read_text().split()]
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                kills += 1
        time.sleep(1)
    assert kills >= 6
    assert load.answered > 20, load.answered
    # Each killed worker had at most one request in hand; a GET is retried elsewhere.
    assert len(load.failures) <= kills, (load.answered, load.failures)


def test_run_prod_restarts_a_killed_instance_and_stops_everything_on_its_own_sigterm(tmp_path):
    """`idp run-prod` itself: an instance killed outright (SIGKILL) is started again while
    the launcher and nginx keep running; the launcher's own SIGTERM stops every process."""
    import subprocess
    import sys

    from idp.operations.production import port_in_use

    nginx_or_skip()
    redis = redis_or_skip()
    database_url = _postgres_or_skip()
    prefix = f"idp:test:{uuid.uuid4().hex[:8]}:"
    port, ports = free_port(), (free_port(), free_port())
    env = {
        **os.environ,
        "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": REDIS_URL,
        "IDP_THROTTLE_REDIS_PREFIX": prefix,
        "IDP_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("IDP_ISSUER", None)
    output = tmp_path / "run-prod.log"
    command = [sys.executable, "-m", "idp.cli", "run-prod", "--port", str(port)]
    command += ["--instance-ports", ",".join(map(str, ports)), "--workers", "1"]
    command += ["--run-dir", str(tmp_path / "run")]
    with output.open("wb") as log:
        launcher = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603

    def wait_for(pattern: str, timeout: float = 90) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, output.read_text())
            if found:
                return found
            assert launcher.poll() is None, output.read_text()
            time.sleep(0.2)  # real time: processes starting
        raise AssertionError(f"no {pattern!r} in: {output.read_text()}")

    try:
        old_pid = int(wait_for(r"idp-a: \S+ \(\S+, 1 workers x \d+ threads, pid (\d+)\)").group(1))
        wait_for("Ctrl-C")
        os.kill(old_pid, signal.SIGKILL)
        new_pid = int(wait_for(r"idp-a started again \(pid (\d+)\)").group(1))
        assert f"idp-a (pid {old_pid}) stopped (killed by SIGKILL)" in output.read_text()
        assert answers(f"http://127.0.0.1:{ports[0]}/readyz"), "the new idp-a is not ready"
        assert new_pid != old_pid and launcher.poll() is None
        assert httpx.get(f"http://127.0.0.1:{port}/sign-in", timeout=10).status_code == 200

        launcher.send_signal(signal.SIGTERM)
        assert launcher.wait(60) == 0, output.read_text()
        assert not any(port_in_use("127.0.0.1", p) for p in (port, *ports))
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        forget_redis_keys(redis, prefix)
        _drop_postgres(database_url)

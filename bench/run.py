"""`make bench`: the IdP started the production way (nginx round-robin over two instances,
granian by default, on PostgreSQL and Redis: idp/operations/production.py) and driven by a
load generator in another process (bench/loadgen.py), against the ceiling of a bare Flask app
on the same stack and against a peer, node-oidc-provider in a node cluster on Redis
(bench/peer.py, bench/node).

    python -m bench.run [--quick] [--seconds S] [--scale] [--workers N] [--concurrency N]
                        [--no-peer] [--servers [SERVER:WORKERS[xTHREADS],...]]

Writes bench/results/<date>-<host>.json and .md with the machine's description, and prints the
table. --scale then seeds 1,000,000 citizens and 10,000,000 audit entries (`idp seed`) and
measures sign-in, the returning journey and the auditor's filtered first page again.
--servers instead measures the journey, refresh and discovery under each WSGI server
(IDP_SERVER: granian, gunicorn-sync, gunicorn-gthread) and worker count, into
<date>-<host>-servers.md.
The benchmark database (IDP_BENCH_DATABASE_URL, default .../idp_bench) is dropped first.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import re
import secrets
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pyotp

from bench.forms import CSRF, follow, submit
from bench.loadgen import authorization_query, summary
from bench.peer import NODE_DIR, NodePeer, PeerError
from idp.operations.production import DEFAULT_THREADS, SERVERS, ProductionStack
from idp.settings import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "bench" / "results"
DATABASE_URL = os.environ.get(
    "IDP_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/idp_bench"
)
REDIS_URL = os.environ.get("IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "benchmark citizen passphrase 2026"
STAFF_PASSWORD = "benchmark auditor passphrase 2026"
REDIRECT_URI = "https://bench.example.gov.uk/callback"

TARGETS = {
    "journey": ("at least 400 journeys/s", lambda r, c: r["per_second"] >= 400),
    "token": ("at least 50% of the ceiling", lambda r, c: r["per_second"] >= 0.5 * c),
    "refresh": ("at least 50% of the ceiling", lambda r, c: r["per_second"] >= 0.5 * c),
    "discovery": ("at least 80% of the ceiling", lambda r, c: r["per_second"] >= 0.8 * c),
    "jwks": ("at least 80% of the ceiling", lambda r, c: r["per_second"] >= 0.8 * c),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the machine ----------------------------------------------------------------------------


def command_version(*command: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""
    )


def describe_machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": command_version("psql", "--version"),
        "redis": command_version("redis-server", "--version"),
        "nginx": command_version("nginx", "-v"),
        "gunicorn": command_version(sys.executable, "-m", "gunicorn", "--version"),
        "node": command_version("node", "--version"),
        "oidc-provider": peer_version(),
    }


def peer_version() -> str:
    """node-oidc-provider's version, as bench/node/package-lock.json pins it."""
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    return lock["packages"]["node_modules/oidc-provider"]["version"]


def argon2_cost(settings) -> dict:
    """The password hash's parameters and the time one hash takes here (median of 15)."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )
    times = []
    for _ in range(15):
        start = time.perf_counter()
        hasher.hash(PASSWORD)
        times.append(time.perf_counter() - start)
    return {
        "algorithm": "argon2id",
        "time_cost": settings.argon2_time_cost,
        "memory_cost_kib": settings.argon2_memory_cost,
        "parallelism": settings.argon2_parallelism,
        "one_hash_ms": round(statistics.median(times) * 1000, 1),
    }


# -- the database ---------------------------------------------------------------------------


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


# -- setting up the virtual users, over HTTP as a browser would -------------------------------


def create_people(app, users: int) -> tuple[dict, list[dict], dict]:
    """The benchmark department, citizens with an authenticator app and consent, an auditor."""
    from idp.accounts.citizens import create_citizen
    from idp.accounts.second_factor.logic import begin_totp_enrolment, totp_credential
    from idp.departments.services import register_client
    from idp.extensions import db
    from idp.models import Consent
    from idp.models.timestamps import utcnow
    from idp.staff.accounts import begin_staff_totp_enrolment, create_staff

    client = {
        "client_id": "bench-department",
        "client_secret": secrets.token_urlsafe(32),
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email",
    }
    with app.app_context():
        register_client(
            client["client_id"],
            {
                "client_name": "Load test department",
                "redirect_uris": [REDIRECT_URI],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid email",
            },
            client["client_secret"],
        )
        people = []
        for i in range(users):
            email = f"bench-{i:04d}@example.gov.uk"
            citizen = create_citizen(email, PASSWORD, email_verified=True)
            secret = begin_totp_enrolment(citizen)
            totp_credential(citizen).confirmed_at = utcnow()  # as the demo citizen's: no code used
            db.session.add(
                Consent(citizen_id=citizen.id, client_id=client["client_id"], scope="openid email")
            )
            db.session.commit()
            people.append({"id": citizen.id, "email": email, "password": PASSWORD, "totp": secret})
        member = create_staff("bench.auditor@example.gov.uk", STAFF_PASSWORD, "auditor")
        staff_secret = begin_staff_totp_enrolment(member)
        member.totp_confirmed_at = utcnow()
        db.session.commit()
    auditor = {"email": "bench.auditor@example.gov.uk", "totp": staff_secret}
    return client, people, auditor


def sign_in_user(base: str, client: dict, person: dict) -> dict:
    """Sign a citizen in over HTTP (password, then the app's code): their session cookie, a
    refresh token, and a fresh password page's CSRF token for the sign-in scenario."""
    http = httpx.Client(timeout=30, follow_redirects=False)
    verifier, query = authorization_query(client)
    page = follow(http, http.get(f"{base}/authorize?{query}"), base)
    page = follow(http, submit(http, page, {"email": person["email"]}), base)
    page = follow(http, submit(http, page, {"password": person["password"]}), base)
    page = follow(http, submit(http, page, {"code": pyotp.TOTP(person["totp"]).now()}), base)
    location = page.headers.get("location", "")
    code = parse_qs(urlsplit(location).query).get("code")
    if not code:
        raise SystemExit(
            f"setting up {person['email']}: no code ({page.status_code} {page.text[:300]})"
        )
    tokens = httpx.post(
        f"{base}/token",
        data={
            "grant_type": "authorization_code",
            "code": code[0],
            "redirect_uri": client["redirect_uri"],
            "code_verifier": verifier,
        },
        auth=(client["client_id"], client["client_secret"]),
    ).json()
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    # The sign-in scenario times the password page: this browser has typed its address on the
    # page before (kept in its session cookie), as a citizen has when the password is checked.
    fresh = httpx.Client(timeout=30, follow_redirects=False)
    form = follow(
        fresh, submit(fresh, fresh.get(f"{base}/sign-in"), {"email": person["email"]}), base
    )
    return {
        "email": person["email"],
        "password": person["password"],
        "cookie": cookie,
        "refresh_token": tokens["refresh_token"],
        "csrf_token": html.unescape(CSRF.search(form.text).group(1)),
        "csrf_cookie": "; ".join(f"{n}={v}" for n, v in fresh.cookies.items()),
    }


def auditor_browser(base: str, auditor: dict) -> httpx.Client:
    http = httpx.Client(timeout=60, follow_redirects=False)
    page = http.get(f"{base}/staff/sign-in")
    step = follow(
        http, submit(http, page, {"email": auditor["email"], "password": STAFF_PASSWORD}), base
    )
    done = submit(http, step, {"code": pyotp.TOTP(auditor["totp"]).now()})
    if done.status_code != 303 or "second-factor" in done.headers.get("location", ""):
        raise SystemExit(
            f"the benchmark auditor could not sign in: {done.status_code}"
            f" {done.headers.get('location')} {step.url} {done.text[:500]}"
        )
    return http


def auditor_first_page(http: httpx.Client, base: str, citizen_id: int, rounds: int) -> dict:
    """The auditor's first page filtered by citizen and event, loaded again and again."""
    times = []
    query = urlencode({"citizen": citizen_id, "event": "sign_in.succeeded"})
    for _ in range(rounds):
        start = time.perf_counter()
        page = http.get(f"{base}/staff/audit?{query}")
        times.append(time.perf_counter() - start)
        if page.status_code != 200:
            raise SystemExit(f"auditor page: {page.status_code} {page.text[:300]}")
    result = summary(times)
    result["per_second"] = round(len(times) / sum(times), 1)
    return result


# -- running the load generator -----------------------------------------------------------------


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    return total


def load(
    scenario: str,
    url: str,
    run_dir: Path,
    *,
    concurrency: int,
    duration: float,
    warmup: float = 3.0,
    state: dict | None = None,
    watch: ProductionStack | NodePeer | None = None,
    profile: bool = False,
) -> dict:
    """Run the load generator in its own process and read what it measured. watch (ours or
    the peer) is whose worker processes' memory is measured."""
    out = run_dir / f"{scenario}.json"
    state_file = run_dir / "state.json"  # client secret, cookies, tokens: owner only
    fd = os.open(state_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(state or {}))
    command = [
        sys.executable, "-m", "bench.loadgen", scenario, "--url", url,
        "--concurrency", str(concurrency), "--duration", str(duration),
        "--warmup", str(warmup), "--state", str(state_file), "--out", str(out),
    ]  # fmt: skip
    memory = {}
    process = subprocess.Popen(command, cwd=PROJECT_ROOT)  # noqa: S603
    profilers = []
    if profile and isinstance(watch, ProductionStack):
        profilers = start_profilers(watch, scenario, warmup + duration, run_dir)
    if watch is not None:
        pids = watch.worker_pids()
        time.sleep(warmup + 1)
        memory["start_kib"] = rss_kib(pids)
    process.wait()
    if process.returncode != 0:
        raise SystemExit(f"the load generator failed on {scenario}")
    if profilers:
        summarise_profiles(profilers, scenario)
    result = json.loads(out.read_text())
    # Refresh tokens rotate: the state keeps the live ones for the next run (never the results).
    live = result.pop("refresh_tokens", [])
    for user, token in zip((state or {}).get("users", [])[: len(live)], live, strict=True):
        user["refresh_token"] = token
    if watch is not None:
        memory["end_kib"] = rss_kib(pids)
        memory["growth_percent"] = round(
            100 * (memory["end_kib"] - memory["start_kib"]) / max(1, memory["start_kib"]), 2
        )
        result["rss"] = memory
    log(
        f"{scenario}: {result['per_second']}/s, p50 {result['p50_ms']} ms,"
        f" p99 {result['p99_ms']} ms,"
        f" {result['error_count']} errors"
    )
    return result


def start_profilers(stack: ProductionStack, scenario: str, seconds: float, run_dir: Path) -> list:
    """py-spy sampling every worker of every instance while the scenario runs."""
    profilers = []
    for instance in stack.instances:
        out = run_dir / f"profile-{scenario}-{instance.name}.txt"
        command = [
            str(Path(sys.executable).with_name("py-spy")), "record",
            "--pid", str(instance.process.pid),
            "--subprocesses", "--duration", str(int(seconds)), "--rate", "200",
            "--format", "raw", "--output", str(out), "--nonblocking",
        ]  # fmt: skip
        try:
            profilers.append(
                (
                    subprocess.Popen(  # noqa: S603 - a fixed command
                        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                    ),
                    out,
                )
            )  # noqa: S603, E501
        except FileNotFoundError:
            log("py-spy is not installed: pip install py-spy")
    return profilers


def summarise_profiles(profilers: list, scenario: str, top: int = 30) -> None:
    """The functions that took the most of the workers' time (inclusive), from py-spy's stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for process, out in profilers:
        process.wait(60)
        if not out.exists():
            continue
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frames = [re.sub(r" \(/.*/(site-packages|main)/", " (", f) for f in stack.split(";")]
            if any(
                "idp-worker" in f or "idp-logout" in f or "wait (threading" in f for f in frames
            ):
                continue  # the background worker's thread, idle
            n = int(count)
            total += n
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + n
            own[frames[-1]] = own.get(frames[-1], 0) + n
    lines = [f"py-spy, {scenario}: {total} samples of request handling across all workers", ""]
    lines.append("inclusive (the function and what it called):")
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / max(1, total):5.1f}%  {frame}")
    lines += ["", "own time:"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / max(1, total):5.1f}%  {frame}")
    path = RESULTS / f"profile-{scenario}.txt"
    path.write_text("\n".join(lines) + "\n")
    log(f"profile of {scenario} written to bench/results/{path.name}")


# -- the report ---------------------------------------------------------------------------------


def report(data: dict) -> str:
    ceiling = data["results"]["ceiling"]["per_second"]
    lines = [
        f"# Benchmark {data['when']}",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in data["machine"].items()],
        "",
        "## Setup",
        "",
        *[f"- {k}: {v}" for k, v in data["setup"].items()],
        "",
        "## Results (small data)",
        "",
        "| scenario | per second | p50 ms | p99 ms | errors | ratio to ceiling | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, result in data["results"].items():
        ratio = result["per_second"] / ceiling if ceiling else 0
        target, check = TARGETS.get(name, ("", None))
        met = "" if check is None else ("yes" if check(result, ceiling) else "**no**")
        lines.append(
            f"| {name} | {result['per_second']} | {result['p50_ms']} | {result['p99_ms']} |"
            f" {result['error_count']} | {ratio:.2f} | {target} | {met} |"
        )
    journey = data["results"].get("journey", {})
    if journey.get("steps"):
        lines += ["", "Journey steps (each a request): "]
        for step, s in journey["steps"].items():
            lines.append(f"- {step}: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms")
    if "rss" in journey:
        rss = journey["rss"]
        met = "yes" if rss["growth_percent"] < 5 else "**no**"
        lines += [
            "",
            f"Memory across the {data['setup']['journey_seconds']} s journey run (all the"
            f" instances' workers): {rss['start_kib']} KiB -> {rss['end_kib']} KiB,"
            f" {rss['growth_percent']}% (target under 5%: {met})",
        ]
    a = data["argon2"]
    lines += [
        "",
        f"Password sign-in is dominated by {a['algorithm']} (t={a['time_cost']},"
        f" m={a['memory_cost_kib']} KiB, p={a['parallelism']}): one hash takes"
        f" {a['one_hash_ms']} ms here, so {data['machine']['cores']} cores can do at most about"
        f" {round(1000 * data['machine']['cores'] / a['one_hash_ms'])} sign-ins/s.",
    ]
    if "auditor_page" in data:
        p = data["auditor_page"]
        lines += ["", f"Auditor's filtered first page: p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms."]
    if "scale" in data:
        lines += ["", "## Small data against big data", ""]
        lines += ["| figure | small | big | change | within 20% |", "|---|---|---|---|---|"]
        for name, pair in data["scale"]["compare"].items():
            change = (pair["big"] - pair["small"]) / pair["small"] * 100 if pair["small"] else 0
            ok = "yes" if abs(change) <= 20 else "**no**"
            lines.append(f"| {name} | {pair['small']} | {pair['big']} | {change:+.1f}% | {ok} |")
        lines += ["", f"Seeding: {data['scale']['seed_summary']}"]
    lines += peer_table(data)
    if data.get("notes"):
        lines += ["", "## What limits it", "", data["notes"]]
    return "\n".join(lines) + "\n"


# -- the scenarios, on ours, on the peer and under each server --------------------------------

SCENARIOS = ("discovery", "jwks", "journey", "token", "refresh", "sign_in")
# node-oidc-provider has no password sign-in page of its own to compare with ours.
PEER_SCENARIOS = ("discovery", "jwks", "journey", "token", "refresh")
SERVER_SCENARIOS = ("journey", "refresh", "discovery")
DEFAULT_SERVERS = (
    "gunicorn-sync:2,gunicorn-sync:3,gunicorn-gthread:2x4,granian:2x2,granian:1x4,granian:2x1"
)


def run_scenarios(measure, names, state: dict, journey_duration: float) -> dict:
    """Measure each named scenario in turn with measure(name, **load's options)."""
    results = {}
    for name in names:
        if name == "journey":
            results[name] = measure("journey", duration=journey_duration, state=state)
        elif name == "token":  # codes minted first, then redeemed as fast as they go
            codes = measure("mint", warmup=0, state=state).pop("minted")
            results[name] = measure(
                "token", duration_factor=2, warmup=0, state={**state, "codes": codes}
            )
        elif name in ("refresh", "sign_in"):
            results[name] = measure(name, state=state)
        else:
            results[name] = measure(name)
    return results


def measure_peer(
    client: dict,
    people: list[dict],
    run_dir: Path,
    concurrency: int,
    names,
    duration: float,
    journey_duration: float,
) -> dict:
    """The same scenarios against node-oidc-provider's cluster (bench/peer.py), its citizens
    signed in through its own pages first."""
    peer = NodePeer(redis_url=REDIS_URL, client=client, log_dir=run_dir / "logs")
    log(
        f"starting the peer: node-oidc-provider {peer_version()},"
        f" {peer.workers} node workers, Redis"
    )
    with peer:
        peer.add_accounts(people)
        users = []
        for person in people:
            signed = peer.sign_in(person)
            signed.pop("tokens")
            users.append(signed)
        log(f"{len(users)} citizens signed in to the peer")
        state = {"client": client, "users": users}

        def measure(name: str, duration_factor: float = 1, **kw) -> dict:
            kw.setdefault("duration", duration * duration_factor)
            return load(name, peer.issuer_url(), run_dir, concurrency=concurrency, watch=peer, **kw)

        results = run_scenarios(measure, names, state, journey_duration)
    return {"workers": peer.workers, "results": results}


def parse_servers(text: str) -> list[dict]:
    """Parse "gunicorn-sync:3,gunicorn-gthread:2x4,granian:3": the server, its worker
    processes per instance and threads per worker (the server's default: DEFAULT_THREADS)."""
    choices = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        server, _, size = item.partition(":")
        workers, _, threads = (size or "3").partition("x")
        if server not in SERVERS or not workers.isdigit() or not (threads or "1").isdigit():
            raise SystemExit(
                f"--servers: {item!r} is not SERVER:WORKERS[xTHREADS],"
                f" SERVER one of {', '.join(SERVERS)}"
            )
        threads = int(threads or DEFAULT_THREADS[server])
        choices.append(
            {"label": item, "server": server, "workers": int(workers), "threads": threads}
        )
    return choices


def compare_servers(
    args, choices: list[dict], run_dir: Path, duration: float, journey_duration: float
) -> list[dict]:
    """The journey, refresh and discovery under each WSGI server and worker count: the stack is
    started again for each, on the same database, citizens and live sessions."""
    import importlib.util

    rows = []
    state = None
    for choice in choices:
        if choice["server"] == "granian" and importlib.util.find_spec("granian") is None:
            log(f"{choice['label']}: skipped, granian is not installed (pip install -e '.[bench]')")
            continue
        stack = ProductionStack(
            database_url=DATABASE_URL,
            redis_url=REDIS_URL,
            run_dir=run_dir / "idp",
            workers=choice["workers"],
            threads=choice["threads"],
            log_dir=run_dir / "logs",
            settings_env={
                "IDP_AUTHORIZATION_CODE_LIFETIME": "600",
                "IDP_THROTTLE_REDIS_PREFIX": "idp:bench:",
                "IDP_SERVER": choice["server"],
            },
        )
        log(
            f"starting the IdP under {choice['label']} ({choice['workers']} workers"
            f" per instance, {choice['threads']} threads each)"
        )
        stack.start(timeout=120)
        try:
            base = stack.issuer_url()
            if state is None:
                client, people, _ = create_people(stack.local_app(), args.concurrency)
                state = {"client": client, "users": [sign_in_user(base, client, p) for p in people]}

            def measure(
                name: str, duration_factor: float = 1, stack=stack, base=base, **kw
            ) -> dict:
                kw.setdefault("duration", duration * duration_factor)
                return load(name, base, run_dir, concurrency=args.concurrency, watch=stack, **kw)

            results = run_scenarios(measure, SERVER_SCENARIOS, state, journey_duration)
        finally:
            stack.stop()
        rows.append({**choice, "results": results})
    return rows


def servers_report(data: dict) -> str:
    """The server comparison's table, and which did best on the journey."""
    ceiling = data["ceiling"]["per_second"]
    lines = [
        f"# WSGI servers {data['when']}",
        "",
        *[f"- {k}: {v}" for k, v in data["machine"].items()],
        "",
        f"Two instances behind nginx, {data['concurrency']} virtual users,"
        f" {data['scenario_seconds']} s per scenario ({data['journey_seconds']} s for the"
        f" journey). The ceiling: {ceiling}/s.",
        "",
        "| server | workers per instance | threads | journey/s | journey p50 ms | journey p99 ms"
        " | refresh/s | discovery/s | discovery ratio to ceiling | errors | memory MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in data["servers"]:
        r = row["results"]
        errors = sum(x["error_count"] for x in r.values())
        rss = r["journey"].get("rss", {}).get("end_kib", 0)
        lines.append(
            f"| {row['server']} | {row['workers']} | {row['threads']}"
            f" | {r['journey']['per_second']} | {r['journey']['p50_ms']}"
            f" | {r['journey']['p99_ms']} | {r['refresh']['per_second']}"
            f" | {r['discovery']['per_second']} | {r['discovery']['per_second'] / ceiling:.2f}"
            f" | {errors} | {round(rss / 1024)} |"
        )
    if data["servers"]:
        best = max(data["servers"], key=lambda row: row["results"]["journey"]["per_second"])
        lines += [
            "",
            f"Best on the journey: {best['label']} ({best['results']['journey']['per_second']}/s).",
        ]
    return "\n".join(lines) + "\n"


def peer_table(data: dict) -> list[str]:
    """Ours against node-oidc-provider, each beside the ceiling."""
    peer = data.get("peer")
    if not peer:
        return []
    ceiling = data["results"]["ceiling"]["per_second"]
    lines = [
        "",
        f"## Against node-oidc-provider {data['machine'].get('oidc-provider', '')}",
        "",
        f"The peer: node-oidc-provider in a node cluster of {peer['workers']} workers on one Redis"
        " (bench/node), one department set up as ours; the same load generator and scenarios."
        " Ratio: ours divided by the peer.",
        "",
        "| scenario | ours /s | peer /s | ratio to peer | ours p50 ms | peer p50 ms"
        " | ceiling /s | ours to ceiling | peer to ceiling | peer errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ours in data["results"].items():
        theirs = peer["results"].get(name)
        if name == "ceiling" or theirs is None:
            continue
        ratio = ours["per_second"] / theirs["per_second"] if theirs["per_second"] else 0
        lines.append(
            f"| {name} | {ours['per_second']} | {theirs['per_second']} | {ratio:.2f}"
            f" | {ours['p50_ms']} | {theirs['p50_ms']} | {ceiling}"
            f" | {ours['per_second'] / ceiling:.2f} | {theirs['per_second'] / ceiling:.2f}"
            f" | {theirs['error_count']} |"
        )
    return lines


def write_results(stem: str, data: dict, text: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(text)
    print()
    print(text)
    log(f"written to bench/results/{stem}.md and .json")


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the IdP the production way.")
    parser.add_argument("--quick", action="store_true", help="a few seconds per scenario")
    parser.add_argument("--seconds", type=float, help="seconds per scenario (the journey's 3x)")
    parser.add_argument("--scale", action="store_true", help="also seed 1M citizens, 10M entries")
    # What `make run-prod` runs unless told otherwise: 2 workers, the server's threads (0).
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 0)))
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--citizens", type=int, default=1_000_000)
    parser.add_argument("--audit-entries", type=int, default=10_000_000)
    parser.add_argument("--only", default="", help="comma-separated scenarios (a quick look)")
    parser.add_argument("--profile", default="", help="comma-separated scenarios to profile")
    parser.add_argument("--no-peer", action="store_true", help="leave node-oidc-provider out")
    parser.add_argument(
        "--servers",
        nargs="?",
        const=DEFAULT_SERVERS,
        help="compare WSGI servers instead: SERVER:WORKERS[xTHREADS],... (SERVER one of"
        f" {', '.join(SERVERS)}; default {DEFAULT_SERVERS})",
    )
    args = parser.parse_args()
    duration = args.seconds or (4.0 if args.quick else 20.0)
    journey_duration = 3 * args.seconds if args.seconds else (6.0 if args.quick else 60.0)
    only = set(filter(None, args.only.split(",")))
    profiled = set(filter(None, args.profile.split(",")))
    names = [name for name in SCENARIOS if not only or name in only]
    choices = parse_servers(args.servers) if args.servers else []

    run_dir = PROJECT_ROOT / "instance" / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    log(f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB")
    common = dict(
        database_url=DATABASE_URL,
        redis_url=REDIS_URL,
        workers=args.workers,
        threads=args.threads,
        log_dir=run_dir / "logs",
    )
    results: dict[str, dict] = {}
    log("ceiling: a bare Flask app signing one ES256 JWT per request, on the same stack")
    recreate_database(DATABASE_URL)
    with ProductionStack(
        run_dir=run_dir / "ceiling", wsgi_app="bench.ceiling:app", **common
    ) as ceiling:
        results["ceiling"] = load(
            "ceiling",
            ceiling.issuer_url(),
            run_dir,
            concurrency=args.concurrency,
            duration=duration,
        )
    when = datetime.now(UTC)
    stem = f"{when.strftime('%Y-%m-%d-%H%M')}-{machine['host']}" + ("-quick" if args.quick else "")

    if choices:
        rows = compare_servers(args, choices, run_dir, duration, journey_duration)
        data = {
            "when": when.strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine,
            "ceiling": results["ceiling"],
            "concurrency": args.concurrency,
            "scenario_seconds": duration,
            "journey_seconds": journey_duration,
            "servers": rows,
        }
        write_results(stem + "-servers", data, servers_report(data))
        return

    stack = ProductionStack(
        run_dir=run_dir / "idp",
        settings_env={
            # Codes are minted for the token scenario before they are redeemed.
            "IDP_AUTHORIZATION_CODE_LIFETIME": "600",
            "IDP_THROTTLE_REDIS_PREFIX": "idp:bench:",
        },
        **common,
    )
    log(f"starting the IdP: nginx, two {stack.server()} instances, PostgreSQL, Redis")
    stack.start(timeout=120)
    try:
        app = stack.local_app()
        client, people, auditor = create_people(app, args.concurrency)
        base = stack.issuer_url()
        users = [sign_in_user(base, client, person) for person in people]
        state = {"client": client, "users": users}
        log(f"{len(users)} citizens signed in, each with a live session and a refresh token")

        def measure(name: str, duration_factor: float = 1, **kw) -> dict:
            kw.setdefault("duration", duration * duration_factor)
            return load(
                name,
                base,
                run_dir,
                concurrency=args.concurrency,
                watch=stack,
                profile=name in profiled,
                **kw,
            )

        results.update(run_scenarios(measure, names, state, journey_duration))
        auditor_http = auditor_browser(base, auditor)
        rounds = 10 if args.quick else 50
        auditor_page = auditor_first_page(auditor_http, base, people[0]["id"], rounds)
        scale = None
        if args.scale:
            scale = measure_at_scale(
                args,
                stack,
                measure,
                small={
                    "results": results,
                    "auditor_page": auditor_page,
                    "state": state,
                    "journey_seconds": journey_duration,
                },
                auditor_page=lambda: auditor_first_page(
                    auditor_http, base, people[0]["id"], rounds
                ),
            )
    finally:
        stack.stop()

    peer, peer_failure = None, "left out (--no-peer)"
    if not args.no_peer:
        peer_names = [name for name in names if name in PEER_SCENARIOS]
        try:
            peer = measure_peer(
                client, people, run_dir, args.concurrency, peer_names, duration, journey_duration
            )
        except (PeerError, httpx.HTTPError) as exc:
            # Ours has been measured by now: keep its figures, and say why the peer's are missing.
            log(f"the peer, node-oidc-provider, could not run: {exc}")
            peer_failure = str(exc)

    with app.app_context():
        settings = app.config["IDP_SETTINGS"]
    data = {
        "when": when.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine,
        "setup": {
            "stack": f"nginx (1 worker, round-robin) -> 2 IdP instances ({stack.server()})",
            "workers_per_instance": args.workers,
            "threads_per_worker": stack.worker_threads(),
            "database": "PostgreSQL (one database for both instances)",
            "redis": "throttling counters",
            "load_generator": f"bench/loadgen.py (aiohttp, one process),"
            f" {args.concurrency} virtual users, closed loop",
            "scenario_seconds": duration,
            "journey_seconds": journey_duration,
            "mode": "quick" if args.quick else "full",
            "peer": peer_failure
            if peer is None
            else f"node-oidc-provider {machine['oidc-provider']}, node cluster of"
            f" {peer['workers']} workers, Redis (bench/node)",
        },
        "results": results,
        "argon2": argon2_cost(settings),
        "auditor_page": auditor_page,
        "notes": (PROJECT_ROOT / "bench" / "NOTES.md").read_text()
        if (PROJECT_ROOT / "bench" / "NOTES.md").exists()
        else "",
    }
    if peer:
        data["peer"] = peer
    if scale:
        data["scale"] = scale
    write_results(stem, data, report(data))


def measure_at_scale(args, stack: ProductionStack, measure, small: dict, auditor_page) -> dict:
    """Seed a million citizens and ten million audit entries, and measure again."""
    # Seeded with the IdP stopped, as a database would be loaded before a release: the
    # workers would otherwise check the millions of new entries for their next checkpoint
    # while the big-data figures are measured. The citizens' sessions are stored, so they
    # are still signed in when it starts again.
    stack.stop()
    log(f"seeding {args.citizens} citizens and {args.audit_entries} audit entries (idp seed)")
    started = time.perf_counter()
    seeded = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "idp.cli", "seed", "--citizens", str(args.citizens),
         "--audit-entries", str(args.audit_entries)],
        env=stack.environment(), cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if seeded.returncode != 0:
        raise SystemExit("seeding failed")
    seconds = time.perf_counter() - started
    log(f"seeded in {seconds:.0f} s; starting the IdP again")
    stack.start(timeout=120)
    big = {
        "journey": measure("journey", duration=small["journey_seconds"] / 2, state=small["state"]),
        "sign_in": measure("sign_in", state=small["state"]),
    }
    big_page = auditor_page()
    compare = {}
    results = small["results"]
    for name in ("journey", "sign_in"):
        if name in results:
            compare[f"{name} per second"] = {
                "small": results[name]["per_second"],
                "big": big[name]["per_second"],
            }
            compare[f"{name} p50 ms"] = {
                "small": results[name]["p50_ms"],
                "big": big[name]["p50_ms"],
            }
    compare["auditor first page p50 ms"] = {
        "small": small["auditor_page"]["p50_ms"],
        "big": big_page["p50_ms"],
    }
    return {
        "compare": compare,
        "big_results": big,
        "big_auditor_page": big_page,
        "seed_summary": f"{args.citizens} citizens and {args.audit_entries} entries"
        f" in {seconds:.0f} s"
        f" ({seeded.stdout.strip().splitlines()[-1] if seeded.stdout.strip() else ''})",
    }


if __name__ == "__main__":
    main()

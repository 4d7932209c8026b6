"""Statements and CPU per request on the hot path, in one process (`make bench-statements`).

Serves the IdP in this process (waitress, one thread, so each request runs on one thread) on a
fresh SQLite file or PostgreSQL database, signs the bench citizens in over HTTP as the load
generator does, then runs journeys (authorize with a live session, token, userinfo) and
refreshes, and counts, per endpoint, the SQL statements the IdP sent and the CPU time the
request's thread used. Neither count depends on how busy the machine is, so figures from before
and after a change compare, which timings under load on a shared machine do not.

    python -m bench.statements [--database postgresql://...] [--rounds 200]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import tempfile
import threading
import time
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import event

from bench.loadgen import authorization_query
from bench.run import create_people, sign_in_user

HOT_PATHS = ("/authorize", "/token", "/userinfo")


class Counter:
    """Statements and thread CPU per (endpoint, what it was asked) while counting is on."""

    def __init__(self) -> None:
        self.statements: dict[str, int] = defaultdict(int)
        self.cpu: dict[str, float] = defaultdict(float)
        self.requests: dict[str, int] = defaultdict(int)
        self.on = False
        self.local = threading.local()
        self.shown: dict[str, list[str]] = defaultdict(list)
        self.show = ""
        # With --profile, one profile per endpoint (for its function calls per request).
        self.profiling = False
        self.profiles: dict[str, cProfile.Profile] = {}

    def wrap(self, wsgi_app):
        """Time each request's thread CPU and name it for the statements it sends."""

        def counted(environ, start_response):
            label = environ.get("PATH_INFO", "")
            if label == "/token":
                label = (
                    "/token (refresh)"
                    if "bench-refresh" in environ.get("QUERY_STRING", "")
                    else label
                )
            self.local.label = label
            started = time.thread_time()
            profile = None
            if self.on and self.profiling:
                profile = self.profiles.setdefault(label, cProfile.Profile())
                profile.enable()
            try:
                return list(wsgi_app(environ, start_response))
            finally:
                if profile is not None:
                    profile.disable()
                if self.on:
                    self.cpu[label] += time.thread_time() - started
                    self.requests[label] += 1
                self.local.label = None

        return counted

    def listen(self, engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _count(conn, cursor, statement, parameters, context, executemany):  # noqa: ARG001
            label = getattr(self.local, "label", None)
            if self.on and label:
                self.statements[label] += 1
                if label == self.show and self.requests[label] == 1:
                    self.shown[label].append(" ".join(statement.split())[:300])

    def table(self) -> dict:
        per = {}
        for label in sorted(self.requests):
            count = self.requests[label]
            per[label] = {
                "requests": count,
                "statements_per_request": round(self.statements[label] / count, 2),
                "cpu_ms_per_request": round(1000 * self.cpu[label] / count, 2),
            }
            if label in self.profiles:
                # Python function calls: a measure of work that a busy machine does not blur.
                calls = pstats.Stats(self.profiles[label]).total_calls
                per[label]["function_calls_per_request"] = round(calls / count)
        return per


def serve(database_url: str, instance: str, counter: Counter):
    """The IdP on a free port, as the tests serve it, with the counter wrapped round it."""
    from flask_migrate import upgrade
    from waitress import create_server

    from idp import create_app
    from idp.extensions import db
    from idp.oidc.keys import ensure_signing_keys
    from idp.settings import load_settings

    server = create_server(lambda e, s: app.wsgi_app(e, s), host="127.0.0.1", port=0, threads=1)
    port = server.effective_port
    settings = load_settings(
        config_file=os.devnull,
        issuer=f"http://127.0.0.1:{port}",
        port=port,
        database_url=database_url,
        instance_path=instance,
        departments_file="",
        log_level="WARNING",
        endpoint_ip_max_failures=1_000_000,
        endpoint_client_max_failures=1_000_000,
    )
    app = create_app(settings)
    with app.app_context():
        upgrade()
        ensure_signing_keys()
        counter.listen(db.engine)
    app.wsgi_app = counter.wrap(app.wsgi_app)
    threading.Thread(target=server.run, daemon=True).start()
    return app, server, f"http://127.0.0.1:{port}"


def journeys(base: str, client: dict, users: list[dict], rounds: int) -> None:
    """Authorize with a live session, redeem the code, read userinfo; then refresh."""
    basic = (client["client_id"], client["client_secret"])
    with httpx.Client(timeout=30) as http:
        for i in range(rounds):
            user = users[i % len(users)]
            verifier, query = authorization_query(client)
            answer = http.get(f"{base}/authorize?{query}", headers={"Cookie": user["cookie"]})
            code = parse_qs(urlsplit(answer.headers.get("location", "")).query)["code"][0]
            tokens = http.post(
                f"{base}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": client["redirect_uri"],
                    "code_verifier": verifier,
                },
                auth=basic,
            ).json()
            got = http.get(
                f"{base}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            assert got.status_code == 200, got.text
            refreshed = http.post(
                f"{base}/token?bench-refresh",
                data={"grant_type": "refresh_token", "refresh_token": user["refresh_token"]},
                auth=basic,
            )
            assert refreshed.status_code == 200, refreshed.text
            user["refresh_token"] = refreshed.json()["refresh_token"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="a database URL (default: a SQLite file)")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print where the CPU goes")
    parser.add_argument("--profile-of", default="", help="profile one endpoint only: /userinfo")
    parser.add_argument("--show", default="", help="print one request's statements: /token")
    args = parser.parse_args()
    instance = tempfile.mkdtemp(prefix="idp-statements-")
    url = args.database or f"sqlite:///{instance}/idp.sqlite3"
    logging.getLogger("waitress").setLevel(logging.ERROR)
    counter = Counter()
    counter.show = args.show
    counter.profiling = args.profile or bool(args.profile_of)
    app, server, base = serve(url, instance, counter)
    try:
        client, people, _ = create_people(app, 4)
        users = [sign_in_user(base, client, person) for person in people]
        journeys(base, client, users, 20)  # warm caches, as a running server's are
        counter.on = True
        journeys(base, client, users, args.rounds)
        counter.on = False
    finally:
        server.close()
    per = counter.table()
    journey = [per[p] for p in HOT_PATHS]
    per["journey (authorize + token + userinfo)"] = {
        figure: round(sum(p[figure] for p in journey), 2)
        for figure in journey[0]
        if figure != "requests"
    }
    profiles = [p for label, p in counter.profiles.items() if args.profile_of in ("", label)]
    if profiles:
        stats = pstats.Stats(*profiles).sort_stats("tottime")
        stats.print_stats(40)
        stats.sort_stats("cumulative").print_stats("idp/", 60)
    for statement in counter.shown[args.show]:
        print(statement)
    print(json.dumps({"database": url.split(":")[0], "rounds": args.rounds, "per": per}, indent=2))


if __name__ == "__main__":
    main()

"""The load generator: a separate process that drives one scenario against a base URL and
writes what it measured as JSON.

    python -m bench.loadgen SCENARIO --url URL --concurrency N --duration S --state FILE --out FILE

Closed loop: N virtual users each run the scenario's operation again and again, as soon as the
previous one finished, for the warm-up and then the measured duration. Only operations that
started inside the measured window count. One asyncio event loop with aiohttp (keep-alive
connections, no cookie jar: each virtual user sends its own cookies).

Scenarios: ceiling (GET /), discovery, jwks, journey (authorize with a live session -> token ->
userinfo), mint (authorize only, keeping the codes for `token`), token (redeem minted codes),
refresh (rotate a refresh token), sign_in (the password step of signing in).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import resource
import secrets
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorization_query(client: dict) -> tuple[str, str]:
    """A PKCE verifier and the query string of an authorization request for it."""
    verifier = secrets.token_urlsafe(48)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client["client_id"],
            "redirect_uri": client["redirect_uri"],
            "scope": client["scope"],
            "state": secrets.token_urlsafe(12),
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        }
    )
    return verifier, query


class Failed(Exception):
    """An operation got an answer it should not have."""


class Scenario:
    """The operation every virtual user repeats, and the state it needs."""

    def __init__(self, name: str, url: str, state: dict, http: aiohttp.ClientSession):
        self.name = name
        self.url = url.rstrip("/")
        self.state = state
        self.http = http
        self.steps: dict[str, list[float]] = defaultdict(list)
        self.minted: list[dict] = []
        client = state.get("client") or {}
        if client:
            pair = f"{client['client_id']}:{client['client_secret']}".encode()
            self.basic = "Basic " + base64.b64encode(pair).decode()
        self.codes = list(state.get("codes", []))
        self.refresh_tokens = {
            i: u.get("refresh_token") for i, u in enumerate(state.get("users", []))
        }

    def user(self, vu: int) -> dict:
        users = self.state["users"]
        return users[vu % len(users)]

    async def get(self, path: str, **kw) -> aiohttp.ClientResponse:
        async with self.http.get(self.url + path, allow_redirects=False, **kw) as response:
            await response.read()
            return response

    async def timed(self, step: str, coro, measuring: bool):
        start = time.perf_counter()
        result = await coro
        if measuring:
            self.steps[step].append(time.perf_counter() - start)
        return result

    async def run(self, vu: int, measuring: bool) -> bool:
        return await getattr(self, "op_" + self.name)(vu, measuring)

    async def op_ceiling(self, vu: int, measuring: bool) -> bool:
        return (await self.get("/")).status == 200

    async def op_discovery(self, vu: int, measuring: bool) -> bool:
        response = await self.get("/.well-known/openid-configuration")
        if response.status != 200:
            raise Failed(f"discovery: {response.status}")
        return True

    async def op_jwks(self, vu: int, measuring: bool) -> bool:
        response = await self.get("/jwks.json")
        if response.status != 200:
            raise Failed(f"jwks: {response.status}")
        return True

    async def authorize(self, vu: int) -> tuple[str, str]:
        """A code for this user's live session at the benchmark department, and its verifier."""
        user = self.user(vu)
        client = self.state["client"]
        verifier, query = authorization_query(client)
        response = await self.get(f"/authorize?{query}", headers={"Cookie": user["cookie"]})
        location = response.headers.get("Location", "")
        code = parse_qs(urlsplit(location).query).get("code")
        if response.status not in (302, 303) or not code:  # node-oidc-provider: 303
            raise Failed(f"authorize: {response.status} {location[:120]}")
        return code[0], verifier

    async def redeem(self, code: str, verifier: str) -> dict:
        client = self.state["client"]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client["redirect_uri"],
            "code_verifier": verifier,
        }
        headers = {"Authorization": self.basic}
        async with self.http.post(self.url + "/token", data=form, headers=headers) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise Failed(f"token: {response.status} {body.get('error')}")
            return body

    async def userinfo(self, access_token: str) -> None:
        response = await self.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
        if response.status != 200:
            raise Failed(f"userinfo: {response.status}")

    async def op_journey(self, vu: int, measuring: bool) -> bool:
        code, verifier = await self.timed("authorize", self.authorize(vu), measuring)
        tokens = await self.timed("token", self.redeem(code, verifier), measuring)
        await self.timed("userinfo", self.userinfo(tokens["access_token"]), measuring)
        return True

    async def op_mint(self, vu: int, measuring: bool) -> bool:
        code, verifier = await self.authorize(vu)
        self.minted.append({"code": code, "verifier": verifier})
        return True

    async def op_token(self, vu: int, measuring: bool) -> bool:
        if not self.codes:
            raise StopAsyncIteration
        minted = self.codes.pop()
        await self.redeem(minted["code"], minted["verifier"])
        return True

    async def op_refresh(self, vu: int, measuring: bool) -> bool:
        form = {"grant_type": "refresh_token", "refresh_token": self.refresh_tokens[vu]}
        headers = {"Authorization": self.basic}
        async with self.http.post(self.url + "/token", data=form, headers=headers) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise Failed(f"refresh: {response.status} {body.get('error')}")
        self.refresh_tokens[vu] = body["refresh_token"]
        return True

    async def op_sign_in(self, vu: int, measuring: bool) -> bool:
        user = self.user(vu)
        # The password page: the address was typed on the page before (in the cookie).
        form = {"csrf_token": user["csrf_token"], "password": user["password"]}
        # A browser's Origin: the IdP refuses a form post without it.
        headers = {"Cookie": user["csrf_cookie"], "Origin": self.url}
        async with self.http.post(
            self.url + "/sign-in/password", data=form, headers=headers, allow_redirects=False
        ) as response:
            await response.read()
            if response.status != 303:
                raise Failed(f"sign-in: {response.status}")
        return True


def percentile(values: list[float], fraction: float) -> float:
    """The value below which this fraction of the values lie (nearest rank)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(latencies: list[float]) -> dict:
    """Count, percentiles and mean of latencies in seconds, as milliseconds."""
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else 0.0,
    }


async def drive(args, state: dict) -> dict:
    """Run the virtual users for the warm-up and the measured window."""
    connector = aiohttp.TCPConnector(limit=0, force_close=False, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
    ) as http:
        scenario = Scenario(args.scenario, args.url, state, http)
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        begin = time.perf_counter()
        measure_from = begin + args.warmup
        end = measure_from + args.duration
        finished_at = [end]

        async def virtual_user(vu: int) -> None:
            while time.perf_counter() < end:
                started = time.perf_counter()
                measuring = started >= measure_from
                try:
                    await scenario.run(vu, measuring)
                except StopAsyncIteration:
                    finished_at[0] = min(finished_at[0], time.perf_counter())
                    return
                except (Failed, aiohttp.ClientError, TimeoutError, KeyError) as exc:
                    if measuring:
                        errors[str(exc)[:160] or type(exc).__name__] += 1
                    continue
                if measuring:
                    latencies.append(time.perf_counter() - started)

        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.gather(*(virtual_user(vu) for vu in range(args.concurrency)))
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        window = max(1e-9, min(finished_at[0], time.perf_counter()) - measure_from)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
            cpu_after.ru_stime - cpu_before.ru_stime
        )
        result = {
            "scenario": args.scenario,
            "concurrency": args.concurrency,
            "seconds": round(window, 2),
            "per_second": round(len(latencies) / window, 1),
            "errors": dict(errors.most_common(5)),
            "error_count": sum(errors.values()),
            "loadgen_cpu_seconds": round(cpu, 1),
            **summary(latencies),
            "steps": {name: summary(values) for name, values in scenario.steps.items()},
        }
        if args.scenario == "mint":
            result["minted"] = scenario.minted
        if args.scenario == "refresh":  # the live ones, for a later run (bench.run pops them)
            result["refresh_tokens"] = [
                scenario.refresh_tokens[i] for i in sorted(scenario.refresh_tokens)
            ]
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--state", type=Path, help="users, client and codes (JSON)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    state = json.loads(args.state.read_text()) if args.state else {}
    result = asyncio.run(drive(args, state))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()

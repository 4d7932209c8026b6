"""Malformed requests at every route: a clear refusal (4xx) or an answer, never a 5xx.

The routes come from the app's url_map, so a new page or endpoint is fuzzed as soon as it
exists; the parameter names from the OAuth vocabulary, the app's forms and the registration
metadata. Thousands of requests go through Flask's test client (as anonymous, a signed-in
citizen and signed-in staff, with and without a valid CSRF token); a few hundred go over a raw
socket for what a test client cannot send (a raw bad Host, invalid UTF-8 in the request line,
duplicated Host headers, absolute-form targets).

Deterministic: a seeded random generator; IDP_FUZZ_SEED and IDP_FUZZ_ROUNDS change the seed
and the number of requests. A failure names the seed, the request and the status.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import pytest
from flask_wtf import FlaskForm
from wtforms.fields.core import UnboundField

from idp.departments.metadata import JWK_MEMBERS, KNOWN_FIELDS
from tests.departments import PASSPORTS, StaffBrowser, make_staff
from tests.support.browser import CitizenBrowser
from tests.support.registration import issue_token

pytestmark = pytest.mark.both_databases

SEED = int(os.environ.get("IDP_FUZZ_SEED", "20261125"))
ROUNDS = int(os.environ.get("IDP_FUZZ_ROUNDS", "3000"))
RAW_ROUNDS = int(os.environ.get("IDP_FUZZ_RAW_ROUNDS", "300"))
REDIRECT_URI = "https://dept-a.example.gov.uk/callback"

OAUTH_NAMES = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "vtr",
    "ui_locales",
    "login_hint",
    "acr_values",
    "claims",
    "request",
    "request_uri",
    "response_mode",
    "id_token_hint",
    "post_logout_redirect_uri",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "token",
    "token_type_hint",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "confirm",
    "next",
    "lang",
    "page",
    "event",
    "citizen",
    "session",
    "from",
    "to",
    "q",
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND", "TRACE")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth if depth % 2 else '{"a":' * depth + "1" + "}" * depth


def form_field_names() -> set[str]:
    """Every field name of every form the app defines (and so of forms added later)."""
    names: set[str] = set()
    stack = [FlaskForm]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        names.update(n for n in dir(cls) if isinstance(getattr(cls, n, None), UnboundField))
    return names


@dataclass
class Identity:
    """Who sends a request: cookies, and a CSRF token valid with them."""

    name: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str | None = None


class Fuzzer:
    """Builds malformed requests from a seeded generator."""

    def __init__(self, rng: random.Random, known: dict[str, str], names: list[str]):
        self.rng = rng
        self.known = known  # real values (a client_id, a token...) to get past first checks
        self.names = names

    def jwt(self) -> str:
        r = self.rng
        headers = [
            {"alg": "none"},
            {"alg": "RS256", "kid": "x" * r.choice((1, 300))},
            {"alg": ["ES256"], "typ": 5},
            {"alg": "HS256", "jku": "http://127.0.0.1:1/"},
            [],
            None,
        ]
        claims = [
            {"sub": self.known["client_id"], "iss": self.known["client_id"], "aud": [1, None]},
            {"sub": self.known["client_id"], "exp": "soon", "iat": 1e308, "jti": ["x"]},
            {"sub": ["a"], "iss": {}, "exp": float("inf")},
            {"aud": "x", "sub": self.known["client_id"], "exp": 2**70, "jti": "x", "iat": -1},
        ]
        header = r.choice(headers)
        header_part = r.choice(
            [b64(json.dumps(header).encode()), b64(nested_json(r.choice((50, 5000))).encode())]
        )
        payload_part = r.choice(
            [
                b64(json.dumps(r.choice(claims)).encode()),
                b64(nested_json(r.choice((51, 5001, 20000))).encode()),
                b64(b"\xff\xfe\x00"),
                "!!!",
                "",
            ]
        )
        return ".".join([header_part, payload_part, r.choice(["", "sig", "a" * 400])])

    def value(self) -> str:
        r = self.rng
        choice = r.randrange(26)
        if choice == 0:
            return ""
        if choice == 1:
            return "x" * r.choice((300, 5000, 70_000))
        if choice == 2:
            return "a\x00b"
        if choice == 3:
            return nested_json(r.choice((30, 3000, 30_000)))
        if choice == 4:
            return self.jwt()
        if choice == 5:
            return r.choice(list(self.known.values()))
        if choice == 6:
            return r.choice(("-1", "0", "1e999", "NaN", "99999999999999999999", "²", "0x10"))
        if choice == 7:
            return r.choice(
                ("javascript:alert(1)", "http://127.0.0.1:1/x", "//evil", "https://", "\\\\x")
            )
        if choice == 8:
            return "é漢字\u202e\ud7ff\ufffd" * r.choice((1, 100))
        if choice == 9:
            return " ".join(
                r.choice(("openid", "email", "phone", "x", "openid openid")) for _ in "abc"
            )
        if choice == 10:
            return r.choice(("code", "token", "id_token code", "none", "plain", "S256"))
        if choice == 11:
            return r.choice(
                ("authorization_code", "refresh_token", "password", "client_credentials")
            )
        if choice == 12:
            return ASSERTION_TYPE
        if choice == 13:
            return r.choice(("login", "none consent", "select_account", "x"))
        if choice == 14:
            return "%" + r.choice(("", "zz", "FF", "00", "C3"))
        if choice == 15:
            return "\r\nSet-Cookie: x=y"
        if choice == 16:
            return r.choice(("Cl", "Cl.Cm", '["Cl.Cm"]', "[", "[1]", '["P2.Cl"]'))
        if choice == 17:
            return r.choice(("cy", "en", "xx-YY", "cy en", "*"))
        if choice == 18:
            return "/" + "../" * r.choice((1, 50)) + "etc/passwd"
        if choice == 19:
            return str(r.randrange(-(2**70), 2**70))
        return "".join(chr(r.randrange(32, 0x2FF)) for _ in range(r.randrange(1, 40)))

    def pairs(self) -> list[tuple[str, str]]:
        r = self.rng
        pairs = [(r.choice(self.names), self.value()) for _ in range(r.randrange(0, 9))]
        if pairs and r.random() < 0.3:
            pairs.append(r.choice(pairs))  # a duplicated parameter
        if r.random() < 0.1:
            pairs.append((self.value()[:100], "x"))  # an odd name
        return pairs

    def encode(self, pairs: list[tuple[str, str]]) -> bytes:
        """urlencoded, sometimes with invalid UTF-8 or bare % signs spliced in."""
        text = "&".join(
            quote(k, safe="") + "=" + quote(v, safe="", errors="surrogatepass")
            if self.rng.random() < 0.9
            else k + "=" + v
            for k, v in pairs
        )
        body = text.encode("utf-8", "surrogatepass")
        if self.rng.random() < 0.15:
            body += self.rng.choice((b"&x=%ff%fe", b"&\xff\xfe=\xc3", b"&=&&=", b"&%", b"&a=%zz"))
        return body

    def path(self, rule: str) -> str:
        def segment(_match) -> str:
            value = self.rng.choice(
                (self.known["client_id"], "1", "0", "-1", "99999999999999999999", self.value())
            )
            return quote(value[:300], safe="", errors="surrogatepass")

        return re.sub(r"<[^>]+>", segment, rule)

    def headers(self, identity: Identity) -> dict[str, str]:
        r = self.rng
        headers: dict[str, str] = {}
        cookies = dict(identity.cookies)
        if r.random() < 0.1 and cookies:
            name = r.choice(list(cookies))
            cookies[name] = r.choice(("", "x" * 5000, "\x7f", '"', self.value()[:200]))
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        kind = r.randrange(12)
        client_id = self.known["client_id"]
        if kind == 0:
            headers["Authorization"] = "Basic " + r.choice(
                (
                    "!!!",
                    base64.b64encode(b"\xff\xfe:\xff").decode(),
                    base64.b64encode(b"nocolon").decode(),
                    base64.b64encode(f"{client_id}:wrong".encode()).decode(),
                    base64.b64encode(f"{client_id}%zz:%".encode()).decode(),
                    "",
                )
            )
        elif kind == 1:
            headers["Authorization"] = "Bearer " + r.choice(
                (self.known["access_token"], self.known["initial_token"], "x" * 5000, self.jwt())
            )
        elif kind == 2:
            headers["Authorization"] = r.choice(("Bearer", "Basic", "Digest x", "bearer  a b"))
        if r.random() < 0.2:
            headers["Host"] = r.choice(
                ("evil.example", "a..b", "a" * 70 + ".example", "", "[::1", "x:99999", "é.example")
            )
        if r.random() < 0.15:
            headers["Origin"] = r.choice(("null", "https://evil.example", "x", ""))
        if r.random() < 0.15:
            headers["Accept-Language"] = r.choice(("cy;q=x", "*", "zz-ZZ,cy;q=0.5", "ä" * 50))
        if r.random() < 0.1:
            headers["Referer"] = r.choice(("https://evil.example/", "::", ""))
        if r.random() < 0.1:
            headers["If-None-Match"] = r.choice(('"x"', "*", "W/", ""))
        # The test client cannot send a line break in a header (the raw socket test can).
        return {k: v.replace("\r", "").replace("\n", "") for k, v in headers.items()}

    def body(self) -> tuple[bytes | None, str | None]:
        r = self.rng
        kind = r.randrange(10)
        if kind <= 4:
            return self.encode(self.pairs()), r.choice(
                (
                    "application/x-www-form-urlencoded",
                    "application/x-www-form-urlencoded; charset=latin-1",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
            )
        if kind == 5:
            document = {r.choice(KNOWN_FIELDS + JWK_MEMBERS): self.value() for _ in "abc"}
            if r.random() < 0.5:
                document["redirect_uris"] = r.choice(([REDIRECT_URI], REDIRECT_URI, [1], [[]]))
                document["jwks"] = r.choice(({"keys": [{"kty": "EC"}]}, {"keys": 1}, []))
            body = json.dumps(document) if r.random() < 0.8 else nested_json(20_000)
            return body.encode(), "application/json"
        if kind == 6:
            return r.choice((b"{", b"\xff\xfe", b"null", b"[]", b'"x"', b"1e999")), r.choice(
                ("application/json", "application/jwt", "text/plain", None)
            )
        if kind == 7:
            return b"x" * (70 * 1024), "application/x-www-form-urlencoded"
        if kind == 8:
            boundary = "b0undary"
            parts = b"".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
                + v.encode("utf-8", "surrogatepass")
                + b"\r\n"
                for k, v in self.pairs()
            )
            return parts + f"--{boundary}--\r\n".encode(), r.choice(
                (f"multipart/form-data; boundary={boundary}", "multipart/form-data")
            )
        return None, None


def sign_in_identities(idp, make_citizen) -> list[Identity]:
    """Anonymous, a signed-in citizen, a platform and a department administrator."""
    citizen = make_citizen()
    browser = CitizenBrowser(idp.issuer)
    browser.sign_in(browser.get(idp.url("/sign-in")), citizen["email"], citizen["password"])
    account_page = browser.get(idp.url("/account/password"))
    identities = [
        Identity("anonymous"),
        Identity("citizen", dict(browser.http.cookies), csrf_token(account_page.text)),
    ]
    for email, department in (
        ("platform@example.gov.uk", None),
        ("admin@passports.example.gov.uk", PASSPORTS),
    ):
        staff = StaffBrowser(idp.issuer).signed_in(
            make_staff(idp.app, email, department=department)
        )
        page = staff.get("/admin/initial-access-tokens" if department is None else "/departments/")
        identities.append(Identity(email, dict(staff.http.cookies), csrf_token(page.text)))
    return identities


def csrf_token(html: str) -> str | None:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    return found.group(1) if found else None


@pytest.fixture
def fuzz_setup(idp, make_client, make_citizen):
    client = make_client(
        "fuzz", grant_types=["authorization_code", "refresh_token"], redirect_uri=REDIRECT_URI
    )
    identities = sign_in_identities(idp, make_citizen)
    known = {
        "client_id": client.client_id,
        "redirect_uri": REDIRECT_URI,
        "initial_token": issue_token(idp),
        "access_token": "x" * 43,
        "assertion_type": ASSERTION_TYPE,
    }
    names = sorted(set(OAUTH_NAMES) | form_field_names() | set(KNOWN_FIELDS))
    return identities, known, names


def describe(method: str, path: str, query: bytes, headers: dict, body, content_type) -> str:
    shown = {k: (v[:80] + "...") if len(v) > 80 else v for k, v in headers.items()}
    return (
        f"{method} {path}?{query[:200]!r} headers={shown} content_type={content_type} "
        f"body={(body or b'')[:200]!r}"
    )


def test_no_malformed_request_gets_a_server_error(idp, fuzz_setup):
    identities, known, names = fuzz_setup
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng, known, names)
    rules = [
        rule
        for rule in idp.app.url_map.iter_rules()
        if rule.endpoint != "static" or rng.random() < 0.5
    ]
    failures: list[str] = []
    client = idp.app.test_client(use_cookies=False)
    for number in range(ROUNDS):
        rule = rules[number % len(rules)]  # every route, in turn
        allowed = sorted(rule.methods - {"OPTIONS"})
        method = rng.choice(allowed) if rng.random() < 0.85 else rng.choice(METHODS)
        identity = rng.choice(identities)
        path = fuzzer.path(rule.rule)
        query = fuzzer.encode(fuzzer.pairs()) if rng.random() < 0.6 else b""
        headers = fuzzer.headers(identity)
        body, content_type = fuzzer.body() if method not in ("GET", "HEAD") else (None, None)
        urlencoded = body is not None and content_type and "urlencoded" in content_type
        if identity.csrf and urlencoded and rng.random() < 0.7:
            body += b"&csrf_token=" + identity.csrf.encode()
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = client.open(
                path,
                method=method,
                data=body,
                headers=headers,
                environ_base={"REMOTE_ADDR": f"10.{rng.randrange(256)}.{rng.randrange(256)}.1"},
                # WSGI strings are bytes as latin-1: the query exactly as sent, invalid UTF-8 too.
                environ_overrides={"QUERY_STRING": query.decode("latin-1")},
            )
            status = response.status_code
            response.close()
        except Exception as exc:  # noqa: BLE001 - an exception escaping the app is the finding
            status = f"exception {type(exc).__name__}: {exc}"[:300]
        if not isinstance(status, int) or status >= 500:
            failures.append(
                f"#{number} as {identity.name}: {status}: "
                + describe(method, path, query, headers, body, content_type)
            )
    assert not failures, (
        f"{len(failures)} of {ROUNDS} requests got a server error (seed {SEED}):\n"
        + "\n".join(failures[:20])
    )


# Odd path parameters, each tried at every route that has parameters: NUL above all
# (PostgreSQL text cannot hold it), other control characters, a lone surrogate, escapes.
PATH_VALUES = (
    "a\x00b",
    "\x00",
    "%00",
    "\x01\x1f\x7f",
    "\ud800",
    "é漢字\u202e",
    "x" * 5000,
    "..",
    " ",
    "%ff",
)


def test_odd_path_parameters_get_a_clear_refusal(idp, fuzz_setup):
    identities, known, _ = fuzz_setup
    client = idp.app.test_client(use_cookies=False)
    failures: list[str] = []
    rules = [r for r in idp.app.url_map.iter_rules() if r.arguments and r.endpoint != "static"]
    assert any("client_id" in r.arguments for r in rules)
    for rule in rules:
        for value in (*PATH_VALUES, known["client_id"] + "\x00"):
            # Every parameter of the route gets the value (a digest beside a client ID too).
            segment = quote(value, safe="", errors="surrogatepass").replace("\\", "\\\\")
            path = re.sub(r"<[^>]+>", segment, rule.rule)
            for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
                for identity in identities:
                    # A signed-in browser's cookies, from the IdP's own origin: past the checks
                    # that come before the view, so the view meets the value.
                    headers = {"Origin": idp.issuer, "Host": urlsplit(idp.issuer).netloc}
                    if identity.cookies:
                        headers["Cookie"] = "; ".join(
                            f"{k}={v}" for k, v in identity.cookies.items()
                        )
                    data = {"csrf_token": identity.csrf} if identity.csrf else None
                    try:
                        response = client.open(path, method=method, headers=headers, data=data)
                        status = response.status_code
                        response.close()
                    except Exception as exc:  # noqa: BLE001 - an escaping exception is a finding
                        status = f"exception {type(exc).__name__}: {exc}"[:300]
                    if not isinstance(status, int) or status >= 500:
                        failures.append(f"{method} {path[:120]} as {identity.name}: {status}")
    # And over HTTP, through the server (a %00 in the request line, as a browser sends it).
    issuer = urlsplit(idp.issuer)
    for rule in rules:
        target = re.sub(r"<[^>]+>", "a%00b", rule.rule).encode()
        request = b"GET " + target + b" HTTP/1.1\r\nHost: " + issuer.netloc.encode()
        status = raw_request(
            (issuer.hostname, issuer.port), request + b"\r\nConnection: close\r\n\r\n"
        )
        if not status.isdigit() or int(status) >= 500:
            failures.append(f"raw GET {target!r}: {status}")
    assert not failures, "\n".join(failures[:20])


RAW_TARGETS = (
    "/authorize?client_id=\xff\xfe",
    "/sign-in?next=%ff",
    "/token",
    "/logout?state=\x00",
    "/\xc3\x28",
    "/%ff%fe",
    "http://evil.example/sign-in",
    "*",
    "//evil.example/",
    "/" + "a" * 8000,
)


def raw_request(address: tuple[str, int], data: bytes) -> str:
    """Send bytes on a fresh connection; the status line's code, or why there is none."""
    received = b""
    with socket.create_connection(address, timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            # The server answered and closed before reading everything (a request it refused
            # early): what it answered is still there to read.
            pass
        try:
            while b"\r\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except ConnectionResetError:
            pass
    line = received.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return parts[1] if len(parts) > 1 and line.startswith("HTTP/") else f"no status ({line!r})"


def test_no_raw_malformed_request_gets_a_server_error(idp, fuzz_setup):
    identities, known, names = fuzz_setup
    rng = random.Random(SEED + 1)
    fuzzer = Fuzzer(rng, known, names)
    issuer = urlsplit(idp.issuer)
    address = (issuer.hostname, issuer.port)
    paths = sorted({re.sub(r"<[^>]+>", "1", r.rule) for r in idp.app.url_map.iter_rules()})
    hosts = (
        b"evil.example",
        b"a..b",
        b"a" * 70 + b".example",
        b"",
        b"\xff\xfe",
        b"[::1",
        b"x:99999",
        b"host with space",
        issuer.netloc.encode(),
    )
    failures = []
    for number in range(RAW_ROUNDS):
        target = (rng.choice(RAW_TARGETS) if rng.random() < 0.4 else rng.choice(paths)).encode(
            "latin-1"
        )
        if rng.random() < 0.5:
            target += b"?" + fuzzer.encode(fuzzer.pairs())[:4000]
        method = rng.choice((b"GET", b"POST", b"HEAD", b"PUT", b"G\xffT", b"GET"))
        host_lines = [b"Host: " + rng.choice(hosts)]
        if rng.random() < 0.2:
            host_lines.append(b"Host: " + rng.choice(hosts))  # two Host headers
        if rng.random() < 0.1:
            host_lines = []
        body = fuzzer.encode(fuzzer.pairs()) if method == b"POST" else b""
        request = (
            method
            + b" "
            + target
            + b" HTTP/1.1\r\n"
            + b"".join(line + b"\r\n" for line in host_lines)
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            + b"Content-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        status = raw_request(address, request)
        if not status.isdigit() or int(status) >= 500:
            failures.append(f"#{number}: {status}: {request[:300]!r}")
    assert not failures, (
        f"{len(failures)} of {RAW_ROUNDS} raw requests got a server error or no answer "
        f"(seed {SEED + 1}):\n" + "\n".join(failures[:20])
    )

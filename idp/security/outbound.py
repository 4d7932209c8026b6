"""Fetching documents that departments point the IdP at (jwks_uri, sector_identifier_uri,
logo_uri).

A registration names URLs the IdP will request from inside its own network, so every fetch
has a timeout and a size cap, follows no redirects, and by default refuses private, loopback
and link-local addresses (server-side request forgery). The address that was checked is the
one connected to, so a DNS answer cannot change between the check and the request.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from idp.settings import current_settings, is_localhost_name


class FetchError(Exception):
    """A department's document could not be fetched or used; the message says why."""


class AddressRefused(FetchError):
    """The URI's host is an address the IdP does not connect to (private, loopback...)."""


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the IdP must not connect to this address, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo) is judged as the IPv4 it reaches.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return _address_problem(embedded)
        if address.is_site_local:
            return "a private or reserved address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or address.is_reserved or not address.is_global:
        # not is_global also covers what is neither private nor reserved but still not on
        # the internet, such as RFC 6598 shared space (100.64.0.0/10, used by cloud metadata).
        return "a private or reserved address"
    return None


def _resolve(name: str, host: str, port: int, allow_private: bool) -> str:
    """One address for host that the IdP may connect to; errors name the field."""
    if is_localhost_name(host):
        # RFC 6761 6.3: localhost names are the loopback address, whatever DNS says.
        if not allow_private:
            raise AddressRefused(
                f"{name}: its host {host} resolves to a loopback address, which the IdP "
                "does not fetch from"
            )
        return "127.0.0.1"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchError(f"{name}: its host {host} cannot be resolved") from None
    problem = None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        problem = None if allow_private else _address_problem(address)
        if problem is None:
            return str(address)
    raise AddressRefused(
        f"{name}: its host {host} resolves to {problem}, which the IdP does not fetch from"
    )


def _pinned(
    uri: str, name: str, allow_private: bool | None = None
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to connect to (the checked address), the Host header, and the SNI name."""
    if allow_private is None:
        allow_private = current_settings().may_fetch_private_addresses
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise FetchError(f"{name} is not a valid URI") from None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError(f"{name} has an invalid port") from None
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise FetchError(f"{name} is not an absolute http(s) URI")
    address = _resolve(name, parts.hostname, port, allow_private)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return pinned, headers, extensions


def post_form(uri: str, name: str, form: dict[str, str], timeout: float) -> int:
    """POST a form to a department's URI (back-channel logout); its HTTP status.

    Same rules as fetching: checked address, no redirects. The whole exchange, name lookup
    included, runs against a wall-clock deadline (httpx's timeouts bound each read only, so a
    server trickling its headers could otherwise hold the IdP for minutes); the answer's body
    is never read. FetchError says why nothing was delivered; TimeoutError when too slow.
    """
    allow_private = current_settings().may_fetch_private_addresses
    http = httpx.Client(timeout=timeout, follow_redirects=False)
    outcome: dict[str, Any] = {}

    def exchange() -> None:
        try:
            pinned, headers, extensions = _pinned(uri, name, allow_private)
            request = http.build_request(
                "POST", pinned, data=form, headers=headers, extensions=extensions
            )
            response = http.send(request, stream=True)
            response.close()
            outcome["status"] = response.status_code
        except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=exchange, name="idp-outbound-post", daemon=True)
    worker.start()
    worker.join(timeout)
    http.close()
    if worker.is_alive():
        raise TimeoutError(f"{name} took longer than {timeout} seconds")
    error = outcome.get("error")
    if isinstance(error, httpx.TimeoutException):
        raise TimeoutError(f"{name} took longer than {timeout} seconds")
    if isinstance(error, FetchError):
        raise error
    if isinstance(error, httpx.HTTPError):
        raise FetchError(f"{name} could not be reached: {type(error).__name__}")
    if error is not None:
        raise FetchError(f"{name} could not be reached: {type(error).__name__}")
    return outcome["status"]


def fetch_bytes(uri: str, name: str, max_bytes: int, accept: str = "*/*") -> tuple[str, bytes]:
    """GET a document from a department's URI: its media type (lower case, no parameters)
    and body; FetchError names the problem (status, size, time, address)."""
    settings = current_settings()
    pinned, headers, extensions = _pinned(uri, name)
    headers["Accept"] = accept
    body = bytearray()
    timeout = settings.jwks_fetch_timeout
    # httpx's timeout applies to each read; the deadline bounds the whole body, so a server
    # sending a byte at a time cannot hold an IdP thread for minutes.
    # Real elapsed time (an outbound read), not idp.clock: a moved clock must not time it out.
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            request = http.build_request("GET", pinned, headers=headers, extensions=extensions)
            response = http.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise FetchError(f"{name} answered HTTP {response.status_code}")
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(f"{name} is larger than {max_bytes} bytes")
                media_type = response.headers.get("Content-Type", "").split(";", 1)[0]
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > max_bytes:
                        raise FetchError(f"{name} is larger than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(f"{name} took longer than {timeout} seconds")
            finally:
                response.close()
    except httpx.HTTPError as exc:
        raise FetchError(f"{name} could not be fetched: {type(exc).__name__}") from None
    return media_type.strip().lower(), bytes(body)


def fetch_json(uri: str, name: str, max_bytes: int = 64 * 1024) -> Any:
    """GET a JSON document from a department's URI; FetchError names the problem."""
    _, body = fetch_bytes(uri, name, max_bytes, accept="application/json")
    try:
        return json.loads(body)
    except ValueError:
        raise FetchError(f"{name} did not return JSON") from None

"""Fetching documents that departments point the IdP at (jwks_uri, sector_identifier_uri).

A registration names URLs the IdP will request from inside its own network, so every fetch
has a timeout and a size cap, follows no redirects, and by default refuses private, loopback
and link-local addresses (server-side request forgery). The address that was checked is the
one connected to, so a DNS answer cannot change between the check and the request.
"""

from __future__ import annotations

import ipaddress
import json
import socket
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


def _pinned(uri: str, name: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL to connect to (the checked address), the Host header, and the SNI name."""
    settings = current_settings()
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
    address = _resolve(name, parts.hostname, port, settings.may_fetch_private_addresses)
    literal = f"[{address}]" if ":" in address else address
    pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return pinned, headers, extensions


def post_form(uri: str, name: str, form: dict[str, str], timeout: float) -> int:
    """POST a form to a department's URI (back-channel logout); its HTTP status.

    Same rules as fetching: checked address, no redirects, a deadline on the whole exchange.
    FetchError says why nothing was delivered; TimeoutError when the deadline passed.
    """
    pinned, headers, extensions = _pinned(uri, name)
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            request = http.build_request(
                "POST", pinned, data=form, headers=headers, extensions=extensions
            )
            response = http.send(request, stream=True)
            try:
                # Read (and drop) at most a little of the answer, within the deadline.
                read = 0
                for chunk in response.iter_bytes():
                    read += len(chunk)
                    if read > 4096:
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{name} took longer than {timeout} seconds")
            finally:
                response.close()
    except httpx.TimeoutException:
        raise TimeoutError(f"{name} took longer than {timeout} seconds") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"{name} could not be reached: {type(exc).__name__}") from None
    return response.status_code


def fetch_json(uri: str, name: str, max_bytes: int = 64 * 1024) -> Any:
    """GET a JSON document from a department's URI; FetchError names the problem."""
    settings = current_settings()
    pinned, headers, extensions = _pinned(uri, name)
    headers["Accept"] = "application/json"
    body = bytearray()
    timeout = settings.jwks_fetch_timeout
    # httpx's timeout applies to each read; the deadline bounds the whole body, so a server
    # sending a byte at a time cannot hold an IdP thread for minutes.
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as http:
            request = http.build_request("GET", pinned, headers=headers, extensions=extensions)
            response = http.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise FetchError(f"{name} answered HTTP {response.status_code}")
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
    try:
        return json.loads(body)
    except ValueError:
        raise FetchError(f"{name} did not return JSON") from None

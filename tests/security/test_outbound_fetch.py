"""Fetching the documents a registration points the IdP at (jwks_uri, sector_identifier_uri).

A department chooses these URLs, and the IdP requests them from inside its own network, so
in production it refuses private, loopback and link-local addresses (server-side request
forgery), follows no redirects, caps the size and gives up after a timeout. Every refusal
names the field, so the department knows which URL to fix.
"""

from __future__ import annotations

import os
import time

import pytest

from idp import create_app
from idp.departments.metadata import ClientMetadataError, validate_client_metadata
from idp.security.outbound import FetchError, fetch_json
from idp.settings import load_settings
from tests.support.registration import DocumentServer, SilentServer

TIMEOUT = 0.5
PRODUCTION_ISSUER = "https://idp.example"
LOOPBACK_ISSUER = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def app_for(tmp_path_factory):
    """An IdP app (not served; no database needed) for an issuer and fetch setting."""
    apps = {}

    def build(issuer: str = PRODUCTION_ISSUER, fetch_private_addresses: bool | None = None):
        key = (issuer, fetch_private_addresses)
        if key not in apps:
            settings = load_settings(
                config_file=os.devnull,
                issuer=issuer,
                fetch_private_addresses=fetch_private_addresses,
                jwks_fetch_timeout=TIMEOUT,
                instance_path=str(tmp_path_factory.mktemp("outbound")),
                database_url="sqlite://",
                departments_file="",
                log_level="WARNING",  # as the live IdP: the logger is process-wide
            )
            apps[key] = create_app(settings)
        return apps[key]

    return build


@pytest.fixture
def server():
    """A department's web server on a loopback port."""
    documents = DocumentServer()
    yield documents
    documents.close()


def fetch(app, uri: str, name: str = "jwks_uri", **kw):
    """fetch_json as the IdP runs it, inside the app."""
    with app.app_context():
        return fetch_json(uri, name, **kw)


def refusal(app, uri: str, name: str = "jwks_uri", **kw) -> str:
    """The FetchError message for a fetch that must fail."""
    with pytest.raises(FetchError) as caught:
        fetch(app, uri, name, **kw)
    return str(caught.value)


# --- Production: private addresses are refused before any connection -----------------------

PRIVATE_TARGETS = {
    "loopback": ("http://127.0.0.1:{port}/keys.json", "a loopback address"),
    "loopback-short-form": ("http://127.1:{port}/keys.json", "a loopback address"),
    "loopback-decimal": ("http://2130706433:{port}/keys.json", "a loopback address"),
    "localhost": ("http://localhost:{port}/keys.json", "a loopback address"),
    "ipv6-loopback": ("http://[::1]:{port}/keys.json", "a loopback address"),
    "ipv4-mapped-loopback": ("http://[::ffff:127.0.0.1]:{port}/keys.json", "a loopback address"),
    "ten": ("https://10.0.0.1/keys.json", "a private or reserved address"),
    "one-nine-two": ("https://192.168.1.20/keys.json", "a private or reserved address"),
    "one-seven-two": ("https://172.16.5.4/keys.json", "a private or reserved address"),
    "ipv4-mapped-private": ("https://[::ffff:10.0.0.1]/keys.json", "a private or reserved address"),
    "cloud-metadata": ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    "ipv4-mapped-metadata": ("http://[::ffff:169.254.169.254]/", "a link-local address"),
    "ipv6-link-local": ("https://[fe80::1]/keys.json", "a link-local address"),
    "ipv6-unique-local": ("https://[fd00::1]/keys.json", "a private or reserved address"),
    "unspecified": ("http://0.0.0.0:{port}/keys.json", "a private or reserved address"),
    # RFC 6598 shared address space: carrier NAT, and some clouds' metadata service.
    "shared-address-space": ("http://100.100.100.200/latest/meta-data/", "a private or reserved"),
    "nat64-loopback": ("https://[64:ff9b::7f00:1]/keys.json", "a private or reserved address"),
}


@pytest.mark.parametrize(
    ("template", "reason"), list(PRIVATE_TARGETS.values()), ids=list(PRIVATE_TARGETS)
)
def test_production_refuses_private_addresses_naming_the_field_and_reason(
    app_for, server, template, reason
):
    server.serve("/keys.json", {"keys": []})
    uri = template.format(port=server.server.server_port)

    message = refusal(app_for(), uri, "jwks_uri")

    assert message.startswith("jwks_uri")
    assert reason in message
    assert "does not fetch" in message
    assert server.requests == []


def test_a_registration_pointing_at_a_private_address_names_sector_identifier_uri(app_for):
    metadata = {
        "redirect_uris": ["https://fishing.example.gov.uk/callback"],
        "sector_identifier_uri": "https://10.1.2.3/sector.json",
    }
    with app_for().app_context(), pytest.raises(ClientMetadataError) as caught:
        validate_client_metadata(metadata)
    assert str(caught.value).startswith("sector_identifier_uri")
    assert "a private or reserved address" in str(caught.value)
    assert caught.value.field == "sector_identifier_uri"


def test_an_unresolvable_host_is_named(app_for):
    message = refusal(app_for(), "https://no-such-host.invalid/keys.json", "sector_identifier_uri")
    assert message.startswith("sector_identifier_uri")
    assert "no-such-host.invalid cannot be resolved" in message


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("ftp://keys.example.gov.uk/keys.json", "is not an absolute http(s) URI"),
        ("file:///etc/passwd", "is not an absolute http(s) URI"),
        ("/keys.json", "is not an absolute http(s) URI"),
        ("https://keys.example.gov.uk:99999/keys.json", "has an invalid port"),
    ],
    ids=["ftp", "file", "relative", "bad-port"],
)
def test_a_uri_the_idp_cannot_fetch_is_refused(app_for, uri, fragment):
    assert refusal(app_for(), uri) == f"jwks_uri {fragment}"


def test_opting_in_allows_private_addresses_with_a_public_issuer(app_for, server):
    uri = server.serve("/keys.json", {"keys": []})
    assert fetch(app_for(fetch_private_addresses=True), uri) == {"keys": []}


def test_opting_out_refuses_loopback_even_with_a_loopback_issuer(app_for, server):
    uri = server.serve("/keys.json", {"keys": []})
    message = refusal(app_for(LOOPBACK_ISSUER, fetch_private_addresses=False), uri)
    assert "a loopback address" in message
    assert server.requests == []


# --- What is fetched, and what is refused once connected ------------------------------------


@pytest.fixture
def dev_app(app_for):
    """The IdP on a developer's machine: the issuer is on loopback, so loopback is fetched."""
    return app_for(LOOPBACK_ISSUER)


def test_a_loopback_issuer_fetches_json_from_loopback(dev_app, server):
    document = {"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}
    uri = server.serve("/keys.json?v=2", document)

    assert fetch(dev_app, uri) == document
    [(path, headers)] = server.requests
    assert path == "/keys.json?v=2"
    assert headers["Accept"] == "application/json"


def test_the_host_header_keeps_the_name_while_the_checked_address_is_used(dev_app, server):
    server.serve("/keys.json", {"keys": []})
    port = server.server.server_port

    fetch(dev_app, f"http://localhost:{port}/keys.json")

    [(_, headers)] = server.requests
    assert headers["Host"] == f"localhost:{port}"


def test_names_under_localhost_are_this_machine(dev_app, app_for, server):
    """RFC 6761 6.3: tax.localhost is loopback without asking DNS (the demo's services)."""
    server.serve("/keys.json", {"keys": []})
    port = server.server.server_port

    assert fetch(dev_app, f"http://tax.localhost:{port}/keys.json") == {"keys": []}
    [(_, headers)] = server.requests
    assert headers["Host"] == f"tax.localhost:{port}"
    message = refusal(app_for(), f"http://tax.localhost:{port}/keys.json")
    assert "a loopback address" in message and "does not fetch" in message


@pytest.mark.parametrize("size_over_cap", [0, 1], ids=["at-the-cap", "one-byte-over"])
def test_the_size_cap_is_enforced(dev_app, server, size_over_cap):
    document = b'"' + b"x" * 98 + b'"'  # 100 bytes of JSON
    uri = server.serve("/big.json", document + b" " * size_over_cap)
    if size_over_cap:
        assert refusal(dev_app, uri, max_bytes=100) == "jwks_uri is larger than 100 bytes"
    else:
        assert fetch(dev_app, uri, max_bytes=100) == "x" * 98


def test_the_default_size_cap_is_64_kib(dev_app, server):
    uri = server.serve("/huge.json", b"[" + b" " * (64 * 1024) + b"]")
    assert refusal(dev_app, uri, "sector_identifier_uri") == (
        "sector_identifier_uri is larger than 65536 bytes"
    )


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed(dev_app, server, status):
    target = server.serve("/elsewhere.json", {"keys": []})
    uri = server.serve("/keys.json", b"", status=status, headers={"Location": target})

    assert refusal(dev_app, uri) == f"jwks_uri answered HTTP {status}"
    assert server.paths_requested() == ["/keys.json"]


@pytest.mark.parametrize("status", [201, 204, 404, 500, 503])
def test_any_status_but_200_is_refused(dev_app, server, status):
    uri = server.serve("/keys.json", {"keys": []}, status=status)
    assert refusal(dev_app, uri) == f"jwks_uri answered HTTP {status}"


@pytest.mark.parametrize(
    "content",
    [b"<html>keys</html>", b"", b"{'keys': []}", b"\xff\xfe"],
    ids=["html", "empty", "python-repr", "binary"],
)
def test_a_body_that_is_not_json_is_refused(dev_app, server, content):
    uri = server.serve("/keys.json", content, content_type="text/html")
    assert refusal(dev_app, uri) == "jwks_uri did not return JSON"


def test_a_server_that_never_answers_times_out(dev_app):
    silent = SilentServer()
    try:
        started = time.monotonic()
        message = refusal(dev_app, silent.url)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert message == "jwks_uri could not be fetched: ReadTimeout"
    assert elapsed < TIMEOUT + 2


def test_a_server_that_answers_ever_so_slowly_is_given_up_on(dev_app, server):
    """Each byte arrives within the timeout, but the whole answer would take minutes: the
    timeout bounds the whole fetch, so a department cannot hold an IdP thread."""
    uri = server.serve("/keys.json", b" " * 1000 + b"{}", trickle=TIMEOUT / 3)

    started = time.monotonic()
    message = refusal(dev_app, uri)
    elapsed = time.monotonic() - started

    assert message == f"jwks_uri took longer than {TIMEOUT} seconds"
    assert elapsed < TIMEOUT * 2 + 1


def test_a_closed_port_is_reported(dev_app, server):
    uri = server.serve("/keys.json", {"keys": []})
    server.close()
    assert refusal(dev_app, uri) == "jwks_uri could not be fetched: ConnectError"

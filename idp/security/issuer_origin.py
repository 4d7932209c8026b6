"""The IdP's own address is its issuer, never the request's Host header.

The Host header (and a proxy's X-Forwarded-Proto) is whatever the client sent. Authlib checks
the URL it is given for https, Flask builds links and redirects from it, and Werkzeug refuses
a host it cannot encode (a label over 63 characters, an empty label) only when it builds a
URL. So every request is seen at the issuer's scheme, host and port, before anything reads
them: the IdP's URLs are the ones departments configured (OIDC Discovery 1.0 section 3, the
issuer identifies the IdP), and an odd Host cannot make a page fail. The same middleware, as
the first to see a request, percent-encodes raw non-ASCII bytes in the query string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask

# Where the Host header the client sent is kept, for anything that wants to log it.
SENT_HOST_KEY = "idp.sent_host"
# What stays as it is in a query string: every printable ASCII character (RFC 3986 3.4).
QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


class IssuerOrigin:
    """WSGI middleware: scheme, Host, server name and port taken from the issuer."""

    def __init__(self, app: Callable[..., Iterable[bytes]], issuer: str) -> None:
        parts = urlsplit(issuer)
        self.app = app
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.server_name = parts.hostname or ""
        self.server_port = str(parts.port or (443 if parts.scheme == "https" else 80))

    def __call__(self, environ: dict[str, Any], start_response) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        if not query.isascii():
            # RFC 9112 3.2: a request target is ASCII. Raw bytes (WSGI gives them as latin-1)
            # are percent-encoded as a browser would, so invalid UTF-8 in them is decoded
            # leniently like any other percent-encoded value, instead of failing every read of
            # the query (error pages included).
            environ["QUERY_STRING"] = quote(query.encode("latin-1"), safe=QUERY_SAFE)
        environ[SENT_HOST_KEY] = environ.get("HTTP_HOST")
        environ["HTTP_HOST"] = self.host
        environ["SERVER_NAME"] = self.server_name
        environ["SERVER_PORT"] = self.server_port
        environ["wsgi.url_scheme"] = self.scheme
        return self.app(environ, start_response)


def serve_at_issuer(app: Flask) -> None:
    """Make every request of app look addressed to the issuer. Call it before wrapping the app
    in ProxyFix, so that this runs after it and the issuer's scheme wins."""
    app.wsgi_app = IssuerOrigin(app.wsgi_app, app.config["IDP_SETTINGS"].issuer)

"""How the IdP sets its session cookies: one rule for all of them.

* On an https issuer each name has the ``__Host-`` prefix and the cookie is ``Secure`` with
  ``Path=/`` and no ``Domain`` (RFC 6265bis 4.1.3.2): a browser then refuses the cookie from
  plain HTTP, from a sibling subdomain and for a narrower path, so nobody on the network or on
  another host of the domain can plant or overwrite it (session fixation).
* Session cookies only: never ``Max-Age`` or ``Expires``, so closing the browser forgets them
  (OWASP Session Management Cheat Sheet). The server ends the session on its own clock anyway
  (idle timeout and absolute lifetime, NIST SP 800-63B 7.1).
* Always ``HttpOnly``: no script ever needs them.
"""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from idp.settings import current_settings

HOST_PREFIX = "__Host-"


def cookie_name(name: str) -> str:
    """The name a cookie has on this issuer: with the __Host- prefix where it is Secure."""
    return HOST_PREFIX + name if current_settings().cookies_secure else name


def read_cookie(name: str) -> str | None:
    """The value this request carries for the cookie, or None."""
    return request.cookies.get(cookie_name(name))


def set_session_cookie(response: Response, name: str, value: str, *, samesite: str) -> None:
    """Set a session cookie (no Max-Age or Expires) under the rule above."""
    response.set_cookie(
        cookie_name(name),
        value,
        httponly=True,
        samesite=samesite,
        secure=current_settings().cookies_secure,
        path="/",
    )


def clear_session_cookie(response: Response, name: str, *, samesite: str) -> None:
    """Tell the browser to forget a session cookie."""
    response.delete_cookie(
        cookie_name(name),
        path="/",
        httponly=True,
        samesite=samesite,
        secure=current_settings().cookies_secure,
    )


class SigningOnceSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session (which carries only the CSRF token), with its signing
    serializer built once per set of keys instead of at every request: Flask makes a new one
    each time it opens or saves a session, before it even looks for the cookie."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        """Flask's serializer for the app's current key and fallbacks, kept while they stay."""
        keys = (app.secret_key, *(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            self._serializers = {keys: serializer}  # a rotated key replaces the old one
        return serializer

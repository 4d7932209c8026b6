"""Device cookies: browsers an account signed in on before (OWASP "Slow Down Online Guessing
Attacks with Device Cookies").

A successful password sign-in gives the browser a signed, HttpOnly cookie naming the account (by
the digest of its throttle key, never the address) and a fresh random nonce. When that browser
tries the password again, the throttle judges it by the counters of that nonce alone
(idp/security/throttle.py), so failures from anywhere else cannot lock it out. The cookie holds
the last few accounts signed in on the browser (a shared computer), newest first; a citizen and
a staff member are different accounts (their keys differ by realm).
"""

from __future__ import annotations

import hmac
import secrets

from flask import Response, current_app
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer

from idp import clock
from idp.security import throttle
from idp.security.cookies import cookie_name, read_cookie
from idp.settings import current_settings

COOKIE = "idp_device"
SALT = "idp.device-cookie"
# Accounts remembered per browser; the oldest is forgotten first.
MAX_ACCOUNTS = 5


class _Signer(TimestampSigner):
    """Stamped, and checked for max_age, by idp.clock (which tests move)."""

    def get_timestamp(self) -> int:
        return int(clock.time())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT, signer=_Signer)


def _entries() -> list[list[str]]:
    """The [account digest, nonce] pairs of a valid cookie; none when absent, forged or old."""
    value = read_cookie(COOKIE)
    if not value:
        return []
    try:
        entries = _serializer().loads(value, max_age=current_settings().device_cookie_lifetime)
    except BadData:
        return []
    if not isinstance(entries, list):
        return []
    return [
        e
        for e in entries
        if isinstance(e, list) and len(e) == 2 and all(isinstance(v, str) for v in e)
    ][:MAX_ACCOUNTS]


def presented(account_key: str) -> str | None:
    """The nonce of this account's device cookie in the current request, if any."""
    wanted = throttle.digest(account_key)
    for account, nonce in _entries():
        if hmac.compare_digest(account, wanted):
            return nonce
    return None


def remember(response: Response, account_key: str) -> Response:
    """After a successful sign-in: a new nonce for this account in the browser's cookie."""
    account = throttle.digest(account_key)
    kept = [e for e in _entries() if e[0] != account]
    entries = [[account, secrets.token_urlsafe(16)], *kept][:MAX_ACCOUNTS]
    settings = current_settings()
    # __Host- and Secure on an https issuer like the session cookies (security/cookies.py),
    # but persistent: remembering the browser is its purpose.
    response.set_cookie(
        cookie_name(COOKIE),
        _serializer().dumps(entries),
        max_age=settings.device_cookie_lifetime,
        httponly=True,
        samesite="Lax",
        secure=settings.cookies_secure,
        path="/",
    )
    return response

"""Failed requests to the machine-facing endpoints are limited (OWASP ASVS 2.2.1, RFC 9700 4.x
brute force): /token, /introspect, /revoke, /register and /userinfo.

Each endpoint's view is wrapped in ``limit_failures``. A refused request (any 4xx, and a token
that introspection or revocation does not know, which RFC 7009/7662 answer with 200) counts
against the client when the client proved who it is (client_secret_*, private_key_jwt), and
otherwise against the IP address it came from (idp/security/throttle.py: check_endpoint,
record_endpoint_failure; the same shared store as sign-in). So failed client authentication,
and anything a public client (token_endpoint_auth_method none) does, counts against the IP
address alone: naming a client is not proving to be it, and nobody can lock a department out
by sending requests in its name.

An IP address over its limit is refused before anything else. A client over its limit is
never refused a request that would succeed: its requests are still answered, and only those
that fail get 429 instead of their error. Anyone who can make a department's server fail
(junk ?code= values sent to its own callback, which it then tries to redeem) could otherwise
lock it out of the IdP; the limit still tells a department that keeps failing to stop.
Failures counted against a client do not count against its server's IP address, for the
same reason. Successful requests are never counted: a busy department is never slowed.

Over a limit the answer is 429 with Retry-After (RFC 6585 4) and an OAuth JSON error:
``slow_down``, the code RFC 8628 3.5 registered for "poll less often" at the token endpoint,
used at the other endpoints too since their errors follow the token endpoint's form
(RFC 7009 2.2.1, RFC 7662 2.3, RFC 7591 3.2.2); RFC 6749 and RFC 6750 define no code for it.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable

from flask import Response, g, make_response, request

from idp import audit, clock
from idp.extensions import db
from idp.security import throttle
from idp.settings import current_settings

WHO = {
    "ip": "from your network (IP address)",
    "client": "by this client",
}


def mark_unknown_token() -> None:
    """The client presented a token that is not one of ours: a failure, even where the
    answer is 200."""
    g.unknown_token = True


# Addresses this process found under their limit, until when (clock.time()). A busy client's
# every request would otherwise read the shared store before anything else; instead an address
# is looked up once per IDP_CACHE_CHECK_SECONDS, and at once after any failure of its own here.
# Failures counted by other processes reach this one within that time: an address spreading
# its guesses over N processes gets at most that long of extra answers on each.
_clear_until: dict[str, float] = {}
_clear_lock = threading.Lock()
_CLEAR_MEMORY = 10_000  # addresses kept at most; the memory is dropped whole beyond that


def _recently_clear(ip: str) -> bool:
    with _clear_lock:
        return _clear_until.get(ip, 0.0) > clock.time()


def _remember_clear(ip: str) -> None:
    seconds = current_settings().cache_check_seconds
    if seconds <= 0:
        return
    with _clear_lock:
        if len(_clear_until) >= _CLEAR_MEMORY:
            _clear_until.clear()
        _clear_until[ip] = clock.time() + seconds


def _forget_clear(ip: str) -> None:
    with _clear_lock:
        _clear_until.pop(ip, None)


def limit_failures(endpoint: str, *, per_client: bool = False) -> Callable:
    """Wrap an endpoint's view: refuse an IP address over its limit, count what the view
    refused, and answer a failing request of a client over its own limit with 429.

    per_client: the endpoint authenticates clients (token, introspect, revoke), so a client
    that proved its identity has its own limit and its failures count against it.
    """

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def limited(*args, **kwargs) -> Response:
            ip = request.remote_addr or ""
            if not _recently_clear(ip):
                decision = throttle.check_endpoint(ip)
                if not decision.allowed:
                    return slow_down(decision)
                _remember_clear(ip)
            response = make_response(view(*args, **kwargs))
            if response.status_code >= 400 or g.get("unknown_token"):
                # Set by the authorization server once the client authenticated
                # (idp/oidc/authorization_server.py), never for a public client.
                client_id = g.get("authenticated_client_id") if per_client else None
                if client_id:
                    decision = throttle.check_endpoint(ip, client_id)
                    if not decision.allowed:
                        db.session.rollback()  # as _count: the refusal saves nothing
                        return slow_down(decision)
                _count(endpoint, None if client_id else ip, client_id)
            return response

        return limited

    return wrap


def _count(endpoint: str, ip: str | None, client_id: str | None) -> None:
    """Count a failure against the IP address or the client; the moment a limit is reached
    is recorded (once per window, so an attack cannot flood the audit record with its
    refusals)."""
    # A refused request's unsaved changes (a code or refresh token it began to spend) are
    # dropped, as at the end of any request: the counter's commit must not save them.
    db.session.rollback()
    if ip is not None:
        _forget_clear(ip)
    reached = throttle.record_endpoint_failure(ip, client_id)
    if reached:
        audit.record(
            "endpoint.throttled",
            "failure",
            reason=f"too many failed requests ({reached})",
            endpoint=endpoint,
            client_id=client_id if reached == "client" else None,
            window=current_settings().endpoint_window_seconds,
        )


def slow_down(decision: throttle.Decision) -> Response:
    """429 with Retry-After and an OAuth error saying who is limited and for how long."""
    description = (
        f"Too many failed requests {WHO.get(decision.reason, '')}: wait"
        f" {decision.retry_after} seconds before trying again. Successful requests are not"
        " limited."
    )
    return Response(
        json.dumps({"error": "slow_down", "error_description": description}),
        status=429,
        headers={
            "Content-Type": "application/json",
            "Retry-After": str(decision.retry_after),
            "Cache-Control": "no-store",
        },
    )

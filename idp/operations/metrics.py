"""Prometheus metrics: security events, sign-ins, tokens issued and per-endpoint latency.

Every security event goes through ``idp.audit.record``, which calls ``count_event``; so
``idp_audit_events_total{event,outcome}`` counts sign-ins, failures, lockouts, tokens issued and
the rest. Two convenience counters are derived from the same call:
``idp_sign_ins_total{outcome}`` and ``idp_tokens_issued_total{grant}``.

``init_metrics(app)`` times every request in ``idp_request_duration_seconds{endpoint,method,
status}``, labelled with the Flask endpoint name (never the raw path: paths carry ids), and
serves ``GET /metrics`` in the Prometheus text format.

/metrics is not public. It answers only

* a request from a loopback address that did not pass through a reverse proxy (no
  ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` header), or
* a request carrying ``Authorization: Bearer <IDP_METRICS_TOKEN>`` when that Flask setting is
  a non-empty string (compared in constant time).

Anything else gets a 404, as if the page did not exist. A reverse proxy on the same host that
strips or never sets forwarding headers would make every visitor look local: such a proxy
must not forward /metrics.

Several processes (gunicorn): each worker has its own counters. Set the environment variable
``PROMETHEUS_MULTIPROC_DIR`` to an empty, writable directory before the workers start (before
``prometheus_client`` is imported) and prometheus_client's documented multiprocess mode takes
over: every worker writes its values to files there, and /metrics merges them with a
``MultiProcessCollector`` rather than reading the default registry. Empty the directory on each
deployment start, and call ``prometheus_client.multiprocess.mark_process_dead(worker.pid)``
from gunicorn's ``child_exit`` hook. Without the variable (waitress, one process with threads,
as ``idp serve`` runs) the default registry is served.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time

from flask import Flask, Response, abort, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

METRICS_PATH = "/metrics"
METRICS_ENDPOINT = "idp_metrics"
# At most this many distinct event (and outcome) label values; later newcomers count as "other".
MAX_EVENT_LABELS = 200
MAX_OUTCOME_LABELS = 20
MAX_LABEL_LENGTH = 100
OTHER = "other"
# Methods are client supplied: anything unusual is one label, not one time series each.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
# Web latency: 5 ms to 10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

SIGN_IN_EVENTS = frozenset({"sign_in.succeeded", "sign_in.failed", "sign_in.passkey_succeeded"})
TOKEN_GRANTS = {"token.issued": "authorization_code", "token.refreshed": "refresh_token"}

_EXTENSION_KEY = "idp_metrics"
_START_KEY = "_idp_metrics_started"

# Registered once, at import, on the default registry: many create_app calls share them.
AUDIT_EVENTS = Counter(
    "idp_audit_events",
    "Security events recorded in the audit log, by event name and outcome.",
    ["event", "outcome"],
)
SIGN_INS = Counter(
    "idp_sign_ins",
    "Citizen sign-in attempts (password or passkey), by outcome.",
    ["outcome"],
)
TOKENS_ISSUED = Counter(
    "idp_tokens_issued",
    "Tokens issued at the token endpoint, by grant type.",
    ["grant"],
)
REQUEST_DURATION = Histogram(
    "idp_request_duration_seconds",
    "Time to answer an HTTP request, by Flask endpoint, method and status code.",
    ["endpoint", "method", "status"],
    buckets=LATENCY_BUCKETS,
)

logger = logging.getLogger("idp.metrics")  # the name its log lines have always carried
_labels_lock = threading.Lock()
_seen_events: set[str] = set()
_seen_outcomes: set[str] = set()


def _bounded(value: str, seen: set[str], limit: int) -> str:
    """value itself while fewer than limit distinct values were seen, else "other"."""
    if not isinstance(value, str) or not value or len(value) > MAX_LABEL_LENGTH:
        return OTHER
    if value in seen:
        return value
    with _labels_lock:
        if value in seen:
            return value
        if len(seen) >= limit:
            return OTHER
        seen.add(value)
        return value


def count_event(event: str, outcome: str) -> None:
    """Count one security event (called by ``idp.audit.record``); never raises."""
    try:
        event_label = _bounded(event, _seen_events, MAX_EVENT_LABELS)
        outcome_label = _bounded(outcome, _seen_outcomes, MAX_OUTCOME_LABELS)
        AUDIT_EVENTS.labels(event=event_label, outcome=outcome_label).inc()
        if event in SIGN_IN_EVENTS:
            SIGN_INS.labels(outcome=outcome_label).inc()
        grant = TOKEN_GRANTS.get(event)
        if grant is not None:
            TOKENS_ISSUED.labels(grant=grant).inc()
    except Exception:  # metrics must never break an audit record
        logger.exception("could not count the event %r in the metrics", event)


def render_metrics() -> tuple[bytes, str]:
    """The exposition text and its content type, merged across processes in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _is_loopback(address: str | None) -> bool:
    """Whether a peer address is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _may_read_metrics(app: Flask) -> bool:
    """Loopback without a proxy in between, or the configured bearer token."""
    token = app.config.get("IDP_METRICS_TOKEN") or ""
    if isinstance(token, str) and token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return True
    proxied = any(name in request.headers for name in FORWARDING_HEADERS)
    return not proxied and _is_loopback(request.remote_addr)


def _start_timer() -> None:
    """Note when the request started."""
    # Real elapsed time (request duration), not idp.clock.
    setattr(g, _START_KEY, time.perf_counter())


def _observe(response: Response) -> Response:
    """Record the request's duration under its endpoint name (not its path)."""
    started = getattr(g, _START_KEY, None)
    if started is None or request.endpoint == METRICS_ENDPOINT:
        return response
    method = request.method if request.method in KNOWN_METHODS else OTHER
    REQUEST_DURATION.labels(
        endpoint=request.endpoint or "unknown",
        method=method,
        status=str(response.status_code),
    ).observe(time.perf_counter() - started)
    return response


def init_metrics(app: Flask) -> None:
    """Time every request of app and serve /metrics; a second call on the same app does nothing."""
    if app.extensions.get(_EXTENSION_KEY):
        return
    app.extensions[_EXTENSION_KEY] = True
    # First, so the clock starts even when an earlier hook answers the request itself.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_timer)
    app.after_request(_observe)

    def metrics() -> Response:
        """The Prometheus exposition, for loopback or the bearer of IDP_METRICS_TOKEN only."""
        if not _may_read_metrics(app):
            abort(404)
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)

    app.add_url_rule(METRICS_PATH, endpoint=METRICS_ENDPOINT, view_func=metrics, methods=["GET"])

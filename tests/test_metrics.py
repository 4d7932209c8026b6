"""Prometheus metrics: event counters, per-endpoint latency, and who may read /metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from flask import Flask
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from idp import create_app
from idp.operations import metrics
from idp.settings import load_settings
from tests.conftest import LiveIdP, serve_idp

TOKEN = "a-long-random-metrics-token"
OUTSIDE = {"REMOTE_ADDR": "203.0.113.5"}


def sample(name: str, **labels: str) -> float:
    """A sample's current value in the default registry, 0 when absent."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scraped_counts(text: str) -> dict[tuple[str, str, str], float]:
    """idp_request_duration_seconds_count by (endpoint, method, status) from exposition text."""
    counts = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "idp_request_duration_seconds_count":
                key = (s.labels["endpoint"], s.labels["method"], s.labels["status"])
                counts[key] = s.value
    return counts


def small_app(tmp_path, **overrides) -> Flask:
    """An IdP app without a database, with metrics switched on."""
    settings = load_settings(
        config_file=os.devnull, instance_path=str(tmp_path), departments_file="", **overrides
    )
    app = create_app(settings)
    metrics.init_metrics(app)
    return app


@pytest.fixture(scope="module")
def metered_idp(database_url, tmp_path_factory) -> Iterator[LiveIdP]:
    """An IdP served over HTTP on loopback with metrics on (before any request reaches it)."""
    served = serve_idp(database_url, str(tmp_path_factory.mktemp("metrics")))
    metrics.init_metrics(served.app)  # no-op once create_app calls it itself
    yield served
    served.close()


def test_events_are_counted_with_sign_ins_and_tokens_derived():
    before = {
        "failed": sample("idp_audit_events_total", event="sign_in.failed", outcome="failure"),
        "sign_in_failure": sample("idp_sign_ins_total", outcome="failure"),
        "sign_in_success": sample("idp_sign_ins_total", outcome="success"),
        "code": sample("idp_tokens_issued_total", grant="authorization_code"),
        "refresh": sample("idp_tokens_issued_total", grant="refresh_token"),
    }
    metrics.count_event("sign_in.failed", "failure")
    metrics.count_event("sign_in.succeeded", "success")
    metrics.count_event("sign_in.passkey_succeeded", "success")
    metrics.count_event("token.issued", "success")
    metrics.count_event("token.refreshed", "success")
    metrics.count_event("token.refreshed", "success")
    metrics.count_event("consent.given", "success")

    assert (
        sample("idp_audit_events_total", event="sign_in.failed", outcome="failure")
        == before["failed"] + 1
    )
    assert sample("idp_sign_ins_total", outcome="failure") == before["sign_in_failure"] + 1
    assert sample("idp_sign_ins_total", outcome="success") == before["sign_in_success"] + 2
    assert sample("idp_tokens_issued_total", grant="authorization_code") == before["code"] + 1
    assert sample("idp_tokens_issued_total", grant="refresh_token") == before["refresh"] + 2
    assert sample("idp_audit_events_total", event="consent.given", outcome="success") >= 1


def test_event_labels_are_bounded(monkeypatch):
    # A fresh, small budget: the process-wide one stays free for real events.
    monkeypatch.setattr(metrics, "_seen_events", set())
    monkeypatch.setattr(metrics, "MAX_EVENT_LABELS", 3)
    before = sample("idp_audit_events_total", event=metrics.OTHER, outcome="success")
    for i in range(5):
        metrics.count_event(f"made.up.event_{i}", "success")
    metrics.count_event("x" * 500, "success")
    metrics.count_event("made.up.event_0", "success")

    assert metrics._seen_events == {f"made.up.event_{i}" for i in range(3)}
    assert sample("idp_audit_events_total", event="made.up.event_0", outcome="success") >= 2
    assert sample("idp_audit_events_total", event="made.up.event_4", outcome="success") == 0
    other = sample("idp_audit_events_total", event=metrics.OTHER, outcome="success")
    assert other == before + 3


def test_requests_are_timed_by_endpoint_name_and_metrics_is_readable_on_loopback(metered_idp):
    with httpx.Client(timeout=10) as http:
        assert http.get(metered_idp.url("/.well-known/openid-configuration")).status_code == 200
        assert http.get(metered_idp.url("/jwks.json")).status_code == 200
        assert http.get(metered_idp.url("/no/such/page/12345")).status_code == 404
        scraped = http.get(metered_idp.url("/metrics"))
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        # /metrics itself is not timed.
        counts = scraped_counts(http.get(metered_idp.url("/metrics")).text)

    assert counts[("discovery.openid_configuration", "GET", "200")] >= 1
    assert counts[("jwks.jwks", "GET", "200")] >= 1
    assert counts[("unknown", "GET", "404")] >= 1
    assert not any(endpoint == metrics.METRICS_ENDPOINT for endpoint, _, _ in counts)
    assert not any("12345" in endpoint for endpoint, _, _ in counts)
    assert "idp_audit_events_total" in scraped.text


def test_metrics_is_hidden_from_other_addresses_and_proxied_requests(tmp_path):
    app = small_app(tmp_path)
    client = app.test_client()
    assert client.get("/metrics", environ_base=OUTSIDE).status_code == 404
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 404
    # No token configured: a bearer token opens nothing.
    response = client.get("/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1


def test_metrics_answers_the_configured_bearer_token(tmp_path):
    app = small_app(tmp_path, metrics_token=TOKEN)
    client = app.test_client()

    def get(authorization: str | None):
        headers = {"Authorization": authorization} if authorization else {}
        return client.get("/metrics", environ_base=OUTSIDE, headers=headers)

    allowed = get(f"Bearer {TOKEN}")
    assert allowed.status_code == 200
    assert allowed.content_type.startswith("text/plain")
    assert b"idp_request_duration_seconds" in allowed.data
    assert get(None).status_code == 404
    assert get("Bearer wrong-token").status_code == 404
    assert get(f"Basic {TOKEN}").status_code == 404
    assert get(f"Bearer {TOKEN}x").status_code == 404


def test_init_metrics_twice_on_one_app_is_harmless(tmp_path):
    app = small_app(tmp_path)
    metrics.init_metrics(app)
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule == "/metrics"]
    assert len(rules) == 1
    assert app.before_request_funcs[None].count(metrics._start_timer) == 1
    assert app.after_request_funcs[None].count(metrics._observe) == 1
    before = sample(
        "idp_request_duration_seconds_count", endpoint="unknown", method="GET", status="404"
    )
    app.test_client().get("/not-here")
    after = sample(
        "idp_request_duration_seconds_count", endpoint="unknown", method="GET", status="404"
    )
    assert after == before + 1


@pytest.mark.processes
def test_multiprocess_mode_merges_the_workers_files(tmp_path):
    script = (
        "from idp.operations import metrics\n"
        "metrics.count_event('sign_in.failed', 'failure')\n"
        "body, _ = metrics.render_metrics()\n"
        "print(body.decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):  # two "workers", one after the other, sharing the directory
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
    assert any(tmp_path.iterdir()), "the workers wrote no metric files"
    assert 'idp_sign_ins_total{outcome="failure"} 2.0' in result.stdout

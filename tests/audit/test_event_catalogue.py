"""The catalogue of audit events (idp/audit/events.py): every event the IdP records is declared
once, with its outcomes and details; record() refuses any other on a developer's machine (and
in every test), and in production records it anyway and logs the error, so no event is lost."""

from __future__ import annotations

import ast
import dataclasses
import logging
from pathlib import Path

import pytest

from idp import audit
from idp.audit import events
from idp.departments.services import _TRANSITIONS
from idp.extensions import db
from idp.models import AuditEntry
from idp.settings import load_settings

IDP = Path(__file__).resolve().parents[2] / "idp"
# record()'s own parameters: columns of the entry, not details.
COLUMNS = {"outcome", "reason", "citizen_id", "client_id", "sid", "level", "methods"}


def record_calls() -> list[tuple[str, int, ast.Call]]:
    """Every audit.record(...) call in idp/: (file, line, call)."""
    calls = []
    for path in sorted(IDP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
            ):
                calls.append((str(path.relative_to(IDP.parent)), node.lineno, node))
    return calls


def literal_outcome(call: ast.Call) -> str | None:
    """The outcome written at the call (success when none is), None when computed."""
    given = call.args[1] if len(call.args) > 1 else None
    given = next((k.value for k in call.keywords if k.arg == "outcome"), given)
    if given is None:
        return "success"
    return given.value if isinstance(given, ast.Constant) else None


def test_every_record_call_names_a_catalogued_event_with_its_outcome_and_details():
    calls = record_calls()
    named = [(f, line, c) for f, line, c in calls if isinstance(c.args[0], ast.Constant)]
    assert len(named) > 60, "the call sites were found"
    problems = []
    for file, line, call in named:
        name = call.args[0].value
        event = events.EVENTS.get(name)
        if event is None:
            problems.append(f"{file}:{line}: {name!r} is not in idp/audit/events.py")
            continue
        outcome = literal_outcome(call)
        if outcome is not None and outcome not in event.outcomes:
            problems.append(f"{file}:{line}: {name!r} has no outcome {outcome!r}")
        keys = {k.arg for k in call.keywords if k.arg is not None} - COLUMNS
        if keys - set(event.details):
            problems.append(
                f"{file}:{line}: {name!r} undeclared details {sorted(keys - set(event.details))}"
            )
    assert problems == []


def test_the_computed_event_names_are_catalogued_too():
    # f"client.{past}" in idp/departments/services.py, one per status change.
    for *_, past in _TRANSITIONS.values():
        assert f"client.{past}" in events.EVENTS
    # The rest are named in string constants beside their calls (refusals, replays, tokens).
    for name in (
        "passkey.failed",
        "passkey.sign_count_regressed",
        "authorization_code.replayed",
        "refresh_token.replayed",
        "token.issued",
        "token.refreshed",
        "token.failed",
        "revocation.failed",
        "introspection.failed",
        "audit.exported",
    ):
        assert name in events.EVENTS


def test_the_idp_never_records_a_test_event_and_names_follow_the_convention():
    for file, line, call in record_calls():
        name = call.args[0]
        if isinstance(name, ast.Constant):
            assert not name.value.startswith(events.TEST_PREFIX), f"{file}:{line}"
    for name, event in events.EVENTS.items():
        assert event.description and event.outcomes, name
        assert set(event.outcomes) <= {"success", "failure"}, name
        assert len(name) <= 64, name  # the event column's width
    for new, olds in events.FORMER_NAMES.items():
        assert new in events.EVENTS
        assert all(old not in events.EVENTS for old, _ in olds)


def stored(idp, event: str) -> list[AuditEntry]:
    with idp.app.app_context():
        return list(db.session.scalars(db.select(AuditEntry).filter_by(event=event)))


@pytest.mark.parametrize(
    ("event", "outcome", "message"),
    [
        ("staff.sign_on", "success", "unknown audit event 'staff.sign_on'"),
        (
            "staff.sign_in",
            "success",
            "unknown audit event 'staff.sign_in' (renamed staff.sign_in.succeeded, "
            "staff.sign_in.failed)",
        ),
        ("consent.given", "failure", "audit event 'consent.given' has no outcome 'failure'"),
    ],
)
def test_record_refuses_an_unknown_event_in_development_and_tests(idp, event, outcome, message):
    with idp.app.app_context(), pytest.raises(events.UnknownEvent) as refused:
        audit.record(event, outcome, citizen_id=None)
    assert str(refused.value).startswith(message)
    assert "idp/audit/events.py" in str(refused.value)
    assert stored(idp, event) == []
    # Outside an app (a script, a test without one) too.
    with pytest.raises(events.UnknownEvent):
        audit.record(event, outcome)


def test_in_production_an_unknown_event_is_recorded_anyway_and_logged(idp, monkeypatch, caplog):
    production = dataclasses.replace(
        idp.app.config["IDP_SETTINGS"], issuer="https://idp.example.gov.uk"
    )
    monkeypatch.setitem(idp.app.config, "IDP_SETTINGS", production)
    with caplog.at_level(logging.ERROR, logger="idp.audit.store"), idp.app.app_context():
        audit.record("made.up_event", "failure", citizen_id=None, n=1)
    [kept] = stored(idp, "made.up_event")
    assert (kept.outcome, kept.details) == ("failure", {"n": 1})
    assert "unknown audit event 'made.up_event'" in caplog.text
    assert "recorded anyway" in caplog.text


@pytest.mark.parametrize(
    ("issuer", "env", "strict"),
    [
        ("http://127.0.0.1:8000", None, True),
        ("https://idp.example.gov.uk", None, False),
        ("https://idp.example.gov.uk", "true", True),
        ("http://localhost:8000", "false", False),
    ],
)
def test_strictness_is_a_setting_that_defaults_to_the_issuer_on_loopback(
    monkeypatch, tmp_path, issuer, env, strict
):
    monkeypatch.delenv("IDP_AUDIT_STRICT_EVENTS", raising=False)
    if env is not None:
        monkeypatch.setenv("IDP_AUDIT_STRICT_EVENTS", env)
    settings = load_settings(config_file=tmp_path / "none.toml", issuer=issuer)
    assert settings.strict_audit_events is strict


def test_a_strict_production_refuses_an_unknown_event(idp, monkeypatch):
    strict = dataclasses.replace(
        idp.app.config["IDP_SETTINGS"],
        issuer="https://idp.example.gov.uk",
        audit_strict_events=True,
    )
    monkeypatch.setitem(idp.app.config, "IDP_SETTINGS", strict)
    with idp.app.app_context(), pytest.raises(events.UnknownEvent):
        audit.record("made.up_event", "failure", citizen_id=None)
    assert stored(idp, "made.up_event") == []

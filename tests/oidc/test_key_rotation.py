"""Signing key rotation as departments see it: the JWKS over HTTP and the ID tokens they get.

Rotation changes the keys every other test relies on, so these tests run on an IdP of their
own (own database, SQLite and PostgreSQL) whose keys start afresh for each test. Time moves by
changing the keys' times in the database, as the hours of a real rotation would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from click.testing import Result
from sqlalchemy import update

from idp.cli import cli
from idp.extensions import db
from idp.models import SigningKey
from idp.models.timestamps import utcnow
from idp.oidc.client_keys import forget_cached_keys
from idp.oidc.keys import (
    KeyRotationError,
    ensure_signing_keys,
    forget_public_jwks,
    rotate_signing_keys,
)
from idp.operations.housekeeping import purge_expired
from idp.settings import Settings, current_settings
from tests.conftest import LiveIdP, _drop_postgres, _postgres_or_skip, serve_idp
from tests.support.oidc_client import DepartmentClient


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rotation_idp(request, tmp_path_factory) -> Iterator[LiveIdP]:
    """An IdP with a database of its own, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('rotation-db') / 'idp.sqlite3'}"
    else:
        url = _postgres_or_skip()
    served = serve_idp(url, str(tmp_path_factory.mktemp("rotation")))
    yield served
    served.close()
    if request.param == "postgresql":
        _drop_postgres(url)


@pytest.fixture
def idp(rotation_idp) -> Iterator[LiveIdP]:
    """The rotation IdP with empty tables and fresh signing keys (one per algorithm)."""
    with rotation_idp.app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
        ensure_signing_keys()
    forget_cached_keys()
    yield rotation_idp


@pytest.fixture
def es_client(make_client) -> DepartmentClient:
    """A department taking the default ES256 ID tokens."""
    return make_client("dept-es", redirect_uri="https://dept-es.example.gov.uk/callback")


@pytest.fixture
def rs_client(make_client) -> DepartmentClient:
    """A department registered for RS256 ID tokens."""
    return make_client(
        "dept-rs",
        redirect_uri="https://dept-rs.example.gov.uk/callback",
        id_token_signed_response_alg="RS256",
    )


def run_keys(idp: LiveIdP, *args: str) -> Result:
    """`idp keys ARGS` as an operator runs it, against this IdP."""
    return idp.app.test_cli_runner().invoke(cli, ["keys", *args])


def published(idp: LiveIdP) -> dict[str, str]:
    """The JWKS a department fetches: kid to alg."""
    response = httpx.get(idp.url("/jwks.json"))
    assert response.status_code == 200
    return {key["kid"]: key["alg"] for key in response.json()["keys"]}


def rows(idp: LiveIdP) -> dict[str, SigningKey]:
    """Every stored ID-token key by kid (detached copies); the identity-signing key is tested
    at the end of this module."""
    with idp.app.app_context():
        found = db.session.scalars(db.select(SigningKey).filter_by(purpose="id_token")).all()
        db.session.expunge_all()
    return {row.kid: row for row in found}


def set_times(idp: LiveIdP, kid: str, **times: datetime) -> None:
    """Move a key's activates_at or retires_at: time passing, as far as that key goes."""
    with idp.app.app_context():
        db.session.execute(update(SigningKey).where(SigningKey.kid == kid).values(**times))
        db.session.commit()
    # Each process re-reads the JWKS when a key's retirement falls due; a time moved into the
    # past here would otherwise wait for the time it had before.
    forget_public_jwks()


def just_now() -> datetime:
    """Now: a time that has passed by the next request, and after every earlier activation."""
    return utcnow()


def hold(idp: LiveIdP) -> timedelta:
    """How long a replaced key stays published after it stops signing."""
    with idp.app.app_context():
        settings = current_settings()
    longest = max(settings.id_token_lifetime, settings.logout_token_lifetime)
    return timedelta(seconds=longest + settings.clock_skew)


def sign_in(client: DepartmentClient, issue_code) -> tuple[str, dict, dict]:
    """An ID token over HTTP, verified with PyJWT against the published JWKS: token, header
    and claims."""
    attempt, code = issue_code(client)
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    token = response.json()["id_token"]
    claims = client.validate_id_token(token, attempt.nonce)
    return token, jwt.get_unverified_header(token), claims


def signing_kid(client: DepartmentClient, issue_code) -> str:
    """The kid of a fresh ID token for the department (verified against the JWKS)."""
    return sign_in(client, issue_code)[1]["kid"]


def only_key(idp: LiveIdP, alg: str) -> str:
    """The one published kid of an algorithm."""
    kids = [kid for kid, key_alg in published(idp).items() if key_alg == alg]
    assert len(kids) == 1, kids
    return kids[0]


def test_rotation_publishes_first_signs_after_the_lead_time_then_retires_the_old_key(
    idp, es_client, rs_client, issue_code
):
    old = {alg: only_key(idp, alg) for alg in ("ES256", "RS256")}
    result = run_keys(idp, "rotate")
    assert result.exit_code == 0, result.output
    stored = rows(idp)
    new = {row.alg: kid for kid, row in stored.items() if kid not in old.values()}
    assert set(new) == {"ES256", "RS256"}
    for alg in ("ES256", "RS256"):
        assert new[alg] in result.stdout and old[alg] in result.stdout
        lead = stored[new[alg]].activates_at - stored[new[alg]].created_at
        assert abs(lead.total_seconds() - Settings().signing_key_lead_time) < 5
        assert stored[old[alg]].retires_at == stored[new[alg]].activates_at + hold(idp)
    assert "warning" not in result.stderr

    # Published before it signs: departments fetch the new keys, tokens keep the old kids.
    assert set(published(idp)) == set(old.values()) | set(new.values())
    assert signing_kid(es_client, issue_code) == old["ES256"]
    assert signing_kid(rs_client, issue_code) == old["RS256"]

    # The lead time passes: the new keys sign, the old ones stay published for their tokens.
    for kid in new.values():
        set_times(idp, kid, activates_at=just_now())
    assert signing_kid(es_client, issue_code) == new["ES256"]
    assert signing_kid(rs_client, issue_code) == new["RS256"]
    assert set(published(idp)) == set(old.values()) | set(new.values())

    # Every token the old keys signed has expired: they leave the JWKS by themselves.
    for kid in old.values():
        set_times(idp, kid, retires_at=just_now())
    assert set(published(idp)) == set(new.values())
    assert signing_kid(es_client, issue_code) == new["ES256"]
    assert signing_kid(rs_client, issue_code) == new["RS256"]


def test_an_id_token_from_before_a_rotation_verifies_until_it_expires(idp, es_client, issue_code):
    token, header, claims = sign_in(es_client, issue_code)
    result = run_keys(idp, "rotate", "--alg", "ES256", "--lead-time", "0")
    assert result.exit_code == 0, result.output
    assert signing_kid(es_client, issue_code) != header["kid"]
    # A department still verifies the earlier token against the JWKS it fetches now...
    assert es_client.validate_id_token(token, claims["nonce"])["sub"] == claims["sub"]
    # ...and will until after it expires, clock skew included.
    retires_at = rows(idp)[header["kid"]].retires_at
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    assert retires_at >= expires + timedelta(seconds=Settings().clock_skew)


def test_lead_time_zero_signs_at_once_with_a_warning(idp, es_client, rs_client, issue_code):
    before = published(idp)
    result = run_keys(idp, "rotate", "--alg", "RS256", "--lead-time", "0")
    assert result.exit_code == 0, result.output
    assert "signs now" in result.stdout
    assert "warning" in result.stderr and "max-age" in result.stderr
    new_rs = signing_kid(rs_client, issue_code)
    assert new_rs not in before
    assert published(idp)[new_rs] == "RS256"
    # The old RS256 key stays published; ES256 is untouched.
    assert set(before) < set(published(idp))
    assert signing_kid(es_client, issue_code) == only_key(idp, "ES256")


def test_a_short_lead_time_warns_but_proceeds(idp):
    result = run_keys(idp, "rotate", "--alg", "ES256", "--lead-time", "60")
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr
    assert "in 60 s" in result.stdout


def test_a_second_rotation_while_a_key_waits_is_refused(idp):
    assert run_keys(idp, "rotate", "--alg", "ES256").exit_code == 0
    waiting = [kid for kid, row in rows(idp).items() if row.activates_at > utcnow()]
    assert len(waiting) == 1
    count = len(rows(idp))
    again = run_keys(idp, "rotate", "--alg", "ES256")
    assert again.exit_code == 1
    assert "already waiting to sign" in again.stderr
    assert waiting[0] in again.stderr
    # Both algorithms or neither: RS256 is not rotated while ES256 refuses.
    both = run_keys(idp, "rotate")
    assert both.exit_code == 1
    assert "already waiting to sign" in both.stderr
    assert len(rows(idp)) == count
    assert run_keys(idp, "rotate", "--alg", "RS256").exit_code == 0


def test_concurrent_rotations_leave_one_key_waiting(idp):
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def rotate() -> None:
        with idp.app.app_context():
            barrier.wait()
            try:
                rotate_signing_keys(["ES256"], 7200)
                outcomes.append("rotated")
            except KeyRotationError:
                outcomes.append("refused")

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["refused", "refused", "refused", "rotated"]
    waiting = [row for row in rows(idp).values() if row.activates_at > utcnow()]
    assert len(waiting) == 1


def test_retiring_a_compromised_key_withdraws_it_at_once(idp, es_client, issue_code):
    compromised = only_key(idp, "ES256")
    assert run_keys(idp, "rotate", "--alg", "ES256", "--lead-time", "0").exit_code == 0
    replacement = signing_kid(es_client, issue_code)
    assert compromised in published(idp)
    result = run_keys(idp, "retire", compromised)
    assert result.exit_code == 0, result.output
    assert compromised in result.stdout
    assert compromised not in published(idp)
    assert signing_kid(es_client, issue_code) == replacement
    again = run_keys(idp, "retire", compromised)
    assert again.exit_code == 1
    assert "already retired" in again.stderr


def test_retiring_the_signing_key_hands_signing_to_a_published_key(idp, es_client, issue_code):
    earlier = only_key(idp, "ES256")
    assert run_keys(idp, "rotate", "--alg", "ES256", "--lead-time", "0").exit_code == 0
    compromised = signing_kid(es_client, issue_code)
    result = run_keys(idp, "retire", compromised)
    assert result.exit_code == 0, result.output
    assert f"key {earlier} signs from now" in result.stdout
    assert compromised not in published(idp)
    assert signing_kid(es_client, issue_code) == earlier
    # It signs again, so it is no longer due to leave the JWKS.
    assert rows(idp)[earlier].retires_at is None


def test_retiring_the_only_signing_key_needs_force(idp, es_client, rs_client, issue_code):
    only = only_key(idp, "ES256")
    refused = run_keys(idp, "retire", only)
    assert refused.exit_code == 1
    assert "only key that can sign ES256" in refused.stderr
    assert "--force" in refused.stderr
    assert signing_kid(es_client, issue_code) == only
    forced = run_keys(idp, "retire", only, "--force")
    assert forced.exit_code == 0, forced.output
    assert only not in published(idp)
    created = signing_kid(es_client, issue_code)
    assert created != only and published(idp)[created] == "ES256"
    assert created in forced.stdout
    assert "warning" in forced.stderr
    # RS256 signs on with its own key.
    assert signing_kid(rs_client, issue_code) == only_key(idp, "RS256")


def test_retiring_the_signing_key_brings_a_waiting_key_forward(idp, es_client, issue_code):
    old = only_key(idp, "ES256")
    assert run_keys(idp, "rotate", "--alg", "ES256").exit_code == 0
    (waiting,) = set(published(idp)) - {old, only_key(idp, "RS256")}
    result = run_keys(idp, "retire", old)
    assert result.exit_code == 0, result.output
    assert f"key {waiting} signs from now" in result.stdout
    assert signing_kid(es_client, issue_code) == waiting
    assert old not in published(idp)


def test_retiring_a_waiting_key_keeps_the_current_key_signing_and_published(
    idp, es_client, issue_code
):
    current = only_key(idp, "ES256")
    assert run_keys(idp, "rotate", "--alg", "ES256").exit_code == 0
    assert rows(idp)[current].retires_at is not None
    (waiting,) = set(published(idp)) - {current, only_key(idp, "RS256")}
    assert run_keys(idp, "retire", waiting).exit_code == 0
    assert waiting not in published(idp)
    assert rows(idp)[current].retires_at is None
    assert signing_kid(es_client, issue_code) == current
    # With nothing waiting, the next rotation may go ahead.
    assert run_keys(idp, "rotate", "--alg", "ES256").exit_code == 0


def test_keys_list_shows_each_key_and_its_state(idp):
    es_old, rs_old = only_key(idp, "ES256"), only_key(idp, "RS256")
    assert run_keys(idp, "rotate", "--alg", "ES256").exit_code == 0
    assert run_keys(idp, "rotate", "--alg", "RS256", "--lead-time", "0").exit_code == 0
    stored = rows(idp)
    es_new = next(kid for kid, row in stored.items() if row.alg == "ES256" and kid != es_old)
    rs_new = next(kid for kid, row in stored.items() if row.alg == "RS256" and kid != rs_old)
    lines = {line.split()[1]: line for line in run_keys(idp, "list").stdout.splitlines()[1:]}
    assert lines[es_old].split()[2] == "signing"
    assert lines[es_new].split()[2] == "waiting"
    assert lines[rs_new].split()[2] == "signing"
    until = f"{stored[rs_old].retires_at:%Y-%m-%d %H:%M:%S}"
    assert f"published-only until {until}" in lines[rs_old]
    assert run_keys(idp, "retire", rs_old).exit_code == 0
    listed = run_keys(idp, "list").stdout
    retired = next(line for line in listed.splitlines() if rs_old in line)
    assert "retired" in retired and "(withdrawn)" in retired


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rotate", "--alg", "HS256"], "Invalid value for '--alg'"),
        (["rotate", "--lead-time", "-1"], "the lead time must be 0 seconds or more"),
        (["rotate", "--lead-time", "soon"], "is not a valid integer"),
        (["retire", "no-such-kid"], "no signing key with kid 'no-such-kid'"),
        (["retire"], "Missing argument 'KID'"),
    ],
)
def test_bad_keys_commands_are_refused_with_a_message(idp, args, message):
    before = {kid: (row.activates_at, row.retires_at) for kid, row in rows(idp).items()}
    result = run_keys(idp, *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output
    after = {kid: (row.activates_at, row.retires_at) for kid, row in rows(idp).items()}
    assert after == before


def test_every_idp_process_agrees_on_the_keys(idp):
    with idp.app.app_context():
        settings = current_settings()
    # Another process behind the same load balancer: same database, same instance folder.
    twin = serve_idp(settings.sqlalchemy_url, settings.instance_path)
    try:
        old = only_key(idp, "ES256")
        assert run_keys(idp, "rotate", "--alg", "ES256", "--lead-time", "0").exit_code == 0
        first, second = httpx.get(idp.url("/jwks.json")), httpx.get(twin.url("/jwks.json"))
        assert first.json() == second.json()
        assert old in first.text
        assert first.headers["etag"] == second.headers["etag"]
        # A department's cached copy is current at either process.
        cached = {"If-None-Match": first.headers["etag"]}
        assert httpx.get(twin.url("/jwks.json"), headers=cached).status_code == 304
        set_times(idp, old, retires_at=just_now())
        assert old not in httpx.get(twin.url("/jwks.json")).text
        assert httpx.get(twin.url("/jwks.json"), headers=cached).status_code == 200
    finally:
        twin.close()


def test_purge_erases_the_private_parts_of_retired_keys_only(idp, es_client, issue_code):
    old = only_key(idp, "ES256")
    assert run_keys(idp, "rotate", "--alg", "ES256", "--lead-time", "0").exit_code == 0
    with idp.app.app_context():
        assert purge_expired()["signing_key_private_parts"] == 0
    set_times(idp, old, retires_at=just_now())
    with idp.app.app_context():
        assert purge_expired()["signing_key_private_parts"] == 1
    stored = rows(idp)
    assert stored[old].private_jwk_encrypted == ""
    assert stored[old].public_jwk["kid"] == old
    assert all(row.private_jwk_encrypted for kid, row in stored.items() if kid != old)
    assert signing_kid(es_client, issue_code) in published(idp)


# -- The identity-signing key (coreIdentityJWT), rotated the same way, published apart ---------


def identity_kids(idp: LiveIdP) -> list[str]:
    """The thumbprints of the identity keys in the DID document."""
    document = httpx.get(idp.url("/.well-known/did.json")).json()
    return [method["id"].partition("#")[2] for method in document["assertionMethod"]]


def test_the_identity_key_rotates_and_retires_in_the_did_document_only(idp):
    (first,) = identity_kids(idp)
    result = run_keys(idp, "rotate", "--alg", "identity")
    assert result.exit_code == 0, result.output
    assert "identity: new key" in result.stdout
    second = next(kid for kid in identity_kids(idp) if kid != first)
    assert identity_kids(idp) == [first, second]  # published before it signs
    # Never in the ID-token JWKS, and ID-token keys never in the DID document.
    assert not {first, second} & set(published(idp))
    assert not set(published(idp)) & set(identity_kids(idp))
    lines = {
        line.split()[1]: line.split() for line in run_keys(idp, "list").stdout.splitlines()[1:]
    }
    assert lines[first][:1] + lines[first][2:3] == ["identity", "signing"]
    assert lines[second][:1] + lines[second][2:3] == ["identity", "waiting"]

    retired = run_keys(idp, "retire", first)
    assert retired.exit_code == 0, retired.output
    assert identity_kids(idp) == [second]
    assert f"identity: key {second} signs from now" in retired.stdout

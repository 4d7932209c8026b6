"""Purging expired rows keeps what is still needed (replay detection) and drops the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, update

from idp.extensions import db
from idp.models import AuthorizationCode, EmailCode, Token
from idp.models.timestamps import utcnow
from idp.operations.housekeeping import purge_expired
from tests.support.browser import CitizenBrowser

pytestmark = pytest.mark.both_databases


def count(model) -> int:
    """Rows of a model."""
    return db.session.scalar(db.select(func.count()).select_from(model))


def test_purge_keeps_live_rows_and_deletes_expired_ones(idp, make_citizen, make_client):
    citizen = make_citizen()
    client = make_client()
    attempt = client.authorization()
    cb = CitizenBrowser(idp.issuer).authorize(attempt.url, citizen["email"], citizen["password"])
    assert client.token_request(cb.params["code"], attempt.code_verifier).status_code == 200
    with idp.app.app_context():
        purge_expired()
        assert count(AuthorizationCode) == 1, "a used code is kept while its tokens live"
        assert count(Token) == 1
        long_ago = utcnow() - timedelta(days=1)
        db.session.execute(update(AuthorizationCode).values(expires_at=long_ago))
        db.session.execute(update(Token).values(expires_at=long_ago))
        db.session.commit()
        counts = purge_expired()
        assert counts["authorization_codes"] == 1
        assert counts["tokens"] == 1
        assert count(AuthorizationCode) == 0


def test_a_code_that_started_a_refresh_family_is_kept_while_the_family_may_live(
    idp, make_citizen, make_client
):
    # A replay of the code must still be recognised, to revoke the family (RFC 6749 4.1.2).
    citizen = make_citizen()
    client = make_client(grant_types=["authorization_code", "refresh_token"])
    attempt = client.authorization()
    cb = CitizenBrowser(idp.issuer).authorize(attempt.url, citizen["email"], citizen["password"])
    assert "refresh_token" in client.token_request(cb.params["code"], attempt.code_verifier).json()
    with idp.app.app_context():
        settings = idp.app.config["IDP_SETTINGS"]
        assert settings.refresh_token_lifetime > settings.access_token_lifetime + 60
        past_tokens = utcnow() - timedelta(seconds=settings.access_token_lifetime + 60)
        db.session.execute(update(AuthorizationCode).values(expires_at=past_tokens))
        db.session.execute(update(Token).values(expires_at=past_tokens))
        db.session.commit()
        assert purge_expired()["authorization_codes"] == 0
        past_family = utcnow() - timedelta(seconds=settings.refresh_token_lifetime + 60)
        db.session.execute(update(AuthorizationCode).values(expires_at=past_family))
        db.session.commit()
        assert purge_expired()["authorization_codes"] == 1


def test_expired_email_codes_are_deleted_and_live_ones_kept(app):
    with app.app_context():
        now = utcnow()
        for name, expires in (("old", now - timedelta(minutes=1)), ("live", now + timedelta(1))):
            db.session.add(
                EmailCode(
                    handle_hash=name * 8,
                    purpose="sign_up",
                    email=f"{name}@example.com",
                    expires_at=expires,
                )
            )
        db.session.commit()
        assert purge_expired()["email_codes"] == 1
        left = db.session.scalars(db.select(EmailCode.email)).all()
    assert left == ["live@example.com"]

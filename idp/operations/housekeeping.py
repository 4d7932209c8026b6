"""Deleting what can no longer be used: expired journeys, codes (authorization, email and text
message), passkey challenges, tokens, sessions, jtis, sign-in throttling counters and identity
checks ended more than a day ago.

Initial access tokens are kept (used, expired or revoked) as the record of who was allowed
to register what. Signing keys that never sign again (withdrawn, or past their retirement) lose
their private part; their rows (public key, dates) stay as the record of which key signed what."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_migrate import upgrade
from sqlalchemy import delete, or_, update

from idp.accounts.identity.logic import FAILED_CHECKS_WINDOW
from idp.extensions import db
from idp.models import (
    AuthorizationCode,
    BrowserSession,
    EmailCode,
    IdentityCheck,
    Interaction,
    LogoutDelivery,
    SigningKey,
    SmsCode,
    StaffSession,
    ThrottleCounter,
    Token,
    UsedClientAssertion,
    WebAuthnChallenge,
)
from idp.models.timestamps import utcnow
from idp.oidc.keys import ensure_signing_keys
from idp.settings import current_settings

# Ended and expired sessions stay this long, so a citizen can see recent sign-ins.
ENDED_SESSION_RETENTION = timedelta(days=30)


def purge_expired() -> dict[str, int]:
    """Delete expired rows; returns how many of each kind went."""
    settings = current_settings()
    now = utcnow()
    # A used code must outlive the tokens it issued, so a replay can still revoke them.
    code_horizon = now - timedelta(seconds=settings.access_token_lifetime)
    # One that started a refresh token family outlives the family too (it ends at most
    # refresh_token_lifetime after the code was redeemed).
    family_horizon = now - timedelta(seconds=settings.refresh_token_lifetime)
    statements = {
        "interactions": delete(Interaction).where(Interaction.expires_at < now),
        "tokens": delete(Token).where(Token.expires_at < now),
        "authorization_codes": delete(AuthorizationCode).where(
            AuthorizationCode.expires_at < code_horizon,
            or_(
                AuthorizationCode.refresh_family.is_(None),
                AuthorizationCode.expires_at < family_horizon,
            ),
        ),
        "email_codes": delete(EmailCode).where(EmailCode.expires_at < now),
        "sms_codes": delete(SmsCode).where(SmsCode.expires_at < now),
        "webauthn_challenges": delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at < now),
        "client_assertions": delete(UsedClientAssertion).where(
            UsedClientAssertion.expires_at < now
        ),
        "sessions": delete(BrowserSession).where(
            or_(
                BrowserSession.ended_at < now - ENDED_SESSION_RETENTION,
                BrowserSession.expires_at < now - ENDED_SESSION_RETENTION,
            )
        ),
        # Delivered or failed back-channel logouts (and their attempts) are kept as long as
        # the sessions they announced.
        "logout_deliveries": delete(LogoutDelivery).where(
            LogoutDelivery.finished_at < now - ENDED_SESSION_RETENTION
        ),
        "staff_sessions": delete(StaffSession).where(
            or_(
                StaffSession.ended_at < now - ENDED_SESSION_RETENTION,
                StaffSession.expires_at < now - ENDED_SESSION_RETENTION,
            )
        ),
        # A counter outlives its lock (expires_at is never before locked_until).
        "throttle_counters": delete(ThrottleCounter).where(
            ThrottleCounter.expires_at < now,
            or_(ThrottleCounter.locked_until.is_(None), ThrottleCounter.locked_until < now),
        ),
        # Identity checks ended or abandoned, once the daily limit on failed checks no longer
        # counts them: their state holds the credentials (the details typed, and any document
        # number guessed); what was proved is kept apart (IdentityRecord), what happened in
        # the audit record.
        "identity_checks": delete(IdentityCheck).where(
            IdentityCheck.started_at < now - FAILED_CHECKS_WINDOW,
            or_(IdentityCheck.outcome.is_not(None), IdentityCheck.expires_at < now),
        ),
        # Keys withdrawn or past retires_at never sign (nor are published) again.
        "signing_key_private_parts": update(SigningKey)
        .where(
            or_(SigningKey.retired_at.is_not(None), SigningKey.retires_at <= now),
            SigningKey.private_jwk_encrypted != "",
        )
        .values(private_jwk_encrypted=""),
    }
    counts = {name: db.session.execute(stmt).rowcount for name, stmt in statements.items()}
    db.session.commit()
    return counts


def prepare_database() -> None:
    """Bring the schema up to date and make sure signing keys exist."""
    upgrade(directory=current_app.extensions["migrate"].directory)
    ensure_signing_keys()
    purge_expired()

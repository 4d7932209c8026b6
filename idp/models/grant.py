"""Authorization codes and the access tokens issued for them."""

from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, TokenMixin
from sqlalchemy import JSON, ForeignKey, String, Text, update
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.extensions import db
from idp.models.citizen import Citizen
from idp.models.client import Client, registered_client
from idp.models.timestamps import UTCDateTime, utcnow


class AuthorizationCodeMethods(AuthorizationCodeMixin):
    """What Authlib asks of an authorization code, for the stored row (AuthorizationCode) and
    the lean record redemption reads (idp/oidc/records.py CodeRecord): both hold the same
    fields."""

    def get_redirect_uri(self) -> str:
        """The redirect URI the code was issued to."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """The scopes the citizen granted."""
        return self.scope

    def get_nonce(self) -> str | None:
        """The nonce to carry into the ID token."""
        return self.nonce

    def get_auth_time(self) -> int:
        """When the citizen authenticated, in seconds since the epoch."""
        return int(self.auth_time.timestamp())

    def get_amr(self) -> list[str]:
        """How the citizen authenticated."""
        return list(self.amr or [])

    def get_acr(self) -> None:
        """The level is added as vot and acr by the ID token (idp/oidc/id_token.py)."""
        return None


class AuthorizationCode(db.Model, AuthorizationCodeMethods):
    """A single-use code, stored only as a hash, bound to client, redirect URI and PKCE."""

    __tablename__ = "authorization_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    sid: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The vector of trust the sign-in met ("Cl" or "Cl.Cm"), returned as vot and acr.
    vot: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The refresh token family its redemption started: a replay of the code revokes it.
    refresh_family: Mapped[str | None] = mapped_column(String(64))
    # What the grant releases of a proved identity (idp/oidc/identity_claims.py IdentityGrant):
    # {"level": "P2", "claims": [...]} or {"return_code": "D", "claims": [...]}; None for none.
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    citizen: Mapped[Citizen] = relationship(lazy="joined")


class AccessTokenMethods(TokenMixin):
    """What Authlib asks of an access token, for the stored row (Token) and the lean record
    the hot path reads (idp/oidc/records.py AccessTokenRecord): both hold the same fields."""

    def get_client(self) -> Client | None:
        """The client the token was issued to (the process's copy of its registration)."""
        return registered_client(self.client_id)

    def get_user(self):
        """The citizen the token speaks for."""
        return self.citizen

    def get_scope(self) -> str:
        """The scopes granted."""
        return self.scope

    def get_expires_in(self) -> int:
        """Lifetime in seconds."""
        return int((self.expires_at - self.issued_at).total_seconds())

    def check_client(self, client: Client) -> bool:
        """Whether the token belongs to this client."""
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        """Whether the token's lifetime is over."""
        return self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        """Whether the token was revoked."""
        return self.revoked_at is not None


class Token(db.Model, AccessTokenMethods):
    """An access token, stored only as a SHA-256 hash."""

    __tablename__ = "token"

    id: Mapped[int] = mapped_column(primary_key=True)
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(String(128), index=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    authorization_code_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorization_code.id", ondelete="SET NULL"), index=True
    )
    # The refresh token family it belongs to (revoking the family ends it too).
    refresh_family: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The level met and the methods used at the sign-in the token comes from, copied from its
    # code or refresh token so that userinfo reads no other row (NULL on older tokens).
    vot: Mapped[str | None] = mapped_column(String(32))
    amr: Mapped[list[str] | None] = mapped_column(JSON)
    # What it releases of a proved identity, copied from its code or refresh token.
    identity: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    citizen: Mapped[Citizen] = relationship(lazy="joined")


def revoke_live(model, *conditions, now: datetime | None = None) -> int:
    """Revoke every not-yet-revoked token of model (Token or RefreshToken) matching the
    conditions, in the caller's transaction (not committed); how many were revoked."""
    return db.session.execute(
        update(model)
        .where(*conditions, model.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount

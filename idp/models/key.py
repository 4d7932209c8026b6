"""The IdP's own signing keys; private parts are stored encrypted."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.extensions import db
from idp.models.timestamps import UTCDateTime, utcnow


class SigningKey(db.Model):
    """A key that signs ID tokens (or, by purpose, identities), published by its public part."""

    __tablename__ = "signing_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    alg: Mapped[str] = mapped_column(String(8), index=True)
    # What it signs: "id_token" (ID tokens and logout tokens, published at /jwks.json) or
    # "identity" (coreIdentityJWT, published in the DID document and /.well-known/identity-jwks.json
    # only: a department never takes an identity key for an ID token key, nor the reverse).
    purpose: Mapped[str] = mapped_column(String(16), default="id_token", server_default="id_token")
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Published from creation; signs from activates_at (after the rotation lead time) until a
    # newer key of its algorithm activates.
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Stays published until then, when every token it signed has expired (set at rotation).
    retires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Withdrawn at once (by an operator, e.g. after a compromise): neither signs nor is published.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

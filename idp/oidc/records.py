"""What the token and userinfo endpoints read of a stored code or token: small records, each
loaded with the citizen it speaks for by one statement built once (SQLAlchemy Core), never as
ORM instances.

Every redemption, refresh and userinfo request reads one such row and changes it, if at all,
with one conditional UPDATE (idp/oidc/tokens.py), so the ORM's identity map, attribute
instrumentation and flush would be pure overhead here. The records carry the methods Authlib
calls (AuthorizationCodeMixin, TokenMixin) under the names the models use, so the grants, the
ID token and the audit record read them as they read the models. The pages and the rarer
endpoints (revocation, introspection) keep using the models in idp/models/.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select

from idp.extensions import db
from idp.models import AuthorizationCode, Citizen, Client, PhoneNumber, RefreshToken, Token
from idp.models.grant import AccessTokenMethods, AuthorizationCodeMethods
from idp.models.timestamps import utcnow


@dataclass(slots=True, frozen=True)
class CitizenRecord:
    """The citizen a code or token speaks for: the id, the subject, and the claims userinfo
    may release (idp/oidc/claims.py reads them as it reads a Citizen)."""

    id: int
    subject: str
    email: str
    email_verified: bool
    phone_number: str | None
    phone_number_verified: bool
    given_name: str | None
    family_name: str | None
    # The mobile number the citizen confirmed for codes by text message (E.164), if any.
    mobile_number: str | None = None

    def get_user_id(self) -> int:
        """Authlib's hook: the internal id of the resource owner."""
        return self.id

    @property
    def name(self) -> str | None:
        """The full name, when the citizen gave one (as Citizen.name)."""
        parts = [p for p in (self.given_name, self.family_name) if p]
        return " ".join(parts) or None


@dataclass(slots=True, frozen=True)
class ResourceOwner:
    """The signed-in citizen an authorization request is granted for, by id alone: what the
    code grant stores (RFC 6749 1.1, the resource owner). The session knows the id; nothing on
    the way to the code needs the citizen's row."""

    id: int

    def get_user_id(self) -> int:
        """Authlib's hook: the internal id of the resource owner."""
        return self.id


_CITIZEN = Citizen.__table__.c
_PHONE = PhoneNumber.__table__.c
_CITIZEN_COLUMNS = [
    *(_CITIZEN[name] for name in CitizenRecord.__dataclass_fields__ if name != "mobile_number"),
    _PHONE.number.label("mobile_number"),
]


@dataclass(slots=True)
class CodeRecord(AuthorizationCodeMethods):
    """A stored authorization code (idp.models.AuthorizationCode), as redemption reads it."""

    id: int
    client_id: str
    citizen_id: int
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    sid: str
    auth_time: datetime
    amr: list[str] | None
    vot: str | None
    expires_at: datetime
    used_at: datetime | None
    refresh_family: str | None
    identity: dict | None
    citizen: CitizenRecord
    # Set by the grant once the code's sign-in is found live; never stored.
    live_session_id: int | None = None


@dataclass(slots=True, frozen=True)
class RefreshTokenRecord:
    """A stored refresh token (idp.models.RefreshToken), as a refresh reads it."""

    id: int
    family: str
    client_id: str
    citizen_id: int
    scope: str
    sid: str | None
    auth_time: datetime
    amr: list[str] | None
    vot: str | None
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None
    identity: dict | None
    citizen: CitizenRecord

    def check_client(self, client: Client) -> bool:
        """Whether the token was issued to this client."""
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        """The scopes granted."""
        return self.scope

    def get_auth_time(self) -> int:
        """When the citizen signed in, as seconds since the epoch."""
        return int(self.auth_time.timestamp())

    def is_expired(self) -> bool:
        """Past the family's absolute lifetime."""
        return self.expires_at <= utcnow()

    def is_revoked(self) -> bool:
        """Revoked, or already used (rotated away)."""
        return self.revoked_at is not None or self.used_at is not None


@dataclass(slots=True, frozen=True)
class AccessTokenRecord(AccessTokenMethods):
    """A stored access token (idp.models.Token), as userinfo reads it."""

    id: int
    client_id: str
    citizen_id: int
    scope: str
    sid: str | None
    authorization_code_id: int | None
    refresh_family: str | None
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    vot: str | None
    amr: list[str] | None
    identity: dict | None
    citizen: CitizenRecord


# Fields of a record that are not columns of its table.
_NOT_COLUMNS = ("citizen", "live_session_id")


def _own_fields(record: type) -> list[str]:
    return [name for name in record.__dataclass_fields__ if name not in _NOT_COLUMNS]


def _lookup(model, record: type, hash_column: str):
    """SELECT the record's columns and its citizen's, by the hash of the presented value."""
    table = model.__table__
    columns = [table.c[name] for name in _own_fields(record)]
    statement = (
        select(*columns, *_CITIZEN_COLUMNS)
        .join_from(table, Citizen.__table__, table.c.citizen_id == _CITIZEN.id)
        .outerjoin(PhoneNumber.__table__, _PHONE.citizen_id == _CITIZEN.id)
        .where(table.c[hash_column] == bindparam("hash"))
    )
    return statement, len(columns)


# Built once: every redemption, refresh and userinfo request runs one of them.
_LOOKUPS = {
    CodeRecord: _lookup(AuthorizationCode, CodeRecord, "code_hash"),
    RefreshTokenRecord: _lookup(RefreshToken, RefreshTokenRecord, "token_hash"),
    AccessTokenRecord: _lookup(Token, AccessTokenRecord, "access_token_hash"),
}


def find_record(record: type, value_hash: str):
    """The stored code or token of this kind (CodeRecord, RefreshTokenRecord,
    AccessTokenRecord) whose value has this hash, with its citizen; None if there is none.
    Read on the request's connection, in its transaction."""
    statement, width = _LOOKUPS[record]
    row = db.session.connection().execute(statement, {"hash": value_hash}).first()
    if row is None:
        return None
    return record(*row[:width], citizen=CitizenRecord(*row[width:]))

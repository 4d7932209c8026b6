"""Token storage: authorization codes, access tokens and refresh tokens, kept by their hashes.

Saving what a grant issues, finding and claiming a code or refresh token (atomically, so a
second use is seen), the level a token stands for, and revoking what a code or a refresh token
family issued. The grants (idp/oidc/grants/) decide when; this module does it.
"""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import OAuth2Request
from sqlalchemy import bindparam, insert, select, update

from idp import audit
from idp.accounts.levels import achieved_vector, requested_vectors
from idp.accounts.sessions import current_sign_in
from idp.audit import pending
from idp.extensions import db
from idp.models import AuthorizationCode, RefreshToken, Token
from idp.models.grant import revoke_live
from idp.models.timestamps import utcnow
from idp.oidc import backchannel
from idp.oidc.records import AccessTokenRecord, CodeRecord, RefreshTokenRecord, find_record
from idp.security.secrets import hash_token, new_token
from idp.settings import current_settings


def save_authorization_code(code: str, request: OAuth2Request) -> None:
    """Store the code's hash with everything it is bound to: client, redirect URI, scope,
    nonce, PKCE challenge, and the sign-in (sid, auth_time, amr, the level met)."""
    session = current_sign_in()
    data = request.payload.data
    now = utcnow()
    amr = list(session.amr or [])
    vot = achieved_vector(amr, requested_vectors(data), session.password_enough_alone)
    _write(
        _INSERT_CODE,
        {
            "code_hash": hash_token(code),
            "client_id": request.client.client_id,
            "citizen_id": request.user.id,
            "redirect_uri": request.payload.redirect_uri,
            "scope": request.scope,
            "nonce": data.get("nonce"),
            "code_challenge": data.get("code_challenge"),
            "code_challenge_method": data.get("code_challenge_method"),
            "sid": session.sid,
            "auth_time": session.auth_time,
            "amr": amr,
            "vot": vot,
            # Set by the authorization endpoint (step 5b) on the request: what of a proved
            # identity the code releases at userinfo, or None.
            "identity": getattr(request, "identity_grant", None),
            "created_at": now,
            "expires_at": now + timedelta(seconds=current_settings().authorization_code_lifetime),
        },
    )
    # Recorded in the same transaction: the entry commits exactly when the code does.
    audit.record(
        "authorization_code.issued",
        citizen_id=request.user.id,
        client_id=request.client.client_id,
        sid=session.sid,
        level=vot,
        methods=amr,
        scope=request.scope,
    )
    db.session.commit()


# The statements every authorization, redemption and refresh runs, built once. Each goes to
# the request's connection as Core: no ORM instance is made, tracked or flushed for them.
_CODES = AuthorizationCode.__table__
_REFRESH_TOKENS = RefreshToken.__table__
_INSERT_CODE = insert(_CODES)
_INSERT_REFRESH_TOKEN = insert(_REFRESH_TOKENS)
_INSERT_TOKEN = insert(Token.__table__)
# A code is claimed once: the statement names the refresh token family its redemption may
# start, so that a replay of the code can end it (RFC 6749 4.1.2).
_CLAIM_CODE = (
    update(_CODES)
    .where(_CODES.c.id == bindparam("code_id"), _CODES.c.used_at.is_(None))
    .values(used_at=bindparam("now"), refresh_family=bindparam("family"))
)
_CLAIM_REFRESH_TOKEN = (
    update(_REFRESH_TOKENS)
    .where(
        _REFRESH_TOKENS.c.id == bindparam("token_id"),
        _REFRESH_TOKENS.c.used_at.is_(None),
        _REFRESH_TOKENS.c.revoked_at.is_(None),
    )
    .values(used_at=bindparam("now"))
)


def _write(statement, parameters: dict) -> int:
    """Run a prebuilt INSERT or UPDATE in the request's transaction; the rows it touched."""
    rows = db.session.connection().execute(statement, parameters).rowcount
    pending.note_writes()  # so the audit entry of this work commits with it (one INSERT)
    return rows


def find_authorization_code(code: str) -> CodeRecord | None:
    """The stored code with this value, used or not, with its citizen."""
    return find_record(CodeRecord, hash_token(code))


def claim_authorization_code(row: CodeRecord, now) -> bool:
    """Mark the code used, unless it already was; False if it was (a second use).

    The claim stays uncommitted until save_token commits it with the token, so a concurrent
    second use waits on the row and then sees it used. A failed redemption rolls back at the
    end of the request, leaving the code usable.

    The same statement names the refresh token family the redemption may start (used by
    save_token if a refresh token is issued), so that a replay of the code can end the family
    (RFC 6749 4.1.2) without a second write to the code's row."""
    family = new_token(24)
    claimed = _write(_CLAIM_CODE, {"code_id": row.id, "now": now, "family": family})
    if claimed == 1:
        row.refresh_family = family
    return claimed == 1


def find_refresh_token(refresh_token: str) -> RefreshTokenRecord | None:
    """The stored refresh token with this value, used, revoked or not, with its citizen."""
    return find_record(RefreshTokenRecord, hash_token(refresh_token))


def claim_refresh_token(row: RefreshTokenRecord, now) -> bool:
    """Mark the refresh token used, unless it already was or was revoked; False then.
    Committed with the new tokens by save_token."""
    return _write(_CLAIM_REFRESH_TOKEN, {"token_id": row.id, "now": now}) == 1


def save_token(token: dict, request: OAuth2Request) -> None:
    """Store issued tokens by their hashes only: the access token, and a refresh token (a new
    family after a code, the same family after a refresh)."""
    code: CodeRecord | None = request.authorization_code
    previous: RefreshTokenRecord | None = getattr(request, "refresh_token", None)
    origin = code or previous
    now = utcnow()
    family = None
    amr = list(origin.amr or []) if origin else None
    if token.get("refresh_token"):
        family = previous.family if previous else (code and code.refresh_family) or new_token(24)
        lifetime = timedelta(seconds=current_settings().refresh_token_lifetime)
        _write(
            _INSERT_REFRESH_TOKEN,
            {
                "token_hash": hash_token(token["refresh_token"]),
                "family": family,
                "client_id": request.client.client_id,
                "citizen_id": request.user.id,
                "scope": token.get("scope", ""),
                "sid": origin.sid,
                "auth_time": origin.auth_time,
                "amr": amr,
                "vot": origin.vot,
                "identity": origin.identity,
                "issued_at": now,
                "expires_at": previous.expires_at if previous else now + lifetime,
            },
        )
    _write(
        _INSERT_TOKEN,
        {
            "access_token_hash": hash_token(token["access_token"]),
            "client_id": request.client.client_id,
            "citizen_id": request.user.id,
            "scope": token.get("scope", ""),
            "sid": origin.sid if origin else None,
            "authorization_code_id": code.id if code else None,
            "refresh_family": family,
            "issued_at": now,
            "expires_at": now + timedelta(seconds=int(token["expires_in"])),
            "vot": origin.vot if origin else None,
            "amr": amr,
            "identity": origin.identity if origin else None,
        },
    )
    if code is not None:
        # The family was remembered on the code when it was claimed, so a replay of it can end
        # the family (RFC 6749 4.1.2).
        backchannel.record_participation(code.live_session_id, code.sid, request.client.client_id)
    # One sign-in's events share its session reference: the code's (or refresh token's) sid.
    # Recorded in the same transaction: the entry commits exactly when the tokens do.
    audit.record(
        "token.refreshed" if previous is not None else "token.issued",
        citizen_id=request.user.id,
        client_id=request.client.client_id,
        sid=origin.sid if origin else None,
        level=origin.vot if origin else None,
        methods=amr,
        grant_type=request.payload.grant_type,
        scope=token.get("scope"),
        with_refresh=bool(family),
    )
    db.session.commit()


def token_assurance(
    token: Token | AccessTokenRecord | RefreshToken,
) -> tuple[str | None, list[str] | None]:
    """The level met (vot) and the methods used (amr) at the sign-in a token comes from."""
    origin: AuthorizationCode | RefreshToken | None = None
    if isinstance(token, RefreshToken):
        origin = token
    elif token.amr is not None:
        return token.vot, list(token.amr)  # copied at issue
    elif token.authorization_code_id is not None:
        origin = db.session.get(AuthorizationCode, token.authorization_code_id)
    elif token.refresh_family:
        origin = db.session.scalar(
            db.select(RefreshToken).filter_by(family=token.refresh_family).limit(1)
        )
    return (origin.vot, list(origin.amr or [])) if origin is not None else (None, None)


def revoke_refresh_family(family, now=None) -> None:
    """End a refresh token family and every access token issued in it (not committed).
    family is its value, or a scalar subquery giving it."""
    now = now or utcnow()
    revoke_live(RefreshToken, RefreshToken.family == family, now=now)
    revoke_live(Token, Token.refresh_family == family, now=now)


def revoke_code_grant(code_id: int, now=None) -> None:
    """End everything a code issued (not committed): its access tokens and the refresh token
    family it started, with every token refreshed from it (RFC 6749 4.1.2, RFC 9700 4.2.4).

    The family is read in the statement itself, not from a row loaded earlier: a concurrent
    first use that committed while this request waited on the code's row is seen."""
    now = now or utcnow()
    revoke_live(Token, Token.authorization_code_id == code_id, now=now)
    family = (
        select(AuthorizationCode.refresh_family)
        .where(AuthorizationCode.id == code_id)
        .scalar_subquery()
    )
    revoke_refresh_family(family, now)

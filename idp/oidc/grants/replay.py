"""A code or refresh token used twice (RFC 6749 4.1.2, RFC 9700 4.14.2): the grant has just
revoked what the first use issued; keep that, record it, refuse."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError
from flask import g

from idp import audit
from idp.extensions import db
from idp.oidc.records import CodeRecord, RefreshTokenRecord


def refuse_replay(
    event: str, row: CodeRecord | RefreshTokenRecord, reason: str, description: str
) -> None:
    """Commit the revocation just made, record the replay, refuse with invalid_grant."""
    db.session.commit()
    g.refusal_recorded = True  # the endpoint records nothing more of this refusal
    audit.record(
        event,
        outcome="failure",
        reason=reason,
        citizen_id=row.citizen_id,
        client_id=row.client_id,
        sid=row.sid,
        level=row.vot,
        methods=list(row.amr or []),
    )
    raise InvalidGrantError(description)

"""The refresh token grant (RFC 6749 6): refresh tokens rotate at every use, and a used one
presented again revokes its whole family (RFC 9700 4.14.2).

Authlib runs the grant; these are its hooks. A refresh, in order:

1. Authlib authenticates the client (idp/oidc/client_auth.py) and checks it may use this grant;
2. authenticate_refresh_token: the token is well formed and this client's, the client is
   active, the token is not revoked or expired, the sign-in it came from is still live, and
   the token is claimed (a second use ends the family);
3. Authlib checks the scope asked is within the token's;
4. Authlib generates the new tokens; save_token (idp/oidc/tokens.py) stores them in the
   same family;
5. a new ID token is added (idp/oidc/id_token.py, OpenIDRefresh).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError, UnauthorizedClientError, grants

from idp.accounts.sessions import live_session_id
from idp.extensions import db
from idp.models.timestamps import utcnow
from idp.oidc import tokens
from idp.oidc.client_auth import TOKEN_ENDPOINT_AUTH_METHODS
from idp.oidc.grants.replay import refuse_replay
from idp.oidc.records import CitizenRecord, RefreshTokenRecord


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Refresh tokens rotate at every use; a used one presented again revokes its family."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshTokenRecord:
        """Claim the refresh token atomically (committed with the new one by save_token)."""
        if not isinstance(refresh_token, str) or len(refresh_token) > 256:
            raise InvalidGrantError("The refresh token is not valid.")
        row = tokens.find_refresh_token(refresh_token)
        if row is None or row.client_id != self.request.client.client_id:
            raise InvalidGrantError("The refresh token is not valid for this client.")
        if not self.request.client.is_active:
            raise UnauthorizedClientError("This service is not active on the IdP.")
        if row.revoked_at is not None:
            raise InvalidGrantError("The refresh token has been revoked.")
        now = utcnow()
        if row.expires_at <= now:
            raise InvalidGrantError("The refresh token has expired: the citizen must sign in.")
        # The session's row stays locked until the new tokens are stored: a sign-out at the
        # same moment waits, then revokes them too (or went first, and nothing is issued).
        if live_session_id(row.sid, lock=True) is None:
            raise InvalidGrantError("The sign-in this refresh token came from has ended.")
        if not tokens.claim_refresh_token(row, now):
            # RFC 9700 4.14.2: a rotated token used again means it leaked: end the family.
            db.session.rollback()
            tokens.revoke_refresh_family(row.family, now)
            refuse_replay(
                "refresh_token.replayed",
                row,
                "refresh_token_reused",
                "The refresh token has already been used; every token of its family is revoked.",
            )
        return row

    def authenticate_user(self, refresh_token: RefreshTokenRecord) -> CitizenRecord:
        """The citizen the family speaks for (loaded with the token)."""
        return refresh_token.citizen

    def revoke_old_credential(self, refresh_token: RefreshTokenRecord) -> None:
        """Already claimed (used_at) in authenticate_refresh_token."""

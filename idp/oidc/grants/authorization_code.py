"""The authorization code grant (RFC 6749 4.1, OIDC Core 3.1.3): codes hashed, single use,
short lived, bound to the client, the redirect URI and the sign-in they came from.

Authlib runs the grant; these are its hooks. Redemption at the token endpoint, in order:

1. Authlib authenticates the client (idp/oidc/client_auth.py) and checks it may use this grant;
2. query_authorization_code: the code is well formed and this client's, the client is active,
   the code is claimed (a second use revokes what the first issued), not expired, and the
   sign-in it came from is still live;
3. Authlib checks the redirect_uri is the one the code was issued for;
4. the PKCE code_verifier (idp/oidc/pkce.py);
5. Authlib generates the tokens; save_token (idp/oidc/tokens.py) stores them;
6. the ID token is added (idp/oidc/id_token.py).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    OAuth2Request,
    UnauthorizedClientError,
    grants,
)
from flask import g

from idp import audit
from idp.accounts.sessions import live_session_id
from idp.extensions import db
from idp.models import Client
from idp.models.timestamps import utcnow
from idp.oidc import tokens
from idp.oidc.client_auth import TOKEN_ENDPOINT_AUTH_METHODS
from idp.oidc.grants.replay import refuse_replay
from idp.oidc.records import CitizenRecord, CodeRecord
from idp.security.secrets import new_token


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """The code grant: codes hashed, single use, short lived, bound to client and redirect."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_ENDPOINT_AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43  # 43 characters of [A-Za-z0-9]: about 256 bits

    def generate_authorization_code(self) -> str:
        """256 random bits, URL-safe (43 characters): one read of the system's random source,
        where Authlib's default draws each character separately."""
        return new_token(32)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        """Store the code's hash with everything it is bound to."""
        tokens.save_authorization_code(code, request)

    def query_authorization_code(self, code: str, client: Client) -> CodeRecord:
        """Claim the code atomically; a second use revokes what the first use issued."""
        if not isinstance(code, str) or len(code) > 256:
            raise InvalidGrantError("The authorization code is not valid.")
        row = tokens.find_authorization_code(code)
        if row is None or row.client_id != client.client_id:
            raise InvalidGrantError("The authorization code is not valid for this client.")
        if not client.is_active:
            raise UnauthorizedClientError("This service is not active on the IdP.")
        now = utcnow()
        if not tokens.claim_authorization_code(row, now):
            # RFC 6749 4.1.2: a replayed code revokes the tokens issued with it.
            tokens.revoke_code_grant(row.id, now)
            refuse_replay(
                "authorization_code.replayed",
                row,
                "code_reused",
                "The authorization code has already been used; tokens issued with it are revoked.",
            )
        if row.expires_at <= now:
            raise InvalidGrantError("The authorization code has expired.")
        # No token outlives its session: a code redeemed after the citizen signed out (or the
        # session expired) gets nothing. The session row stays locked until the tokens are
        # stored, so it cannot end unnoticed in between (its end would miss this department).
        live = live_session_id(row.sid, lock=True)
        if live is None:
            db.session.commit()  # the code stays spent
            g.refusal_recorded = True  # the endpoint records nothing more of this refusal
            audit.record(
                "authorization_code.refused",
                "failure",
                reason="session_ended",
                citizen_id=row.citizen_id,
                client_id=row.client_id,
                sid=row.sid,
            )
            raise InvalidGrantError("The sign-in this code came from has ended.")
        row.live_session_id = live  # not stored: save_token records the department there
        return row

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        """Keep the used code (marked used) so a replay can be recognised."""

    def authenticate_user(self, authorization_code: CodeRecord) -> CitizenRecord:
        """The citizen the code was issued for (loaded with the code)."""
        return authorization_code.citizen

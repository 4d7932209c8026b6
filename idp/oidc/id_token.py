"""The ID token (OIDC Core 2, 3.1.3.6, 12.2): signed ES256 by default (RS256 on request), kid
in the header, with sid, auth_time, amr and the level met (vot and acr).

Authlib builds and signs it after the tokens are stored; these classes fill its hooks.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oidc.core import grants as oidc_grants

from idp import clock
from idp.models import Client
from idp.oidc.claims import subject_for
from idp.oidc.identity_claims import trustmark_url
from idp.oidc.keys import signing_key
from idp.oidc.records import CodeRecord, RefreshTokenRecord
from idp.settings import current_settings


class OpenIDCode(oidc_grants.OpenIDCode):
    """ID tokens: ES256 by default (RS256 on request), kid in the header, sid and amr."""

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        """Nonce reuse is not tracked here; each department checks the nonce it sent."""
        return False

    def get_client_algorithm(self, client: Client) -> str:
        """The department's registered algorithm, else the IdP default."""
        return client.id_token_signed_response_alg or current_settings().default_id_token_alg

    def resolve_client_private_key(self, client: Client):
        """The current private key for the client's algorithm."""
        return signing_key(self.get_client_algorithm(client))

    def get_encode_header(self, client: Client) -> dict:
        """alg, kid and typ."""
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": signing_key(alg).kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict:
        """iss, aud, iat and exp (from idp.clock: Authlib would read time.time() for iat)."""
        now = int(clock.time())
        return {
            "iss": current_settings().issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + current_settings().id_token_lifetime,
        }

    def get_compatible_claims(self, request: OAuth2Request) -> dict:
        """The standard claims, with the department's view of the subject."""
        claims = super().get_compatible_claims(request)
        claims["sub"] = subject_for(request.user, request.client)
        return claims

    def get_authorization_code_claims(self, authorization_code: CodeRecord) -> dict:
        """nonce, auth_time and amr from the code, and the session id (sid)."""
        claims = super().get_authorization_code_claims(authorization_code)
        claims["sid"] = authorization_code.sid
        claims["auth_time"] = authorization_code.get_auth_time()
        if authorization_code.vot:
            # GOV.UK One Login's vector of trust, and the same value as the OIDC acr.
            # As One Login: vot is the credential level met ("Cl.Cm"); an identity's level
            # is the coreIdentityJWT's vot. vtm names the trustmark that defines the values.
            claims["vot"] = authorization_code.vot
            claims["acr"] = authorization_code.vot
            claims["vtm"] = trustmark_url()
        return claims

    def generate_user_info(self, user, scope: str) -> dict:
        """No profile claims in the ID token: departments read them from UserInfo."""
        return {}


class OpenIDRefresh(OpenIDCode):
    """A new ID token at refresh: same iss, sub, aud and auth_time (and sid, amr, acr, vot),
    a new iat; no nonce (OIDC Core 12.2)."""

    def get_compatible_claims(self, request: OAuth2Request) -> dict:
        claims = super().get_compatible_claims(request)
        row: RefreshTokenRecord = request.refresh_token
        claims.pop("nonce", None)
        claims.update(sid=row.sid, auth_time=row.get_auth_time(), amr=list(row.amr or []))
        if row.vot:
            claims.update(vot=row.vot, acr=row.vot, vtm=trustmark_url())
        return claims

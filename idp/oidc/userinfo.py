"""The UserInfo endpoint (OIDC Core 5.3): claims by scope for a bearer token."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6750 import BearerTokenValidator
from flask import Blueprint, Response, jsonify

from idp.extensions import csrf, db
from idp.models import Token
from idp.oidc.claims import user_info
from idp.security.secrets import hash_token

bp = Blueprint("userinfo", __name__)


class AccessTokenValidator(BearerTokenValidator):
    """Find an access token by its hash; expiry and revocation are checked by Authlib."""

    def authenticate_token(self, token_string: str) -> Token | None:
        """The stored token for the presented string."""
        if not token_string or len(token_string) > 256:
            return None
        return db.session.scalar(
            db.select(Token).filter_by(access_token_hash=hash_token(token_string))
        )


require_token = ResourceProtector()
require_token.register_token_validator(AccessTokenValidator())


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
@require_token("openid")
def userinfo() -> Response:
    """The claims the token's scope releases."""
    from authlib.integrations.flask_oauth2 import current_token

    token: Token = current_token
    response = jsonify(user_info(token.citizen, token.get_client(), token.scope))
    response.headers["Cache-Control"] = "no-store"
    return response

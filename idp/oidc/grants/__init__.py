"""The OAuth grants the token endpoint offers, one module per grant type (as Authlib's
rfc6749/grants): authorization_code.py (RFC 6749 4.1) and refresh_token.py (RFC 6749 6).
replay.py is what both do when a code or refresh token comes back a second time."""

# The grant types a department may register for (and discovery advertises).
GRANT_TYPES = ("authorization_code", "refresh_token")

"""Authorization server issuer identification (RFC 9207): iss in every authorization
response, so a department can tell which IdP answered (a mix-up defence, RFC 9700 4.4)."""

from __future__ import annotations

from authlib.oauth2.rfc9207 import IssuerParameter

from idp.settings import current_settings


class Issuer(IssuerParameter):
    """RFC 9207: iss in every authorization response."""

    def get_issuer(self) -> str:
        """The issuer identifier."""
        return current_settings().issuer

"""Authorization server issuer identification (RFC 9207): iss in every authorization
response, so a department can tell which IdP answered (a mix-up defence, RFC 9700 4.4)."""

from __future__ import annotations

from authlib.common.urls import url_encode
from authlib.oauth2.rfc9207 import IssuerParameter

from idp.settings import current_settings


class Issuer(IssuerParameter):
    """RFC 9207: iss in every authorization response."""

    def get_issuer(self) -> str:
        """The issuer identifier."""
        return current_settings().issuer

    def add_issuer_parameter(self, authorization_server, response) -> None:
        """As Authlib, without taking the redirect apart again: the Location Authlib has just
        built ends with its own query (code and state, or the error) and has no fragment
        (registered redirect URIs have none: departments/metadata.py), so iss is appended to
        it, encoded as Authlib encodes the rest. Any other Location goes Authlib's way."""
        location = response.location
        if not location or "?" not in location or "#" in location:
            super().add_issuer_parameter(authorization_server, response)
            return
        response.location = f"{location}&{url_encode([('iss', self.get_issuer())])}"

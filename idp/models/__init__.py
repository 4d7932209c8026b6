"""Stored things, one module each."""

from idp.models.citizen import Citizen
from idp.models.client import Client
from idp.models.consent import Consent
from idp.models.grant import AuthorizationCode, Token
from idp.models.interaction import Interaction
from idp.models.key import SigningKey
from idp.models.replay import UsedClientAssertion
from idp.models.session import BrowserSession

__all__ = [
    "AuthorizationCode",
    "BrowserSession",
    "Citizen",
    "Client",
    "Consent",
    "Interaction",
    "SigningKey",
    "Token",
    "UsedClientAssertion",
]

"""Stored things, one module each."""

from idp.models.audit import AuditCheckpoint, AuditEntry, AuditHead, AuditKey, AuditPending
from idp.models.citizen import Citizen
from idp.models.client import Client
from idp.models.consent import Consent
from idp.models.department import Department
from idp.models.email_code import EmailCode
from idp.models.generation import CacheGeneration
from idp.models.grant import AuthorizationCode, Token
from idp.models.identity import IdentityCheck, IdentityDisclosure, IdentityRecord
from idp.models.interaction import Interaction
from idp.models.key import SigningKey
from idp.models.logout import LogoutAttempt, LogoutDelivery, SessionClient
from idp.models.passkey import Passkey, WebAuthnChallenge
from idp.models.phone import PhoneNumber, SmsCode
from idp.models.refresh_token import RefreshToken
from idp.models.registration import InitialAccessToken
from idp.models.replay import UsedClientAssertion
from idp.models.second_factor import RecoveryCode, TotpCredential
from idp.models.session import BrowserSession
from idp.models.staff import StaffMember, StaffSession
from idp.models.throttle import ThrottleCounter

__all__ = [
    "AuditCheckpoint",
    "AuditEntry",
    "AuditHead",
    "AuditKey",
    "AuditPending",
    "AuthorizationCode",
    "BrowserSession",
    "CacheGeneration",
    "Citizen",
    "Client",
    "Consent",
    "Department",
    "EmailCode",
    "IdentityCheck",
    "IdentityDisclosure",
    "IdentityRecord",
    "InitialAccessToken",
    "Interaction",
    "LogoutAttempt",
    "LogoutDelivery",
    "Passkey",
    "PhoneNumber",
    "RecoveryCode",
    "RefreshToken",
    "SessionClient",
    "SmsCode",
    "SigningKey",
    "StaffMember",
    "StaffSession",
    "ThrottleCounter",
    "Token",
    "TotpCredential",
    "UsedClientAssertion",
    "WebAuthnChallenge",
]

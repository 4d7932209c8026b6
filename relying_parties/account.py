"""What the department keeps about the signed-in citizen, in its own session cookie."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, session

from relying_parties.client import current_department
from relying_parties.ended_sessions import RETENTION_SECONDS, EndedSessionsUnavailable

SESSION_KEY = "sign_in"
# A remembered sign-in older than the service keeps ended IdP sessions for is not trusted, so
# that forgetting an old logout cannot bring a sign-in back.
MAX_SIGN_IN_AGE_SECONDS = RETENTION_SECONDS


@dataclass(frozen=True)
class CitizenAccount:
    """What the department learned about the citizen from the ID token and UserInfo."""

    sub: str
    email: str | None
    email_verified: bool | None
    phone_number: str | None
    phone_number_verified: bool | None
    name: str | None
    auth_time: datetime | None
    amr: list[str]
    sid: str | None
    iss: str
    vot: str | None
    # The verified identity the service asked for (relying_parties/identity.py): name, birth
    # date and address, or the return code saying why the citizen could not prove it.
    identity: dict | None = None

    @classmethod
    def from_sign_in(cls, sign_in: dict) -> "CitizenAccount":
        """Build the account from the stored claims, preferring UserInfo for profile claims."""
        claims = sign_in["claims"]
        profile = {**claims, **sign_in["userinfo"]}
        full_name = " ".join(
            part for part in (profile.get("given_name"), profile.get("family_name")) if part
        )
        auth_time = claims.get("auth_time")
        vot = claims.get("vot")
        return cls(
            sub=claims["sub"],
            email=profile.get("email"),
            email_verified=profile.get("email_verified"),
            phone_number=profile.get("phone_number"),
            phone_number_verified=profile.get("phone_number_verified"),
            name=profile.get("name") or full_name or None,
            auth_time=(
                datetime.fromtimestamp(auth_time, UTC)
                if isinstance(auth_time, int | float)
                else None
            ),
            amr=list(claims.get("amr") or []),
            sid=claims.get("sid"),
            iss=claims["iss"],
            vot=None if vot is None else str(vot),
            identity=sign_in.get("identity"),
        )


def remember_sign_in(sign_in: dict) -> None:
    """Keep the ID token, its claims and UserInfo for this browser, and when it signed in."""
    session[SESSION_KEY] = {**sign_in, "signed_in_at": time.time()}


def signed_in_account() -> CitizenAccount | None:
    """The citizen signed in to this service in this browser, if any: not if the sign-in is
    too old, or if the IdP has since said (back-channel logout) that its session ended."""
    sign_in = session.get(SESSION_KEY)
    if not sign_in:
        return None
    try:
        account = CitizenAccount.from_sign_in(sign_in)
        signed_in_at = float(sign_in["signed_in_at"])
    except (KeyError, TypeError, ValueError, OverflowError):
        # A session from an older version of the service: start again rather than fail.
        forget_sign_in()
        return None
    if time.time() - signed_in_at > MAX_SIGN_IN_AGE_SECONDS:
        forget_sign_in()
        return None
    try:
        ended = current_department().ended_sessions.has_ended(
            account.sid, account.sub, signed_in_at
        )
    except EndedSessionsUnavailable as error:
        # Without the record the sign-in may have ended: not signed in for now, but kept.
        current_app.logger.error("could not read the ended sessions: %s", error)
        return None
    if ended:
        forget_sign_in()
        return None
    return account


def forget_sign_in() -> dict | None:
    """Sign the citizen out of this service only; returns what was kept, ID token included."""
    return session.pop(SESSION_KEY, None)

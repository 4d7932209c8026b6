"""What the department keeps about the signed-in citizen, in its own session cookie."""

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import session

SESSION_KEY = "sign_in"


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
        )


def remember_sign_in(sign_in: dict) -> None:
    """Keep the ID token, its claims and UserInfo for this browser."""
    session[SESSION_KEY] = sign_in


def signed_in_account() -> CitizenAccount | None:
    """The citizen signed in to this service in this browser, if any."""
    sign_in = session.get(SESSION_KEY)
    if not sign_in:
        return None
    try:
        return CitizenAccount.from_sign_in(sign_in)
    except (KeyError, TypeError, ValueError, OverflowError):
        # A session from an older version of the service: start again rather than fail.
        forget_sign_in()
        return None


def forget_sign_in() -> dict | None:
    """Sign the citizen out of this service only; returns what was kept, ID token included."""
    return session.pop(SESSION_KEY, None)

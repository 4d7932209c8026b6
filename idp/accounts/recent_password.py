"""The current password, typed moments ago in this browser for this session.

Adding a way to sign in (a passkey, or the first second factor of an account) needs the
password at that moment (re-authentication, NIST SP 800-63B 4.2.3), not only a session: a
session cookie alone, left in a browser or taken from it, must not add a credential, nor lock
the owner out with one. The password typed at sign-in, sign-up, a reset or on an account page
counts for a few minutes; after that, the pages' password step (page_helpers.with_password) asks
for it again.

Kept in Flask's signed session cookie as {"sid": session, "until": epoch seconds}: it serves
only the session it was typed for, in the browser it was typed in. A step-up starts a new
session, so a password typed before the second factor does not serve the session after it.
"""

from __future__ import annotations

from flask import session as flask_session

from idp import clock

KEY = "password_typed"
# As long as a passkey ceremony's challenge lives (passkeys/logic.py: CHALLENGE_LIFETIME).
WINDOW_SECONDS = 300


def now() -> float:
    """The clock the window is measured by (idp.clock, which tests move)."""
    return clock.time()


def typed(session) -> None:
    """The current password was just typed for this session: it counts for WINDOW_SECONDS."""
    flask_session[KEY] = {"sid": session.sid, "until": int(now()) + WINDOW_SECONDS}


def recent(session) -> bool:
    """Whether the password was typed for this session, in this browser, moments ago."""
    grant = flask_session.get(KEY)
    return (
        session is not None
        and isinstance(grant, dict)
        and grant.get("sid") == session.sid
        and isinstance(grant.get("until"), int)
        and now() < grant["until"]
    )


def forget() -> None:
    """The typed password has been used (one passkey per password, for instance)."""
    flask_session.pop(KEY, None)

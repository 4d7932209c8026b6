"""Signing out, and the emails of signing in: the owner of an account that too many wrong
passwords locked hears of it (sent in the background, so the page takes as long for an address
that has no account). Signing out tells the citizen which services they were signed out of."""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import format_datetime
from flask_babel import gettext as _

from idp.accounts.sessions import end_session
from idp.extensions import db
from idp.mail import send_in_background
from idp.models import BrowserSession, Client, SessionClient
from idp.models.timestamps import utcnow
from idp.security import throttle
from idp.settings import current_settings


def tell_owner_of_lockout(address: str, lockout: int, *, capped: bool = False) -> None:
    """Email the owner that their account was locked: when, and what to do (at most once a
    day, throttle_lockout_email_interval).

    Sent in the background, so the page takes as long for an address that has no account.
    """
    if capped:
        _tell_owner_of_cap(address)
        return
    wait = throttle.wait_in_words(lockout)
    subject = _("Someone tried to sign in to your account too many times")
    body = "\n\n".join(
        [
            _(
                "Someone entered the wrong password for your government sign in account too"
                " many times, most recently at %(time)s.",
                time=format_datetime(utcnow(), "HH:mm 'UTC', d MMMM yyyy"),
            ),
            _(
                "To protect your account, we have locked it for %(wait)s. Nobody has signed"
                " in to it.",
                wait=wait,
            ),
            _("If this was you, wait %(wait)s and then sign in again.", wait=wait),
            _("The browsers you have signed in on before can still sign in."),
            _(
                "If this was not you, someone else may know your email address. Your account"
                " is safe while your password is secret. If you use the same password for"
                " another account, change it there."
            ),
        ]
    )
    send_in_background(address, subject, body)


def _tell_owner_of_cap(address: str) -> None:
    """Email the owner that too many wrong passwords locked the account until a reset."""
    issuer = current_settings().issuer
    subject = _("Someone tried to sign in to your account too many times")
    body = "\n\n".join(
        [
            _(
                "Someone has entered the wrong password for your government sign in account"
                " too many times, most recently at %(time)s.",
                time=format_datetime(utcnow(), "HH:mm 'UTC', d MMMM yyyy"),
            ),
            _(
                "To protect your account, we have locked it until its password is reset."
                " Nobody has signed in to it. The browsers you have signed in on before can"
                " still sign in."
            ),
            _(
                "To open it anywhere else, reset your password at %(url)s.",
                url=f"{issuer}/reset-password",
            ),
        ]
    )
    send_in_background(address, subject, body)


# -- Signing out ---------------------------------------------------------------------------------


def services_taking_part(session_ids: Iterable[int]) -> list[Client]:
    """The departments' services that received tokens in these sessions (OIDC Back-Channel
    Logout 2.7: the session's participants), each once: the services a citizen is signed out
    of when the sessions end, for the signed-out page to name."""
    ids = list(session_ids)
    if not ids:
        return []
    taking_part = db.select(SessionClient.client_id).where(SessionClient.session_id.in_(ids))
    clients = db.session.scalars(db.select(Client).where(Client.client_id.in_(taking_part)))
    return sorted(clients, key=lambda client: client.client_name.casefold())


def sign_out_browser(session: BrowserSession, reason: str) -> list[Client]:
    """End one browser's session; the services it was signed in to (read before it ends:
    each of them registered for back-channel logout is told, idp/oidc/backchannel.py)."""
    services = services_taking_part([session.id])
    end_session(session, reason=reason)
    return services

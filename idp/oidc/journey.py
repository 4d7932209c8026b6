"""A sign-in journey in progress: the authorization request waiting for sign-in or consent."""

from __future__ import annotations

import re
from datetime import timedelta

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from flask import Response, g, request
from sqlalchemy import delete
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.models import Interaction
from idp.models.timestamps import utcnow
from idp.security.cookies import read_cookie, set_session_cookie
from idp.security.secrets import hash_token, new_token
from idp.settings import current_settings

# A random value identifying this browser to its own journeys; HttpOnly, never shared.
BROWSER_COOKIE = "idp_browser"
HANDLE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class _StoredPayload(OAuth2Payload):
    """Authorization request parameters, read from a MultiDict once: the grant and the IdP's
    checks look parameters up dozens of times per request."""

    def __init__(self, params: MultiDict):
        self._data = params.to_dict()
        self._datalist = params.to_dict(flat=False)

    @property
    def data(self) -> dict[str, str]:
        """First value of each parameter."""
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        """Every value of each parameter (to detect repeats)."""
        return self._datalist


class AuthorizationRequest(OAuth2Request):
    """An authorization request built from parameters, fresh or resumed from storage."""

    def __init__(self, params: MultiDict):
        super().__init__(method="GET", uri=request.url, headers=request.headers)
        self.payload = _StoredPayload(params)
        self.params = params

    @property
    def args(self):
        """Query parameters."""
        return self.params

    @property
    def form(self):
        """Form parameters (none for an authorization request)."""
        return MultiDict()


def _browser_value() -> str:
    """This browser's journey cookie value, minted on first use."""
    value = read_cookie(BROWSER_COOKIE)
    if not value or not HANDLE_PATTERN.match(value) or len(value) < 32:
        value = g.get("new_browser_cookie") or new_token(32)
        g.new_browser_cookie = value
    return value


def apply_browser_cookie(response: Response) -> Response:
    """Set the journey cookie when this request minted one."""
    if g.get("new_browser_cookie"):
        set_session_cookie(response, BROWSER_COOKIE, g.new_browser_cookie, samesite="Lax")
    return response


def start_interaction(params: MultiDict) -> Interaction:
    """Store the request, bound to this browser, so the journey can continue later."""
    now = utcnow()
    lifetime = current_settings().interaction_lifetime
    interaction = Interaction(
        handle=new_token(24),
        params=params.to_dict(flat=False),
        browser_hash=hash_token(_browser_value()),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    db.session.add(interaction)
    db.session.commit()
    return interaction


def find_interaction(handle: str | None) -> Interaction | None:
    """A journey still in progress that this browser started, or None."""
    if not handle or not HANDLE_PATTERN.match(handle):
        return None
    if "interactions" not in g:
        g.interactions = {}
    if handle in g.interactions:
        return g.interactions[handle]
    interaction = db.session.scalar(db.select(Interaction).filter_by(handle=handle))
    cookie = read_cookie(BROWSER_COOKIE) or ""
    if (
        interaction is None
        or interaction.expires_at <= utcnow()
        or interaction.browser_hash != hash_token(cookie)
    ):
        interaction = None
    g.interactions[handle] = interaction
    return interaction


def interaction_params(interaction: Interaction) -> MultiDict:
    """The stored request parameters."""
    return MultiDict([(k, v) for k, values in interaction.params.items() for v in values])


def finish_interaction(interaction: Interaction) -> bool:
    """End a journey before it answers; False if another request already ended it."""
    deleted = db.session.execute(delete(Interaction).where(Interaction.id == interaction.id))
    db.session.commit()
    return deleted.rowcount == 1

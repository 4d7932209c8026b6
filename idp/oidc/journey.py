"""A sign-in journey in progress: the authorization request waiting for sign-in or consent."""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from flask import current_app, request
from sqlalchemy import delete
from werkzeug.datastructures import MultiDict

from idp.extensions import db
from idp.models import Interaction
from idp.models.timestamps import utcnow
from idp.security.secrets import new_token


class _StoredPayload(OAuth2Payload):
    """Authorization request parameters held in a MultiDict."""

    def __init__(self, params: MultiDict):
        self._params = params

    @property
    def data(self):
        """First value of each parameter."""
        return self._params

    @property
    def datalist(self):
        """Every value of each parameter (to detect repeats)."""
        return {key: self._params.getlist(key) for key in self._params}


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


def start_interaction(params: MultiDict) -> Interaction:
    """Store the request so the journey can continue after sign-in or consent."""
    now = utcnow()
    lifetime = current_app.config["IDP_SETTINGS"].interaction_lifetime
    interaction = Interaction(
        handle=new_token(24),
        params=params.to_dict(flat=False),
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    db.session.add(interaction)
    db.session.commit()
    return interaction


def find_interaction(handle: str | None) -> Interaction | None:
    """A journey that is still in progress, or None."""
    if not handle or len(handle) > 64:
        return None
    interaction = db.session.scalar(db.select(Interaction).filter_by(handle=handle))
    if interaction is None or interaction.expires_at <= utcnow():
        return None
    return interaction


def interaction_params(interaction: Interaction) -> MultiDict:
    """The stored request parameters."""
    return MultiDict([(k, v) for k, values in interaction.params.items() for v in values])


def finish_interaction(interaction: Interaction) -> None:
    """A journey that produced its answer cannot be replayed."""
    db.session.execute(delete(Interaction).where(Interaction.id == interaction.id))
    db.session.commit()

"""Whether an authorization request's client and redirect URI can be trusted with a redirect.

RFC 6749 4.1.2.1: without a known client and a registered redirect URI, errors are shown to
the citizen and never sent anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from flask_babel import gettext as _

from idp.models.client import registered_client


def untrusted_request_problem(datalist: Mapping[str, Sequence[str]]) -> str | None:
    """Why the client or redirect URI cannot be trusted, for the error page; None if trusted."""
    for name in ("client_id", "redirect_uri"):
        if len(datalist.get(name, [])) > 1:
            return _("The request repeats the %(name)s parameter.", name=name)
    client_id = (datalist.get("client_id") or [None])[0]
    if not client_id:
        return _("The request does not say which service is asking (client_id is missing).")
    client = registered_client(client_id)
    if client is None:
        return _("The service asking you to sign in is not registered with this sign-in service.")
    redirect_uri = (datalist.get("redirect_uri") or [None])[0]
    if not redirect_uri:
        return _("The request does not say where to return to (redirect_uri is missing).")
    if not client.check_redirect_uri(redirect_uri):
        return _("The address the service asked to return to is not one it registered.")
    return None


def trusted_redirect_uri(payload) -> str | None:
    """The request's redirect_uri when errors may be sent there, else None."""
    if untrusted_request_problem(payload.datalist) is None:
        return payload.redirect_uri
    return None

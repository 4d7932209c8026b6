"""Guards on the citizen's pages, as decorators (like flaskr's `login_required`).

`@fully_signed_in` lets a view run only for a browser signed in with the second factor, and
hands it that session as the keyword argument `current`. Otherwise it sends the browser where
it must go first: to sign in, or to the second factor (the account's level, levels.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Response, redirect, url_for

from idp.accounts.levels import MEDIUM, vector_met
from idp.accounts.sessions import current_session


def signed_in_fully():
    """The session, when it has the second factor; otherwise where to go."""
    session = current_session()
    if session is None:
        return None, redirect(url_for("accounts.sign_in"))
    if vector_met(session.amr or []) != MEDIUM:
        return None, redirect(url_for("two_factor.second_factor"))
    return session, None


def fully_signed_in(view: Callable | None = None, *, refused: Callable | None = None):
    """Run the view with `current=` the session when it has the second factor. Otherwise
    answer with the redirect, or with `refused(redirect)` (a script's JSON answer)."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs) -> Response:
            current, elsewhere = signed_in_fully()
            if elsewhere:
                return refused(elsewhere) if refused else elsewhere
            return view(*args, current=current, **kwargs)

        return guarded

    return decorate(view) if view is not None else decorate

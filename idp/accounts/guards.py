"""Guards on the citizen's pages, as decorators (like flaskr's `login_required`).

`@signed_in` lets a view run only for a browser signed in at all (a password alone will do:
the second step of signing in, setting up a first second factor), and `@fully_signed_in` only
for one signed in with the second factor (the account's level, levels.py). Each hands the view
that session as the keyword argument `current`. Otherwise the browser is sent where it must go
first: to sign in, or to the second factor. `refused=` turns that redirect into another answer
(a script's JSON)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Response, redirect, request, url_for

from idp.accounts.levels import MEDIUM, vector_met
from idp.accounts.sessions import current_session


def signed_in_at_all():
    """The session, whatever its level; otherwise sign in first, keeping the journey."""
    session = current_session()
    if session is None:
        return None, redirect(url_for("accounts.sign_in", journey=request.values.get("journey")))
    return session, None


def signed_in_fully():
    """The session, when it has the second factor; otherwise where to go."""
    session = current_session()
    if session is None:
        return None, redirect(url_for("accounts.sign_in"))
    if vector_met(session.amr or []) != MEDIUM:
        return None, redirect(url_for("two_factor.second_factor"))
    return session, None


def _guard(find: Callable, view: Callable | None, refused: Callable | None):
    """Decorate view (now, or when called with it) to run with `current=` the session find()
    gives; otherwise answer with find's redirect, or with `refused(redirect)`."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs) -> Response:
            current, elsewhere = find()
            if elsewhere:
                return refused(elsewhere) if refused else elsewhere
            return view(*args, current=current, **kwargs)

        return guarded

    return decorate(view) if view is not None else decorate


def signed_in(view: Callable | None = None, *, refused: Callable | None = None):
    """Run the view with `current=` this browser's session, second factor or not. Otherwise
    answer with the redirect to sign in, or with `refused(redirect)`."""
    return _guard(signed_in_at_all, view, refused)


def fully_signed_in(view: Callable | None = None, *, refused: Callable | None = None):
    """Run the view with `current=` the session when it has the second factor. Otherwise
    answer with the redirect, or with `refused(redirect)` (a script's JSON answer)."""
    return _guard(signed_in_fully, view, refused)

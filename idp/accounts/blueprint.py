"""The `accounts` blueprint: the citizen's pages at the top of the site. Its views are in the
pages.py of three features: sign_in (sign in, sign out), sign_up (creating an account) and
your_account (the start page, /). The other features each have a blueprint of their own in
their pages.py.

It lives here, not in one of those features, so that each feature's pages can add to it;
create_app imports the three pages modules, which adds their views, before registering it.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("accounts", __name__)

"""Passkeys (WebAuthn): a second factor, and a sign-in on their own."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("passkeys", __name__)

"""Recovery: a forgotten password reset by email, a lost app replaced with a recovery code."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("recovery", __name__)

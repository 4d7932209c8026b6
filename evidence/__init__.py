"""Simulated evidence services for the identity check: a passport check, a driving licence
check, an address check with fraud checks, and knowledge-based questions. Each is a separate
small Flask app with its own signing key, issuing its result to the IdP as a signed verifiable
credential. They know the fictional test identities in data/ only (README.md); they never
import the IdP and talk to it over HTTP only."""

from evidence.app import KINDS, create_app

__all__ = ["KINDS", "create_app"]

"""Passwords, secrets at rest and response headers."""

"""Signing in with an email address and a password, and signing out."""

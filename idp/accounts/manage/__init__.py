"""Changing the account (password, email address, authenticator app, recovery codes), and
deleting it."""

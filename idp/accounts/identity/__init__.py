"""Proving who you are: identity checks through evidence services, and the verified details."""

"""Passkeys (WebAuthn): a second factor, and a sign-in on their own."""

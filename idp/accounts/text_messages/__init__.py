"""Codes by text message: a mobile number as a second factor, for citizens with no app."""

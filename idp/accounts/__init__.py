"""Citizen pages: sign up, sign in, sign out."""

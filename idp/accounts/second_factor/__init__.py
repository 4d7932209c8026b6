"""The second factor: the authenticator app and recovery codes, at sign-in and set up."""

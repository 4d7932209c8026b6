"""Creating an account: the email address proven by a code, then a name and a password."""

"""Recovery: a forgotten password reset by email, with the second factor."""

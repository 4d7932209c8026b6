"""Your account: the start page, the services that know you, the browsers signed in."""

"""Codes sent by email: the journeys (sign-up, reset, new address, new app) proving an address."""

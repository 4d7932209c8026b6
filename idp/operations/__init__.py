"""Running the IdP in production: the launcher, gunicorn's settings, the background worker,
housekeeping, health checks and metrics."""

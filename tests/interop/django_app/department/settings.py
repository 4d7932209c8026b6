"""A department's Django settings, as govuk-onelogin-django's README gives them.

Only the GOV_UK_ONE_LOGIN_* values come from the environment: the client ID, the private key
(base64 of its PEM) and the discovery URL, which is all a department changes to use this IdP.
"""

import os
from pathlib import Path

from govuk_onelogin_django.types import AuthenticationLevel, IdentityConfidenceLevel

SECRET_KEY = os.environ["DEPARTMENT_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "govuk_onelogin_django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "department.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(os.environ["DEPARTMENT_DATABASE"]),
    }
}
USE_TZ = True
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "govuk_onelogin_django.backends.OneLoginBackend",
]
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR"},
        "govuk_onelogin_django": {"handlers": ["console"], "level": "WARNING"},
    },
}

# govuk-onelogin-django's settings (its README, "Quick start" step 4).
LOGIN_URL = "start"
LOGIN_REDIRECT_URL = "account"
GOV_UK_ONE_LOGIN_CLIENT_ID = os.environ["GOV_UK_ONE_LOGIN_CLIENT_ID"]
GOV_UK_ONE_LOGIN_CLIENT_SECRET = os.environ["GOV_UK_ONE_LOGIN_CLIENT_SECRET"]
GOV_UK_ONE_LOGIN_OPENID_CONFIG_URL = os.environ["GOV_UK_ONE_LOGIN_OPENID_CONFIG_URL"]
GOV_UK_ONE_LOGIN_SCOPE = "openid email"
GOV_UK_ONE_LOGIN_AUTHENTICATION_LEVEL = AuthenticationLevel.MEDIUM_LEVEL
GOV_UK_ONE_LOGIN_CONFIDENCE_LEVEL = IdentityConfidenceLevel.NONE

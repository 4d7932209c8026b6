"""A sample tax account service that authenticates to the IdP with client_secret_basic."""

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app


def create_app(settings: DepartmentSettings) -> Flask:
    """The tax account service."""
    return create_department_app(settings, __name__)

"""HMRC's sample tax account; how it authenticates to the IdP lives in its settings."""

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app


def create_app(settings: DepartmentSettings) -> Flask:
    """The tax account service."""
    return create_department_app(settings, __name__)

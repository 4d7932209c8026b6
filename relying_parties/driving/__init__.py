"""A sample driving licence service that authenticates to the IdP with private_key_jwt."""

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app


def create_app(settings: DepartmentSettings) -> Flask:
    """The driving licence service."""
    return create_department_app(settings, __name__)

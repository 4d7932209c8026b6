"""The NHS's sample health record service: it may require a stronger sign-in (required_vot)."""

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app


def create_app(settings: DepartmentSettings) -> Flask:
    """The health record service."""
    return create_department_app(settings, __name__)

"""DVLA's sample driving licence service; how it authenticates to the IdP lives in its settings."""

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app


def create_app(settings: DepartmentSettings) -> Flask:
    """The driving licence service."""
    return create_department_app(settings, __name__)

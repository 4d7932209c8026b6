"""DWP's sample benefits service: a public client, with PKCE and no secret or key."""

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app


def create_app(settings: DepartmentSettings) -> Flask:
    """The benefits service."""
    return create_department_app(settings, __name__)

"""DVLA's sample driving licence service; how it authenticates to the IdP lives in its settings."""

from dataclasses import replace

from flask import Flask

from relying_parties.common import DepartmentSettings, create_department_app

# config/departments.toml registers it for RS256 ID tokens, so its logout tokens are RS256 too.
ID_TOKEN_SIGNED_RESPONSE_ALG = "RS256"


def create_app(settings: DepartmentSettings) -> Flask:
    """The driving licence service; RS256 logout tokens unless its settings name another alg."""
    if settings.id_token_signed_response_alg is None:
        settings = replace(settings, id_token_signed_response_alg=ID_TOKEN_SIGNED_RESPONSE_ALG)
    return create_department_app(settings, __name__)

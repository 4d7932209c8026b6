"""The sample departments that `make run` starts, from config/departments.toml."""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idp.departments.metadata import SECRET_AUTH_METHODS, ClientMetadataError
from idp.departments.services import ensure_department, register_client
from idp.security.secrets import secret_file
from idp.settings import Settings
from relying_parties.keys import public_jwks_for

# How a sample service joins: from the file like an operator would, or through the RFC 7591
# API at its own start-up with an initial access token.
REGISTRATION_KINDS = ("file", "api")


@dataclass(frozen=True)
class SampleDepartment:
    """A sample department service, with its port, credentials and how it registers."""

    client_id: str
    service: str
    name: str
    department: str
    colour: str
    port: int
    base_url: str
    registration: str = "file"
    how_registered: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    authorize_params: dict[str, str] = field(default_factory=dict)
    required_vot: str | None = None
    # The identity confidence the service needs in the core identity JWT ("P2"), if any.
    identity_level: str | None = None
    client_secret: str | None = None
    private_key_path: str | None = None

    @property
    def token_endpoint_auth_method(self) -> str:
        """How the service authenticates at the token endpoint."""
        return self.metadata.get("token_endpoint_auth_method", "client_secret_basic")


def _substitute(value: Any, base_url: str) -> Any:
    """Fill {base_url} into the strings of a metadata value."""
    if isinstance(value, str):
        return value.replace("{base_url}", base_url)
    if isinstance(value, list):
        return [_substitute(v, base_url) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, base_url) for k, v in value.items()}
    return value


def department_secret(settings: Settings, client_id: str) -> str:
    """A sample department's client secret, generated once into the instance folder."""
    path = Path(settings.instance_path) / "department-secrets" / client_id
    return secret_file(path, lambda: secrets.token_urlsafe(32))


def _sample(settings: Settings, index: int, entry: dict[str, Any]) -> SampleDepartment:
    """One [[department]] table as a SampleDepartment."""
    for key in ("client_id", "service", "name", "department"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ClientMetadataError(f"department {index + 1} needs {key}")
    registration = entry.get("registration", "file")
    if registration not in REGISTRATION_KINDS:
        raise ClientMetadataError(
            f"department {entry['client_id']}: registration must be file or api"
        )
    if entry.get("keys", "jwks_uri") not in ("jwks_uri", "by-value"):
        raise ClientMetadataError(f"department {entry['client_id']}: keys must be by-value")
    port = settings.departments_base_port + index
    base_url = f"http://{entry.get('host', 'localhost')}:{port}"
    metadata = _substitute(entry.get("metadata", {}), base_url)
    method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    client_id = entry["client_id"]
    file_secret = registration == "file" and method in SECRET_AUTH_METHODS
    private_key_path = str(Path(settings.instance_path) / "department-keys" / f"{client_id}.pem")
    if entry.get("keys") == "by-value":
        # The sample keeps its private key; the IdP is given the public half inline.

        metadata["jwks"] = public_jwks_for(private_key_path)
    return SampleDepartment(
        client_id=client_id,
        service=entry["service"],
        name=entry["name"],
        department=entry["department"],
        colour=entry.get("colour", "#1d70b8"),
        port=port,
        base_url=base_url,
        registration=registration,
        how_registered=entry.get("how_registered", ""),
        metadata=metadata,
        authorize_params=dict(entry.get("authorize_params", {})),
        required_vot=entry.get("required_vot"),
        identity_level=entry.get("identity_level"),
        client_secret=department_secret(settings, client_id) if file_secret else None,
        private_key_path=private_key_path if method == "private_key_jwt" else None,
    )


def load_departments(settings: Settings) -> list[SampleDepartment]:
    """The sample departments, each on its own port from departments_base_port upward."""
    if not settings.departments_file:
        return []
    path = Path(settings.departments_file)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ClientMetadataError(f"departments file {path.name} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClientMetadataError(
            f"departments file {path.name} is not valid TOML: {exc}"
        ) from None
    return [_sample(settings, i, entry) for i, entry in enumerate(data.get("department", []))]


def register_departments(settings: Settings) -> list[SampleDepartment]:
    """Register every sample department that joins from the file (idempotent).

    Those that join through the API only get their department record here.
    """
    departments = load_departments(settings)
    for sample in departments:
        department = ensure_department(sample.department)
        if sample.registration == "file":
            register_client(sample.client_id, sample.metadata, sample.client_secret, department)
    return departments

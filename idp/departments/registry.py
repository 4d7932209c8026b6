"""Registering department services as clients, from RFC 7591 metadata."""

from __future__ import annotations

import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp import audit
from idp.extensions import db
from idp.models import Client
from idp.models.client import hash_client_secret
from idp.oidc.claims import SCOPES_SUPPORTED
from idp.oidc.client_keys import ClientKeysUnavailable, import_key_set
from idp.security.secrets import secret_file
from idp.settings import Settings

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
ID_TOKEN_ALGS = ("ES256", "RS256")
MIN_SECRET_LENGTH = 32


class ClientMetadataError(ValueError):
    """Client metadata cannot be accepted; the message names the field (RFC 7591 3.2.2)."""

    def __init__(self, message: str, error: str = "invalid_client_metadata"):
        super().__init__(message)
        self.error = error


def _is_loopback(host: str | None) -> bool:
    """localhost and loopback addresses may use http (RFC 8252 7.3)."""
    return host in {"localhost", "127.0.0.1", "::1"}


def _web_uri_problem(uri: str) -> str | None:
    """Why a URI is not an absolute https URI (http allowed on loopback), or None."""
    parts = urlsplit(uri)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        return "is not an absolute http(s) URI"
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        return "must use https (http is allowed only on loopback)"
    return None


def validate_redirect_uri(uri: Any) -> str:
    """An absolute https URI (http only on loopback), with no fragment and no wildcard."""
    if not isinstance(uri, str) or not uri:
        raise ClientMetadataError("redirect_uris must be a list of URIs", "invalid_redirect_uri")
    if problem := _web_uri_problem(uri):
        raise ClientMetadataError(f"redirect_uris: {uri} {problem}", "invalid_redirect_uri")
    if "#" in uri or "#" in uri:
        raise ClientMetadataError(
            f"redirect_uris: {uri} must not have a fragment", "invalid_redirect_uri"
        )
    if "*" in uri:
        raise ClientMetadataError(
            f"redirect_uris: {uri} must not contain a wildcard", "invalid_redirect_uri"
        )
    return uri


def validate_client_metadata(metadata: Any, client_secret: str | None) -> dict[str, Any]:
    """Check RFC 7591 metadata against what the IdP supports; returns the metadata to store."""
    if not isinstance(metadata, dict):
        raise ClientMetadataError("client metadata must be a JSON object")
    redirect_uris = metadata.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        raise ClientMetadataError(
            "redirect_uris is required: a list of URIs", "invalid_redirect_uri"
        )
    clean: dict[str, Any] = dict(metadata)
    clean["redirect_uris"] = [validate_redirect_uri(u) for u in redirect_uris]
    method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise ClientMetadataError(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    clean["token_endpoint_auth_method"] = method
    if method.startswith("client_secret"):
        if not client_secret:
            raise ClientMetadataError(f"client_secret is required for {method}")
        if len(client_secret) < MIN_SECRET_LENGTH:
            raise ClientMetadataError(
                f"client_secret must be at least {MIN_SECRET_LENGTH} characters"
            )
    if method == "private_key_jwt":
        has_jwks = "jwks" in metadata
        has_uri = "jwks_uri" in metadata
        if has_jwks == has_uri:
            raise ClientMetadataError("private_key_jwt needs exactly one of jwks or jwks_uri")
        if has_jwks:
            try:
                import_key_set(metadata["jwks"], "jwks")
            except ClientKeysUnavailable as exc:
                raise ClientMetadataError(str(exc)) from None
        else:
            uri = metadata["jwks_uri"]
            if not isinstance(uri, str):
                raise ClientMetadataError("jwks_uri must be an absolute https URI")
            if problem := _web_uri_problem(uri):
                raise ClientMetadataError(f"jwks_uri {problem}")
    alg = metadata.get("id_token_signed_response_alg", "ES256")
    if alg not in ID_TOKEN_ALGS:
        raise ClientMetadataError("id_token_signed_response_alg must be ES256 or RS256")
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or grant_types != ["authorization_code"]:
        raise ClientMetadataError("grant_types: only authorization_code is supported")
    response_types = metadata.get("response_types", ["code"])
    if response_types != ["code"]:
        raise ClientMetadataError("response_types: only code is supported")
    scope = metadata.get("scope", "openid")
    if not isinstance(scope, str) or "openid" not in scope.split():
        raise ClientMetadataError("scope must be a space-separated string containing openid")
    unknown = [s for s in scope.split() if s not in SCOPES_SUPPORTED]
    if unknown:
        raise ClientMetadataError(f"scope: unsupported scope {unknown[0]}")
    if "require_pkce" in metadata and not isinstance(metadata["require_pkce"], bool):
        raise ClientMetadataError("require_pkce must be true or false")
    name = metadata.get("client_name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        raise ClientMetadataError("client_name must be text of at most 200 characters")
    return clean


def register_client(client_id: str, metadata: dict[str, Any], client_secret: str | None) -> Client:
    """Create or update a client; running twice with the same input changes nothing."""
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 128:
        raise ClientMetadataError("client_id must be text of 1 to 128 characters")
    clean = validate_client_metadata(metadata, client_secret)
    secret_hash = hash_client_secret(client_secret) if client_secret else None
    client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    created = client is None
    if created:
        client = Client(client_id=client_id)
        db.session.add(client)
    changed = created or client.client_metadata != clean or client.client_secret_hash != secret_hash
    client.client_metadata = clean
    client.client_secret_hash = secret_hash
    db.session.commit()
    if changed:
        audit.record("client.registered" if created else "client.updated", client_id=client_id)
    return client


@dataclass(frozen=True)
class Department:
    """A demo department from config/departments.toml, with its port and credentials."""

    client_id: str
    service: str
    name: str
    department: str
    colour: str
    port: int
    base_url: str
    metadata: dict[str, Any] = field(default_factory=dict)
    client_secret: str | None = None
    private_key_path: str | None = None


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
    """A demo department's client secret, generated once into the instance folder."""
    path = Path(settings.instance_path) / "department-secrets" / client_id
    return secret_file(path, lambda: secrets.token_urlsafe(32))


def load_departments(settings: Settings) -> list[Department]:
    """The demo departments, each on its own port from departments_base_port upward."""
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
    departments = []
    for index, entry in enumerate(data.get("department", [])):
        port = settings.departments_base_port + index
        base_url = f"http://localhost:{port}"
        metadata = _substitute(entry.get("metadata", {}), base_url)
        method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        client_id = entry["client_id"]
        departments.append(
            Department(
                client_id=client_id,
                service=entry["service"],
                name=entry["name"],
                department=entry["department"],
                colour=entry.get("colour", "#1d70b8"),
                port=port,
                base_url=base_url,
                metadata=metadata,
                client_secret=department_secret(settings, client_id)
                if method.startswith("client_secret")
                else None,
                private_key_path=str(
                    Path(settings.instance_path) / "department-keys" / f"{client_id}.pem"
                )
                if method == "private_key_jwt"
                else None,
            )
        )
    return departments


def register_departments(settings: Settings) -> list[Department]:
    """Register every demo department (idempotent)."""
    departments = load_departments(settings)
    for department in departments:
        register_client(department.client_id, department.metadata, department.client_secret)
    return departments

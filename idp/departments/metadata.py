"""The registration policy: which client metadata (RFC 7591 2, OIDC Registration 2) the IdP
accepts, checked the same way for the API, the department pages, the CLI and the demo file.

Every refusal names the field, so a department can fix its request without asking anyone.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from idp.accounts.identity.vocabulary import IDENTITY_CLAIMS
from idp.models.client import mixed_scripts
from idp.oidc.claims import SCOPES_SUPPORTED, SUBJECT_TYPES
from idp.oidc.client_auth import ASSERTION_ALGORITHMS
from idp.oidc.client_keys import ClientKeysUnavailable, import_key_set
from idp.oidc.grants import GRANT_TYPES
from idp.security.outbound import FetchError, fetch_json
from idp.settings import current_settings, is_loopback_host

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
ID_TOKEN_ALGS = ("ES256", "RS256")
MAX_URIS = 20
MAX_URI_LENGTH = 2000
MAX_CONTACTS = 10
MAX_HOST_LENGTH = 253
MAX_KEYS = 10
# The members of a stored public JWK (RFC 7517 4, RFC 7518 6.2.1 and 6.3.1).
JWK_MEMBERS = ("kty", "use", "alg", "kid", "crv", "x", "y", "n", "e")

# Metadata the IdP understands and stores; anything else is ignored (RFC 7591 2).
KNOWN_FIELDS = (
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "contacts",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "jwks",
    "id_token_signed_response_alg",
    "subject_type",
    "sector_identifier_uri",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "require_pkce",
    "identity_claims",
)


class ClientMetadataError(ValueError):
    """Client metadata cannot be accepted; the message names the field (RFC 7591 3.2.2)."""

    def __init__(self, message: str, error: str = "invalid_client_metadata"):
        super().__init__(message)
        self.error = error

    @property
    def field(self) -> str | None:
        """The metadata field the message starts with, for pointing a form at it."""
        first = str(self).split(":", 1)[0].split(" ", 1)[0]
        return first if first in KNOWN_FIELDS or first.startswith("client_name#") else None

    def for_a_form(self) -> str:
        """The message beside the form field it is about, which is already labelled: without
        the metadata field's name ("client_name: 'X' is already..." -> "'X' is already...")."""
        message = str(self)
        field = self.field
        if field and message.startswith(f"{field}: "):
            rest = message[len(field) + 2 :]
            return rest[:1].upper() + rest[1:]
        return message


def web_uri_problem(uri: str) -> str | None:
    """Why a URI is not an absolute https URI (http allowed on loopback), or None."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number 0-65535
    except ValueError:
        return "is not a valid URI (check the host and port)"
    if parts.scheme not in {"https", "http"} or not parts.netloc or not parts.hostname:
        return "is not an absolute http(s) URI"
    host = parts.hostname
    if len(host) > MAX_HOST_LENGTH or any(len(label) > 63 for label in host.split(".")):
        return f"has a host name longer than DNS allows ({MAX_HOST_LENGTH} characters)"
    if not host.isascii():
        return "must have an ASCII host name (write internationalised names in punycode)"
    if any(c in uri for c in '"<>\\^`{|}'):
        return "contains characters that are not allowed in a URI"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        # RFC 8252 7.3: http on this machine only (loopback addresses and localhost names).
        return "must use https (http is allowed only on loopback)"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    return None


def _uri(field: str, value: Any, error: str = "invalid_client_metadata") -> str:
    """One absolute https URI (http on loopback) without a fragment or a wildcard."""
    if not isinstance(value, str) or not value:
        raise ClientMetadataError(f"{field} must be a URI", error)
    if len(value) > MAX_URI_LENGTH:
        raise ClientMetadataError(
            f"{field}: a URI is longer than {MAX_URI_LENGTH} characters", error
        )
    if any(c.isspace() or ord(c) < 32 for c in value):
        raise ClientMetadataError(
            f"{field}: {value!r} contains spaces or control characters", error
        )
    if problem := web_uri_problem(value):
        raise ClientMetadataError(f"{field}: {value} {problem}", error)
    if "#" in value:
        raise ClientMetadataError(f"{field}: {value} must not have a fragment", error)
    if "*" in value:
        raise ClientMetadataError(f"{field}: {value} must not contain a wildcard", error)
    return value


def _uri_list(field: str, value: Any, error: str = "invalid_client_metadata") -> list[str]:
    """A non-empty list of URIs, without duplicates."""
    if not isinstance(value, list) or not value:
        raise ClientMetadataError(f"{field} must be a non-empty list of URIs", error)
    if len(value) > MAX_URIS:
        raise ClientMetadataError(f"{field} may hold at most {MAX_URIS} URIs", error)
    uris = [_uri(field, item, error) for item in value]
    if len(set(uris)) != len(uris):
        raise ClientMetadataError(f"{field} lists the same URI twice", error)
    return uris


def _text(field: str, value: Any, limit: int = 200) -> str:
    """Printable text of at most limit characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ClientMetadataError(f"{field} must be text of 1 to {limit} characters")
    if not value.isprintable():
        # Not only C0 controls: DEL, C1 controls and invisible format characters such as
        # U+202E (right-to-left override) would let a name shown to citizens read otherwise.
        raise ClientMetadataError(f"{field} must not contain control characters")
    return value.strip()


def _contacts(value: Any) -> list[str]:
    """Email addresses of the people responsible for the service."""
    if not isinstance(value, list) or len(value) > MAX_CONTACTS:
        raise ClientMetadataError(f"contacts must be a list of at most {MAX_CONTACTS} emails")
    contacts = []
    for item in value:
        if not isinstance(item, str):
            raise ClientMetadataError("contacts must be a list of email addresses")
        try:
            contacts.append(validate_email(item, check_deliverability=False).normalized)
        except EmailNotValidError:
            raise ClientMetadataError(f"contacts: {item!r} is not an email address") from None
    return contacts


def _scope(value: Any) -> str:
    """Space-separated supported scopes, including openid (offline_access among them: OIDC
    Core 11; it is honoured only with the refresh_token grant, see Client.get_allowed_scope)."""
    if not isinstance(value, str) or "openid" not in value.split():
        raise ClientMetadataError("scope must be a space-separated string containing openid")
    unknown = [s for s in value.split() if s not in SCOPES_SUPPORTED]
    if unknown:
        raise ClientMetadataError(
            f"scope: {unknown[0]!r} is not supported (supported: {' '.join(SCOPES_SUPPORTED)})"
        )
    return " ".join(dict.fromkeys(value.split()))


def _keys(clean: dict[str, Any], metadata: dict[str, Any], method: str) -> None:
    """jwks (keys by value) or jwks_uri (by reference); private_key_jwt needs exactly one."""
    has_jwks = metadata.get("jwks") is not None
    has_uri = metadata.get("jwks_uri") is not None
    if has_jwks and has_uri:
        raise ClientMetadataError("jwks and jwks_uri must not both be given")
    if method == "private_key_jwt" and not (has_jwks or has_uri):
        raise ClientMetadataError("jwks_uri or jwks is required for private_key_jwt")
    if has_jwks:
        try:
            key_set = import_key_set(metadata["jwks"], "jwks")
        except ClientKeysUnavailable as exc:
            raise ClientMetadataError(str(exc)) from None
        if not 0 < len(key_set.keys) <= MAX_KEYS:
            raise ClientMetadataError(f"jwks must hold 1 to {MAX_KEYS} keys")
        if any(key.get("use", "sig") != "sig" for key in key_set.keys):
            raise ClientMetadataError('jwks: every key must be a signing key (use "sig")')
        clean["jwks"] = {"keys": [_public_jwk(k) for k in key_set.as_dict(private=False)["keys"]]}
    if has_uri:
        clean["jwks_uri"] = _uri("jwks_uri", metadata["jwks_uri"])


def _public_jwk(jwk: dict[str, Any]) -> dict[str, Any]:
    """Only the members that make up a public signing key, checked: nothing else is stored."""
    alg = jwk.get("alg")
    if alg is not None and alg not in ASSERTION_ALGORITHMS:
        raise ClientMetadataError(
            f"jwks: alg {alg!r} is not accepted (use one of {', '.join(ASSERTION_ALGORITHMS)})"
        )
    kid = jwk.get("kid")
    if kid is not None and (
        not isinstance(kid, str) or not 0 < len(kid) <= 200 or not kid.isprintable()
    ):
        raise ClientMetadataError("jwks: a kid must be printable text of at most 200 characters")
    return {name: jwk[name] for name in JWK_MEMBERS if name in jwk}


def _identity_claims(value: Any) -> list[str]:
    """The verified identity details the service asks to receive (One Login's claim names,
    vocabulary.IDENTITY_CLAIMS), in the vocabulary's order; none is an empty list. A platform
    administrator approves them like any other setting (services.MATERIAL_FIELDS)."""
    if not isinstance(value, list):
        raise ClientMetadataError(
            f'identity_claims must be a list of claim names, such as ["{IDENTITY_CLAIMS[0]}"]'
        )
    for item in value:
        if not isinstance(item, str):
            raise ClientMetadataError(
                f"identity_claims: {item!r} is not a claim name (each must be a string)"
            )
        if item not in IDENTITY_CLAIMS:
            shown = item if len(item) <= 100 else item[:100] + "..."
            raise ClientMetadataError(
                f"identity_claims: {shown!r} is not a verified identity detail this IdP offers "
                f"(offered: {', '.join(IDENTITY_CLAIMS)})"
            )
    repeated = next((item for i, item in enumerate(value) if item in value[:i]), None)
    if repeated is not None:
        raise ClientMetadataError(f"identity_claims lists {repeated} twice")
    return [claim for claim in IDENTITY_CLAIMS if claim in value]


def _one_of(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    """One value from a fixed list."""
    if value not in allowed:
        raise ClientMetadataError(f"{field} must be one of {', '.join(allowed)}")
    return value


def _boolean(field: str, value: Any) -> bool:
    """true or false."""
    if not isinstance(value, bool):
        raise ClientMetadataError(f"{field} must be true or false")
    return value


def sector_identifier(clean: dict[str, Any]) -> str:
    """OIDC Core 8.1: the host of sector_identifier_uri, else of the (single-host) redirect URIs."""
    if clean.get("sector_identifier_uri"):
        return urlsplit(clean["sector_identifier_uri"]).hostname or ""
    hosts = {urlsplit(uri).hostname for uri in clean["redirect_uris"]}
    if len(hosts) > 1 and clean.get("subject_type") == "pairwise":
        raise ClientMetadataError(
            "sector_identifier_uri is required for pairwise subjects when redirect_uris "
            "use more than one host"
        )
    return sorted(h for h in hosts if h)[0]


def _check_sector_document(uri: str, redirect_uris: list[str]) -> None:
    """OIDC Registration 5: the document at sector_identifier_uri lists every redirect URI."""
    try:
        listed = fetch_json(uri, "sector_identifier_uri")
    except FetchError as exc:
        raise ClientMetadataError(str(exc)) from None
    if not isinstance(listed, list) or not all(isinstance(u, str) for u in listed):
        raise ClientMetadataError("sector_identifier_uri must return a JSON array of URIs")
    missing = [u for u in redirect_uris if u not in listed]
    if missing:
        raise ClientMetadataError(
            f"sector_identifier_uri does not list the redirect URI {missing[0]}"
        )


def _check_one_script(name: str, field: str = "client_name") -> None:
    """A name mixing Latin with Cyrillic or Greek letters can copy another service's name
    letter for letter (UTS #39 5.1), so it is refused."""
    scripts = mixed_scripts(name)
    if scripts:
        odd = sorted(
            {c for c in name if c.isalpha() and not unicodedata.name(c, "").startswith("LATIN")}
        )
        raise ClientMetadataError(
            f"{field} mixes {' and '.join(s.title() for s in scripts)} letters "
            f"({', '.join(odd)}): such a name can look exactly like another service's, so "
            "write it in one alphabet"
        )


def _names_in_languages(metadata: dict[str, Any]) -> dict[str, str]:
    """client_name in the other languages the pages are offered in (RFC 7591 2.2: a member
    name with a BCP 47 tag, "client_name#cy"), kept under the language's primary tag
    ("client_name#cy-GB" is stored as "client_name#cy"). A tag for a language the pages are
    not offered in is ignored, as RFC 7591 2 says of metadata the server does not use."""
    names: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key.startswith("client_name#"):
            continue
        language = key.split("#", 1)[1].split("-", 1)[0].lower()
        if language not in current_settings().ui_locales_supported or value is None:
            continue
        field = f"client_name#{language}"
        if field in names:
            raise ClientMetadataError(f"{field} is given twice (as {key})")
        names[field] = _text(field, value)
        _check_one_script(names[field], field)
    return names


def validate_client_metadata(metadata: Any) -> dict[str, Any]:
    """Check metadata against what the IdP supports; returns only the fields it stores."""
    if not isinstance(metadata, dict):
        raise ClientMetadataError("client metadata must be a JSON object")
    clean: dict[str, Any] = {}
    if "redirect_uris" not in metadata:
        raise ClientMetadataError(
            "redirect_uris is required: a list of URIs", "invalid_redirect_uri"
        )
    clean["redirect_uris"] = _uri_list(
        "redirect_uris", metadata["redirect_uris"], "invalid_redirect_uri"
    )
    method = _one_of(
        "token_endpoint_auth_method",
        metadata.get("token_endpoint_auth_method", "client_secret_basic"),
        AUTH_METHODS,
    )
    clean["token_endpoint_auth_method"] = method
    _keys(clean, metadata, method)
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not grant_types:
        raise ClientMetadataError("grant_types must be a list")
    for grant_type in grant_types:
        _one_of("grant_types", grant_type, GRANT_TYPES)
    clean["grant_types"] = list(dict.fromkeys(grant_types))
    if metadata.get("response_types", ["code"]) != ["code"]:
        raise ClientMetadataError(
            'response_types must be ["code"]: only the code flow is supported'
        )
    clean["response_types"] = ["code"]
    clean["scope"] = _scope(metadata.get("scope", "openid"))
    clean["id_token_signed_response_alg"] = _one_of(
        "id_token_signed_response_alg",
        metadata.get("id_token_signed_response_alg", "ES256"),
        ID_TOKEN_ALGS,
    )
    clean["subject_type"] = _one_of(
        "subject_type", metadata.get("subject_type", "pairwise"), SUBJECT_TYPES
    )
    if "require_pkce" in metadata:
        clean["require_pkce"] = _boolean("require_pkce", metadata["require_pkce"])
        if method == "none" and not clean["require_pkce"]:
            raise ClientMetadataError("require_pkce cannot be false for a public client (none)")
    for field in ("client_name",):
        if metadata.get(field) is not None:
            clean[field] = _text(field, metadata[field])
    if clean.get("client_name"):
        _check_one_script(clean["client_name"])
    clean.update(_names_in_languages(metadata))
    for field in ("client_uri", "logo_uri", "policy_uri", "tos_uri", "backchannel_logout_uri"):
        if metadata.get(field) is not None:
            clean[field] = _uri(field, metadata[field])
    if metadata.get("post_logout_redirect_uris") is not None:
        clean["post_logout_redirect_uris"] = _uri_list(
            "post_logout_redirect_uris", metadata["post_logout_redirect_uris"]
        )
    if metadata.get("backchannel_logout_session_required") is not None:
        clean["backchannel_logout_session_required"] = _boolean(
            "backchannel_logout_session_required", metadata["backchannel_logout_session_required"]
        )
    if metadata.get("contacts") is not None:
        clean["contacts"] = _contacts(metadata["contacts"])
    # Stored only when the service asks for some: none is the same as not registering it.
    if metadata.get("identity_claims") is not None and (
        claims := _identity_claims(metadata["identity_claims"])
    ):
        clean["identity_claims"] = claims
    if metadata.get("sector_identifier_uri") is not None:
        clean["sector_identifier_uri"] = _uri(
            "sector_identifier_uri", metadata["sector_identifier_uri"]
        )
        _check_sector_document(clean["sector_identifier_uri"], clean["redirect_uris"])
    sector_identifier(clean)  # refuses pairwise across hosts without a sector document
    return clean

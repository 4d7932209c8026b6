"""A department's registered service: an OAuth client (RFC 7591 metadata)."""

import hashlib
import hmac
import json
import unicodedata
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from flask import current_app, g
from sqlalchemy import JSON, ForeignKey, LargeBinary, String, bindparam
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from idp.extensions import db
from idp.models.department import Department
from idp.models.generation import REGISTRATIONS, ProcessCache
from idp.models.timestamps import UTCDateTime, utcnow
from idp.settings import current_settings

# A new self-registered service waits for a platform administrator's approval.
CLIENT_STATUS_PENDING = "pending"
CLIENT_STATUS_ACTIVE = "active"
# A platform administrator stopped the service; only a platform administrator restores it.
CLIENT_STATUS_SUSPENDED = "suspended"
# Its own department switched the service off; the department may switch it back on.
CLIENT_STATUS_DISABLED = "disabled"
CLIENT_STATUSES = (
    CLIENT_STATUS_PENDING,
    CLIENT_STATUS_ACTIVE,
    CLIENT_STATUS_SUSPENDED,
    CLIENT_STATUS_DISABLED,
)


# Cyrillic and Greek letters drawn like Latin ones (after casefolding), from Unicode's
# confusables (UTS #39): a name spelt with them reads as the Latin name it copies.
LATIN_LOOKALIKES = str.maketrans(
    {
        "а": "a", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
        "ӏ": "l", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "у": "y", "ү": "y", "х": "x",
        "ԝ": "w", "α": "a", "ϲ": "c", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "υ": "u", "χ": "x",
    }
)  # fmt: skip
CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def _name_character(c: str) -> str:
    """Invisible format characters (zero-width spaces) go; punctuation, symbols, spaces and
    controls separate words; letters and digits stay."""
    category = unicodedata.category(c)
    if category == "Cf":
        return ""
    return " " if category[0] in "PSZC" else c


def name_key(name: str | None) -> str | None:
    """A service name as citizens would read it, so look-alikes are the same name: NFKC
    (full-width and other compatibility forms), case, punctuation and symbols, runs of
    spaces, invisible characters, and Cyrillic or Greek letters drawn like Latin ones are
    all ignored.
    "Ｒenew your pаssport." and "renew-your  passport" are "renew your passport"."""
    if not name:
        return None
    text = unicodedata.normalize("NFKC", name).casefold()
    text = "".join(_name_character(c) for c in text).translate(LATIN_LOOKALIKES)
    return " ".join(text.split())[:400] or None


def mixed_scripts(name: str) -> list[str]:
    """The scripts a name mixes among Latin, Cyrillic and Greek letters (empty when it uses
    one): such a name can pass for another (UTS #39 5.1, mixed-script detection)."""
    scripts = {
        unicodedata.name(c, "").split(" ")[0]
        for c in unicodedata.normalize("NFKC", name)
        if c.isalpha()
    }
    found = [script for script in CONFUSABLE_SCRIPTS if script in scripts]
    return found if len(found) > 1 else []


def metadata_digest(metadata: dict[str, Any]) -> str:
    """SHA-256 of the metadata in canonical JSON (sorted keys), naming one exact version."""
    canonical = json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hash_client_secret(secret: str) -> str:
    """SHA-256 of a client secret; secrets are long random strings, so no slow hash is needed."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Client(db.Model, ClientMixin):
    """A department service allowed to ask the IdP who a citizen is."""

    __tablename__ = "client"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    client_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=CLIENT_STATUS_ACTIVE)
    client_id_issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What a suspension interrupted, restored when the service is reinstated.
    status_before_suspension: Mapped[str | None] = mapped_column(String(16))
    # When a platform administrator (or the operator) first let the service be used.
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Counts every change of the metadata; approved_version is the one a platform
    # administrator approved. The service may be active only while the two are equal.
    metadata_version: Mapped[int] = mapped_column(default=1)
    approved_version: Mapped[int | None] = mapped_column()
    # The metadata of approved_version, as the administrator approved it. While a newer
    # version waits (or the service is not active), the IdP acts only on what was reviewed:
    # where citizens go after signing out, where logout tokens are sent.
    approved_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # client_name as compared between services (see name_key), for the unique-name check.
    name_key: Mapped[str | None] = mapped_column(String(400), index=True)
    # The logo the IdP fetched from logo_uri at approval and serves itself (content-addressed
    # by its SHA-256); logo_problem says why there is none when the fetch or check failed.
    logo_content_type: Mapped[str | None] = mapped_column(String(32))
    logo_sha256: Mapped[str | None] = mapped_column(String(64))
    logo_image: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    logo_problem: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("department.id", ondelete="RESTRICT"), index=True
    )
    # RFC 7592: the hash of the token that reads, updates and deletes this registration.
    registration_access_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # OIDC Core 8.1: the host pairwise subjects are derived for.
    sector_identifier: Mapped[str | None] = mapped_column(String(255))

    department: Mapped[Department | None] = relationship(lazy="joined")

    # Metadata, read with the RFC 7591 names and the IdP's secure defaults.

    @property
    def client_name(self) -> str:
        """The name citizens see on the sign-in and consent pages."""
        return self.client_metadata.get("client_name") or self.client_id

    def name_in(self, language: str) -> str:
        """The name in a language, when the department registered one for it (RFC 7591 2.2:
        "client_name#cy"), else client_name."""
        return self.client_metadata.get(f"client_name#{language}") or self.client_name

    @property
    def redirect_uris(self) -> list[str]:
        """Registered redirect URIs, matched exactly."""
        return list(self.client_metadata.get("redirect_uris", []))

    @property
    def token_endpoint_auth_method(self) -> str:
        """How the client authenticates at the token endpoint."""
        return self.client_metadata.get("token_endpoint_auth_method", "client_secret_basic")

    @property
    def id_token_signed_response_alg(self) -> str | None:
        """ES256 unless the department registered RS256."""
        return self.client_metadata.get("id_token_signed_response_alg")

    @property
    def require_pkce(self) -> bool:
        """PKCE is required unless a confidential client registered it as optional."""
        if self.token_endpoint_auth_method == "none":
            return True
        return bool(self.client_metadata.get("require_pkce", True))

    @property
    def jwks(self) -> dict[str, Any] | None:
        """Public keys registered by value, for private_key_jwt."""
        return self.client_metadata.get("jwks")

    @property
    def jwks_uri(self) -> str | None:
        """Where the department publishes its public keys, for private_key_jwt."""
        return self.client_metadata.get("jwks_uri")

    @property
    def subject_type(self) -> str:
        """pairwise (the default: one unlinkable sub per sector) or public."""
        return self.client_metadata.get("subject_type", "pairwise")

    @property
    def logo_uri(self) -> str | None:
        """The department's logo, shown beside its name to citizens."""
        return self.client_metadata.get("logo_uri")

    @property
    def reviewed_post_logout_redirect_uris(self) -> list[str]:
        """The post_logout_redirect_uris of the approved version (none before an approval):
        the only ones the IdP ever sends a citizen to."""
        return list((self.approved_metadata or {}).get("post_logout_redirect_uris", []))

    @property
    def reviewed_backchannel_logout_uri(self) -> str | None:
        """The backchannel_logout_uri of the approved version: the only one logout tokens
        are sent to, whatever a change waiting for approval says."""
        return (self.approved_metadata or {}).get("backchannel_logout_uri")

    @property
    def reviewed_identity_claims(self) -> list[str]:
        """The verified identity details (One Login claim names, such as
        https://vocab.account.gov.uk/v1/coreIdentityJWT) of the approved version's
        `identity_claims`: the only ones the department may ask for and receive."""
        return list((self.approved_metadata or {}).get("identity_claims", []))

    @property
    def is_public(self) -> bool:
        """A client with no credential of its own (token_endpoint_auth_method none)."""
        return self.token_endpoint_auth_method == "none"

    @property
    def approval_is_current(self) -> bool:
        """Whether a platform administrator approved exactly the metadata it has now."""
        return self.approved_version is not None and self.approved_version == self.metadata_version

    @property
    def metadata_sha256(self) -> str:
        """The digest of the current metadata, recorded when it is approved."""
        return metadata_digest(self.client_metadata)

    @property
    def is_active(self) -> bool:
        """Whether the service may be used now."""
        return self.status == CLIENT_STATUS_ACTIVE

    # Authlib's ClientMixin hooks.

    def get_client_id(self) -> str:
        """The client identifier."""
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """None: OpenID Connect requires redirect_uri in every authorization request."""
        return None

    def get_allowed_scope(self, scope: str) -> str:
        """The requested scopes this client may have: those it registered, and offline_access
        when it is registered for the refresh_token grant (OIDC Core 11). Any other scope is
        left out, not refused: RFC 6749 3.3 lets the server grant less than was asked (the
        token response's scope then says what was granted), and OIDC Core 3.1.2.1 says scope
        values that are not understood are ignored."""
        if not scope:
            return ""
        allowed = set(scope_to_list(self.client_metadata.get("scope", "openid")))
        allowed.discard("offline_access")
        if self.check_grant_type("refresh_token"):
            allowed.add("offline_access")
        return list_to_scope([s for s in scope_to_list(scope) if s in allowed])

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact, byte-for-byte match against a registered redirect URI (RFC 9700 4.1.3)."""
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """Compare a presented secret with the stored hash in constant time."""
        if not self.client_secret_hash:
            return False
        return hmac.compare_digest(self.client_secret_hash, hash_client_secret(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Only the authentication method the client registered is accepted."""
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        """Only the code flow."""
        return response_type in self.client_metadata.get("response_types", ["code"])

    def check_grant_type(self, grant_type: str) -> bool:
        """Grant types the client registered (authorization_code by default)."""
        return grant_type in self.client_metadata.get("grant_types", ["authorization_code"])


def _plausible(client_id) -> bool:
    # PostgreSQL text cannot hold NUL, and no registered client_id contains one.
    return isinstance(client_id, str) and len(client_id) <= 128 and "\x00" not in client_id


def find_client(client_id: str) -> Client | None:
    """The registered client with this identifier, from the database, looked up once per
    request: for pages and APIs that change a registration (it is the request's own row)."""
    if not _plausible(client_id):
        return None
    found = g.setdefault("clients_found", {})
    if client_id not in found:
        found[client_id] = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
    return found[client_id]


_LOAD_CLIENT = db.select(Client).where(Client.client_id == bindparam("client_id"))


def _load_read_only(client_id: str) -> Client | None:
    client = db.session.scalar(_LOAD_CLIENT, {"client_id": client_id})
    if client is not None:
        db.session.expunge(client)  # kept by the process, never by a request's session
        if client.department is not None:
            db.session.expunge(client.department)
    return client


_registrations = ProcessCache(
    REGISTRATIONS, _load_read_only, lambda: current_settings().cache_check_seconds
)


def registered_client(client_id: str) -> Client | None:
    """The registered client with this identifier, as the protocol reads it on every request:
    kept in this process until any registration changes (idp/models/generation.py), so most
    requests load no row. The object is read-only: a change goes through ``find_client``."""
    if not _plausible(client_id):
        return None
    return _registrations.get(current_app.config["SQLALCHEMY_DATABASE_URI"], client_id)


def forget_registered_clients() -> None:
    """Drop this process's copies (tests that change rows behind the ORM's back)."""
    _registrations.clear()

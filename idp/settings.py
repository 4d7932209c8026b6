"""Settings: defaults < config file (TOML) < IDP_* environment variables.

Every default is here with a one-line comment. Values that are only safe for a developer's
machine (generated secrets in ``instance/``) are announced loudly at start-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def is_localhost_name(host: str | None) -> bool:
    """localhost and names under .localhost: always this machine (RFC 6761 6.3)."""
    return host is not None and (host == "localhost" or host.endswith(".localhost"))


def is_loopback_host(host: str | None) -> bool:
    """A localhost name or a loopback address: this machine."""
    return is_localhost_name(host) or host in {"127.0.0.1", "::1"}


class SettingsError(ValueError):
    """A setting has a value the IdP cannot use."""


# What a throttle counts failures of: each has its own counters and limits.
# "email_code" counts wrong codes sent by email; "email_send" counts codes sent to an address;
# "sms_code" and "sms_send" likewise for text messages confirming a new mobile number (a code
# typed at sign-in counts as "second_factor", with the app's); "identity_check" counts identity
# checks failed on the evidence from one network.
THROTTLE_KINDS = (
    "password",
    "second_factor",
    "recovery",
    "reset",
    "email_code",
    "email_send",
    "sms_code",
    "sms_send",
    "identity_check",
)
# GOV.UK Notify's API, which the IdP sends email and text messages through when a key is set.
NOTIFY_BASE_URL = "https://api.notifications.service.gov.uk"
# A Notify API key ends with the service id and the secret (two UUIDs, 36 characters each).
NOTIFY_KEY_MIN_LENGTH = 74
# NIST SP 800-63B 5.2.2: no more than 100 consecutive failed attempts on one account.
THROTTLE_MAX_FAILURES_CEILING = 100


@dataclass(frozen=True)
class ThrottleLimits:
    """The throttling limits of one kind (the throttle_* settings, without the prefix)."""

    max_failures: int
    lockout_seconds: int
    delay_after: int
    delay_seconds: int
    max_delay_seconds: int
    failure_memory_seconds: int
    ip_max_failures: int
    ip_window_seconds: int

    def check(self, kind: str) -> None:
        """SettingsError unless the limits make sense together."""
        where = f"throttling limits for {kind!r}"
        if not 1 <= self.max_failures <= THROTTLE_MAX_FAILURES_CEILING:
            raise SettingsError(
                f"{where}: max_failures must be 1 to {THROTTLE_MAX_FAILURES_CEILING}"
                " (NIST SP 800-63B allows at most 100 consecutive failures)"
            )
        if self.lockout_seconds < 1:
            raise SettingsError(f"{where}: lockout_seconds must be at least 1")
        if self.delay_after < 1 or self.delay_seconds < 0:
            raise SettingsError(f"{where}: delay_after must be 1 or more, delay_seconds 0 or more")
        if self.delay_seconds and not 1 <= self.max_delay_seconds < self.lockout_seconds:
            raise SettingsError(f"{where}: max_delay_seconds must be 1 or more, below the lockout")
        if self.failure_memory_seconds < self.lockout_seconds:
            raise SettingsError(f"{where}: failure_memory_seconds must be at least the lockout")
        if self.ip_max_failures < 1 or self.ip_window_seconds < 1:
            raise SettingsError(f"{where}: ip_max_failures and ip_window_seconds must be 1 or more")


@dataclass(frozen=True)
class Settings:
    """Every knob of the IdP, with secure defaults."""

    # The issuer identifier departments configure; empty means http://localhost:<port>.
    issuer: str = ""
    # Host and port `idp serve` listens on.
    host: str = "127.0.0.1"
    port: int = 8000
    # Where SQLite, generated development secrets and the mail outbox live.
    instance_path: str = str(PROJECT_ROOT / "instance")
    # SQLAlchemy URL; empty means SQLite in the instance folder (the embedded default).
    database_url: str = ""
    # Redis URL for shared throttling counters in production; empty means the database.
    redis_url: str = ""
    # Flask secret (signs the CSRF cookie only); empty means generated into instance/ (dev).
    secret_key: str = ""
    # Fernet key that encrypts private signing keys at rest; empty means generated (dev).
    key_encryption_key: str = ""
    # Fernet key that encrypts citizens' verified identity details (names, birth dates,
    # addresses, document numbers) at rest; empty means generated (dev). Keep it apart from
    # the signing keys' key, as a different secret for a different risk.
    identity_encryption_key: str = ""
    # A proved identity lasts this many days; then the citizen proves it again when a
    # department asks for it.
    identity_valid_days: int = 180
    # A coreIdentityJWT (the verified name and birth date given at userinfo) is valid for this
    # many seconds after it is issued (exp = nbf + this); the department checks it on receipt.
    identity_jwt_lifetime: int = 3600
    # An identity check in progress may take this many seconds (an hour) between its steps.
    identity_check_lifetime: int = 3600
    # Identity checks failed on the evidence from one network (IP address) in a window of this
    # many seconds (a day), whoever's account: past it, no check starts from there until the
    # window ends. Each account has its own limit of three besides, so this one stops many
    # accounts guessing at the registers and the questions from one place.
    identity_network_max_failed_checks: int = 20
    identity_network_window_seconds: int = 86400
    # The evidence services (simulated passport office, driving licence register, address and
    # fraud check, knowledge-based questions): a table of their base URLs by kind, e.g.
    # {passport = "https://...", driving_licence = ..., address = ..., kbv = ...}; as an
    # environment variable, the same as JSON. Empty: identity checks are not offered.
    evidence_services: dict[str, Any] = field(default_factory=dict)
    # Authorization codes live this many seconds (RFC 9700 asks for short-lived codes).
    authorization_code_lifetime: int = 60
    # Access tokens live this many seconds.
    access_token_lifetime: int = 300
    # ID tokens are valid for this many seconds.
    id_token_lifetime: int = 300
    # A refresh token family ends this many seconds after the sign-in, however often it is
    # rotated (for departments registered for the refresh_token grant).
    refresh_token_lifetime: int = 43200
    # Logout tokens (back-channel logout) are valid for this many seconds after signing.
    logout_token_lifetime: int = 120
    # A new signing key is published in the JWKS this many seconds before it signs anything
    # (`idp keys rotate`), so departments that cache the JWKS know it first.
    signing_key_lead_time: int = 7200
    # The JWKS's Cache-Control max-age: how long departments and the proxy in front of the IdP
    # (run-prod's nginx) may serve a copy. Short, so a withdrawn key (`idp keys retire`) stops
    # being trusted soon; refetches are conditional (ETag) and answered by the proxy.
    jwks_max_age: int = 300
    # A pending sign-in journey (between /authorize and the code) may take this long.
    interaction_lifetime: int = 1800
    # Single sign-on session: idle timeout and absolute lifetime (NIST SP 800-63B AAL2).
    session_idle_timeout: int = 1800
    session_absolute_lifetime: int = 43200
    # Name of the single sign-on session cookie.
    session_cookie_name: str = "idp_session"
    # Accept client assertions (private_key_jwt) whose lifetime is at most this long.
    client_assertion_max_lifetime: int = 3600
    # Allowed clock skew, in seconds, when checking client assertions.
    clock_skew: int = 60
    # A client's jwks_uri is fetched with this timeout and cached this long.
    jwks_fetch_timeout: float = 5.0
    jwks_cache_lifetime: int = 300
    # Fetch departments' URIs (jwks_uri, sector_identifier_uri) on private, loopback and
    # link-local addresses; defaults to true only when the issuer itself is on loopback
    # (a developer's machine), so a registration cannot make the IdP probe its own network.
    fetch_private_addresses: bool | None = None
    # A department's logo (logo_uri), fetched at approval and served by the IdP, may be at
    # most this many bytes (PNG, JPEG, GIF or WebP); a larger one is refused, not shown.
    logo_max_bytes: int = 100 * 1024
    # Keyed hash secret for pairwise subject identifiers; empty means generated (dev).
    # Changing it changes every pairwise sub, so it is kept like a signing key.
    pairwise_secret: str = ""
    # Initial access tokens (RFC 7591) expire after this many seconds unless told otherwise.
    initial_access_token_lifetime: int = 7 * 24 * 3600
    # Outgoing mail: smtp://user:pass@host:587 (STARTTLS) or smtps://host:465; empty means the
    # local outbox (instance/outbox.jsonl, shown at /dev/outbox when dev_pages is on).
    smtp_url: str = ""
    # The From address of every email the IdP sends.
    mail_from: str = "Government sign in <no-reply@sign-in.example.gov.uk>"
    # GOV.UK Notify API key: when set, email and text messages go through Notify (not SMTP,
    # not the outbox); it needs the two template ids below. Empty: SMTP or the local outbox.
    notify_api_key: str = ""
    # Notify's API (a test points it at a local stand-in).
    notify_base_url: str = NOTIFY_BASE_URL
    # The Notify email template: subject "((subject))", body "((body))".
    notify_email_template_id: str = ""
    # The Notify text message template: "((body))".
    notify_sms_template_id: str = ""
    # Codes sent by text message to one number, whoever asks and from wherever, in a window of
    # this many seconds (a day): each costs money, and the throttle on sends per number and
    # network alone would let someone run up the bill from many networks.
    sms_number_max_sends: int = 10
    sms_number_window_seconds: int = 86400
    # Where a citizen who reports something they do not recognise can get help (an address or
    # a web page, shown as written); empty leaves the contact line out.
    support_contact: str = ""
    # Staff sessions: shorter than citizens', since staff can change what citizens see.
    staff_session_idle_timeout: int = 900
    staff_session_absolute_lifetime: int = 28800
    # Default ID token signing algorithm (GOV.UK One Login uses ES256).
    default_id_token_alg: str = "ES256"
    # argon2id parameters (OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1).
    argon2_time_cost: int = 2
    argon2_memory_cost: int = 19456
    argon2_parallelism: int = 1
    # Longest password accepted, in characters (NIST SP 800-63B asks for at least 64).
    password_max_length: int = 256
    # Shortest password accepted (every account gets a second factor in a later step).
    password_min_length: int = 8
    # Shortest password that is enough on its own where a department accepts "Cl" (NIST SP
    # 800-63B rev 4 3.1.1.2: 15 for a single-factor password); shorter ones need the second factor.
    password_single_factor_min_length: int = 15
    # Sign-in throttling (NIST SP 800-63B 5.2.2): consecutive failures before an account locks
    # (at most 100).
    throttle_max_failures: int = 6
    # How long a locked account stays locked, in seconds.
    throttle_lockout_seconds: int = 900
    # After this many consecutive failures, each further attempt must wait first...
    throttle_delay_after: int = 3
    # ...this many seconds, doubling with every further failure (0 switches the delays off)...
    throttle_delay_seconds: int = 1
    # ...but never longer than this (it must stay below the lockout).
    throttle_max_delay_seconds: int = 60
    # Consecutive failures are forgotten this many seconds after the last one.
    throttle_failure_memory_seconds: int = 86400
    # Failed attempts from one IP address per window before it gets 429 for the window's rest.
    throttle_ip_max_failures: int = 100
    throttle_ip_window_seconds: int = 900
    # Limits for one kind of secret ("password", "second_factor", "recovery", "reset") that
    # differ from the above, e.g. {second_factor = {max_failures = 5}} (names without throttle_).
    throttle_overrides: dict[str, Any] = field(default_factory=dict)
    # Prefix of the throttling keys in Redis, so several environments can share one Redis.
    throttle_redis_prefix: str = "idp:throttle:"
    # Password failures counted across lockouts (NIST SP 800-63B 5.2.2: at most 100): at this
    # many the account stays locked, for browsers it has not signed in on, until a reset.
    throttle_cap_failures: int = 100
    # ...forgotten this many seconds (30 days) after the last failure, unless the cap was reached.
    throttle_cap_memory_seconds: int = 30 * 86400
    # The owner of a locked account is emailed at most once in this many seconds (a day).
    throttle_lockout_email_interval: int = 86400
    # Browsers that signed in are trusted for this long (device cookies): they have their own
    # failure counters, so failures from elsewhere never lock them out.
    device_cookie_lifetime: int = 365 * 86400
    # Failed requests to /token, /introspect, /revoke, /register and /userinfo from one IP
    # address per window before it gets 429 for the window's rest.
    endpoint_ip_max_failures: int = 60
    # Failed requests of one authenticated client per window before it gets 429 (its successful
    # requests are never counted).
    endpoint_client_max_failures: int = 30
    # The window of the two limits above, in seconds.
    endpoint_window_seconds: int = 60
    # Each process keeps client registrations and signing keys in memory and looks this often
    # (seconds) whether an administrator changed any (idp/models/generation.py); 0 looks at
    # every request. A change made by the process itself shows at once.
    cache_check_seconds: float = 1.0
    # Back-channel logout: run the delivery worker (and the session expiry sweep) in a
    # background thread of each IdP process; deliveries are stored, so any process may send.
    background_worker: bool = True
    # Seconds between the worker's looks at the stored deliveries (it also wakes at once when
    # this process queues one).
    worker_poll_interval: float = 2.0
    # Each delivery attempt gives up after this many seconds.
    backchannel_timeout: float = 5.0
    # Attempts per delivery before it is recorded as failed for good.
    backchannel_max_attempts: int = 10
    # Wait before the second attempt, doubling after each failure up to the maximum.
    backchannel_retry_delay: float = 2.0
    backchannel_retry_max_delay: int = 1800
    # This IdP instance's name in the audit record; empty means host name and process id.
    instance_name: str = ""
    # The audit chain's head is signed (a checkpoint) this often, in seconds, when it moved.
    audit_checkpoint_interval: int = 60
    # Audit entries older than this many days are pruned (`idp audit prune`); 0 keeps all.
    audit_retention_days: int = 400
    # Chain each request's (and command's) audit entries as it ends, besides the background
    # worker's batches (every worker_poll_interval seconds): the tests turn it on so every page
    # shows the requests before it; off, no citizen waits for the chain.
    audit_link_each_request: bool = False
    # An audit event or outcome missing from the catalogue (idp/audit/events.py) raises an
    # error instead of being logged and recorded anyway; defaults to true only when the issuer
    # is on loopback (a developer's machine, every test), so production never loses an event.
    audit_strict_events: bool | None = None
    # Reverse proxies (load balancers) in front of the IdP that set X-Forwarded-For and
    # X-Forwarded-Proto: the client's address is taken from the one this many hops back.
    # 0 (the default) trusts no header, so nobody can spoof an address to dodge throttling.
    proxy_count: int = 0
    # Bearer token that opens /metrics to a Prometheus server elsewhere; empty means only
    # loopback requests that came through no proxy may read it.
    metrics_token: str = ""
    # Languages the pages are offered in, first is the default.
    ui_locales_supported: tuple[str, ...] = ("en", "cy")
    # The demo departments registered at start; empty disables registration.
    departments_file: str = str(PROJECT_ROOT / "config" / "departments.toml")
    # The first demo department listens here, the next one port + 1, and so on.
    departments_base_port: int = 8001
    # Set cookies with the Secure flag (and the __Host- prefix); always on an https issuer,
    # and only there by default (true also serves a browser on http://localhost).
    secure_cookies: bool | None = None
    # Serve the development pages (/dev/outbox: the mail outbox, /dev/totp: the demo accounts'
    # authenticator codes); `idp demo` turns them on, `idp run-prod` never has them.
    dev_pages: bool = False
    # Allow test citizens (`idp citizens create --test-citizen`): a department's CI accounts
    # whose authenticator codes may be reused within their 30 s step. Never in production.
    allow_test_citizens: bool = False
    # Show the GOV.UK crown, logotype and GDS Transport font on the pages. Only a service on
    # GOV.UK may use them; off, the pages use GOV.UK Frontend's header for other services and
    # Arial.
    govuk_brand: bool = False
    # Log level of the IdP's own logger.
    log_level: str = "INFO"
    # Anything else a test or deployment wants to pass to Flask.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, with the embedded SQLite default filled in."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{Path(self.instance_path) / 'idp.sqlite3'}"

    @property
    def cookies_secure(self) -> bool:
        """Whether cookies carry the Secure flag (and their names the __Host- prefix)."""
        return self.issuer.startswith("https://") or bool(self.secure_cookies)

    @property
    def is_development(self) -> bool:
        """A developer's machine: the issuer is on loopback (the demo and seeding run only
        there). The development pages do not follow it: they have their own setting."""
        return is_loopback_host(urlsplit(self.issuer).hostname)

    @property
    def may_fetch_private_addresses(self) -> bool:
        """Whether outbound fetches may reach private, loopback or link-local addresses."""
        if self.fetch_private_addresses is None:
            return self.is_development
        return self.fetch_private_addresses

    @property
    def strict_audit_events(self) -> bool:
        """Whether an audit event missing from the catalogue is an error (see the setting)."""
        if self.audit_strict_events is None:
            return self.is_development
        return self.audit_strict_events

    def throttle_limits(self, kind: str) -> ThrottleLimits:
        """The throttling limits for one kind of secret, overrides applied and checked."""
        if kind not in THROTTLE_KINDS:
            raise SettingsError(f"unknown throttling kind {kind!r}")
        overrides = self.throttle_overrides.get(kind) or {}
        if not isinstance(overrides, dict):
            raise SettingsError(f"setting 'throttle_overrides.{kind}' must be a table")
        names = {f.name for f in dataclasses.fields(ThrottleLimits)}
        values = {name: getattr(self, "throttle_" + name) for name in names}
        for name, raw in overrides.items():
            if name not in names:
                raise SettingsError(f"setting 'throttle_overrides.{kind}' has unknown {name!r}")
            values[name] = _coerce(f"throttle_overrides.{kind}.{name}", raw, 0)
        limits = ThrottleLimits(**values)
        limits.check(kind)
        return limits

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


# Settings that are true, false or unset (None: a default that depends on other settings).
OPTIONAL_BOOLEANS = frozenset({"secure_cookies", "fetch_private_addresses", "audit_strict_events"})


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Turn a config or environment value into the type of the default."""
    try:
        if isinstance(default, bool) or name in OPTIONAL_BOOLEANS:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, tuple):
            if isinstance(raw, str):
                return tuple(part.strip() for part in raw.split(",") if part.strip())
            return tuple(raw)
        if isinstance(default, dict):
            if isinstance(raw, str):
                try:
                    raw = json.loads(raw) if raw.strip() else {}
                except json.JSONDecodeError:
                    raise ValueError("expected a table (as JSON: an object)") from None
            if not isinstance(raw, dict):
                raise ValueError("expected a table")
            return raw
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name!r} has an unusable value {raw!r}: {exc}") from None


def _check_notify(settings: Settings) -> None:
    """SettingsError unless the Notify settings can send both kinds of message."""
    if not settings.notify_api_key:
        return
    if len(settings.notify_api_key) < NOTIFY_KEY_MIN_LENGTH:
        raise SettingsError(
            "setting 'notify_api_key' is not a GOV.UK Notify API key (it ends with the service"
            " id and the secret key, two 36-character ids)"
        )
    missing = [
        name
        for name in ("notify_email_template_id", "notify_sms_template_id")
        if not getattr(settings, name)
    ]
    if missing:
        raise SettingsError(
            f"setting 'notify_api_key' needs {' and '.join(repr(n) for n in missing)}: the"
            " Notify templates the IdP's email and text messages are sent with"
        )
    url = urlsplit(settings.notify_base_url)
    if url.scheme not in {"http", "https"} or not url.hostname:
        raise SettingsError("setting 'notify_base_url' must be an https URL")
    if url.scheme == "http" and not is_loopback_host(url.hostname):
        raise SettingsError("setting 'notify_base_url' must use https outside this machine")


# The kinds of evidence service an identity check uses (settings.evidence_services' keys).
EVIDENCE_KINDS = ("passport", "driving_licence", "address", "kbv")


def _check_evidence_services(settings: Settings) -> None:
    """SettingsError unless evidence_services names known kinds with usable URLs."""
    services = settings.evidence_services
    if not services:
        return
    unknown = sorted(set(services) - set(EVIDENCE_KINDS))
    if unknown:
        raise SettingsError(
            f"setting 'evidence_services' has unknown kinds {unknown} (known: "
            f"{', '.join(EVIDENCE_KINDS)})"
        )
    missing = [kind for kind in EVIDENCE_KINDS if kind not in services]
    if missing:
        raise SettingsError(
            f"setting 'evidence_services' needs every kind of check; missing {missing}"
        )
    for kind, url in services.items():
        parts = urlsplit(str(url))
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise SettingsError(f"setting 'evidence_services' has no usable URL for {kind!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise SettingsError(
                f"setting 'evidence_services': {kind!r} must use https outside this machine"
            )


def current_settings() -> Settings:
    """The settings of the Flask app handling the current request or command."""
    from flask import current_app

    return current_app.config["IDP_SETTINGS"]


def load_settings(config_file: str | os.PathLike | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, then the TOML file, then IDP_* variables, then overrides."""
    defaults = Settings()
    values: dict[str, Any] = {}
    path = Path(config_file or os.environ.get("IDP_CONFIG", PROJECT_ROOT / "config" / "idp.toml"))
    if path.exists():
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path.name} is not valid TOML: {exc}") from None
        for name, raw in data.get("idp", data).items():
            if name not in {f.name for f in dataclasses.fields(Settings)}:
                raise SettingsError(f"config file {path.name} has an unknown setting {name!r}")
            values[name] = _coerce(name, raw, getattr(defaults, name))
    for f in dataclasses.fields(Settings):
        env_name = "IDP_" + f.name.upper()
        if env_name in os.environ and f.name != "extra":
            values[f.name] = _coerce(f.name, os.environ[env_name], getattr(defaults, f.name))
    values.update(overrides)
    settings = Settings(**values)
    if not settings.issuer:
        settings = settings.replace(issuer=f"http://localhost:{settings.port}")
    if settings.issuer.endswith("/"):
        settings = settings.replace(issuer=settings.issuer.rstrip("/"))
    issuer = urlsplit(settings.issuer)
    # OIDC Discovery 1.0 section 3 and RFC 9700 2.6: the issuer is https; plain http only for
    # this machine (a developer's loopback), where no network carries the tokens.
    if issuer.scheme not in {"http", "https"} or not issuer.hostname or issuer.query:
        raise SettingsError(f"setting 'issuer' must be an https URL, not {settings.issuer!r}")
    if issuer.scheme == "http" and not is_loopback_host(issuer.hostname):
        raise SettingsError(
            f"setting 'issuer' must use https outside this machine ({settings.issuer!r}): "
            "departments would send codes and tokens over plain HTTP"
        )
    if settings.smtp_url:
        smtp = urlsplit(settings.smtp_url)
        if smtp.scheme not in {"smtp", "smtps"} or not smtp.hostname:
            raise SettingsError("setting 'smtp_url' must look like smtp://host:587 or smtps://host")
    _check_notify(settings)
    if settings.secure_cookies is False and settings.issuer.startswith("https://"):
        raise SettingsError(
            "setting 'secure_cookies' cannot be false on an https issuer: its cookies are "
            "always Secure (and __Host- prefixed), so no plain-HTTP page can read or plant them"
        )
    if settings.default_id_token_alg not in {"ES256", "RS256"}:
        raise SettingsError("setting 'default_id_token_alg' must be ES256 or RS256")
    _check_evidence_services(settings)
    unknown_kinds = sorted(set(settings.throttle_overrides) - set(THROTTLE_KINDS))
    if unknown_kinds:
        raise SettingsError(f"setting 'throttle_overrides' has unknown kinds {unknown_kinds}")
    for kind in THROTTLE_KINDS:
        settings.throttle_limits(kind)
    if not 1 <= settings.throttle_cap_failures <= THROTTLE_MAX_FAILURES_CEILING:
        raise SettingsError(
            f"setting 'throttle_cap_failures' must be 1 to {THROTTLE_MAX_FAILURES_CEILING}"
            " (NIST SP 800-63B allows at most 100 consecutive failures)"
        )
    if not 1 <= settings.jwks_max_age <= 3600:
        raise SettingsError("setting 'jwks_max_age' must be 1 to 3600 seconds")
    for name in (
        "throttle_cap_memory_seconds",
        "throttle_lockout_email_interval",
        "device_cookie_lifetime",
        "endpoint_ip_max_failures",
        "endpoint_client_max_failures",
        "endpoint_window_seconds",
        "sms_number_max_sends",
        "sms_number_window_seconds",
    ):
        if getattr(settings, name) < 1:
            raise SettingsError(f"setting {name!r} must be 1 or more")
    if not 0 <= settings.cache_check_seconds <= 60:
        raise SettingsError("setting 'cache_check_seconds' must be 0 to 60 (seconds)")
    return settings

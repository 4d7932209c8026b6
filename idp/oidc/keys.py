"""The IdP's signing keys: private parts encrypted in the database, rotated without surprises.

A key's life, all of it stored in the database (every IdP process agrees):

- published from creation: the JWKS lists it before it signs anything (the rotation lead time);
- signs from ``activates_at`` until a newer key of its algorithm activates;
- stays published until ``retires_at``, when every token it signed has expired;
- or is withdrawn at once (``retired_at``, e.g. after a compromise): neither signs nor is
  published.

Keys past ``retires_at`` or withdrawn are never used again. Each process keeps the keys that
may sign in memory, and chooses the one that signs by the time at each request; any change to
a key (`idp keys rotate`, `idp keys retire`) reaches every process within
``IDP_CACHE_CHECK_SECONDS`` (idp/models/generation.py), so a key withdrawn with ``--force``
may sign for up to that long (1 s by default) on another process. Private parts are decrypted
once per process, keyed by kid.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, g
from joserfc.jwk import ECKey, RSAKey, import_key
from sqlalchemy import bindparam, or_, update
from sqlalchemy.exc import IntegrityError

from idp.extensions import db
from idp.models import SigningKey
from idp.models.generation import SIGNING_KEYS, ProcessCache
from idp.models.timestamps import utcnow
from idp.security.secrets import decrypt
from idp.settings import current_settings

SUPPORTED_ALGS = ("ES256", "RS256")
# The identity-signing key (coreIdentityJWT, GOV.UK One Login's verified identities): ES256, of
# its own purpose, rotated like the others but published only in the DID document and the
# identity JWKS, never at /jwks.json. Functions below that take an `alg` take a key set: an ID
# token algorithm, or IDENTITY.
IDENTITY = "identity"
IDENTITY_ALG = "ES256"
KEY_SETS = (*SUPPORTED_ALGS, IDENTITY)
ID_TOKEN_PURPOSE = "id_token"


def _purpose(key_set: str) -> str:
    return IDENTITY if key_set == IDENTITY else ID_TOKEN_PURPOSE


def _algorithm(key_set: str) -> str:
    return IDENTITY_ALG if key_set == IDENTITY else key_set


def _of_set(key_set: str):
    """The filter of one key set's rows."""
    return (
        SigningKey.alg == _algorithm(key_set),
        SigningKey.purpose == _purpose(key_set),
    )


def key_set_of(row: SigningKey) -> str:
    """The key set a stored key belongs to: its algorithm, or IDENTITY."""
    return IDENTITY if row.purpose == IDENTITY else row.alg


_cache_lock = threading.Lock()
_private_key_cache: dict[str, Any] = {}
# The published keys, per database: (read again at this time, the JWKS).
_public_jwks_cache: dict[str, tuple[datetime, dict[str, list[dict[str, Any]]]]] = {}
# How long a process answers /jwks.json from memory at most (see public_jwks).
PUBLIC_JWKS_MAX_AGE = 10


class KeyRotationError(Exception):
    """A rotation or retirement the IdP refuses; the message is for the operator."""


@dataclass(frozen=True)
class Replaced:
    """A key that a rotation or retirement took out of signing, and when it leaves the JWKS."""

    kid: str
    retires_at: datetime


@dataclass(frozen=True)
class Rotation:
    """What `rotate_signing_keys` did for one algorithm."""

    alg: str
    kid: str
    activates_at: datetime
    replaced: list[Replaced] = field(default_factory=list)


@dataclass(frozen=True)
class Retirement:
    """What `retire_signing_key` did."""

    kid: str
    alg: str
    was_signing: bool
    signer_kid: str | None
    # The waiting key that was made to sign at once, or the new key created to sign at once,
    # and how many seconds it had been published when it started signing.
    brought_forward: str | None = None
    created: str | None = None
    published_for: int = 0


def _generate(alg: str):
    """A fresh key for the algorithm, with its RFC 7638 thumbprint as kid. A thumbprint that
    starts with "-" would read as an option in `idp keys retire KID`: such a key is drawn again
    (one in 64 are)."""
    while True:
        if alg == "ES256":
            key = ECKey.generate_key("P-256", auto_kid=True)
        else:
            key = RSAKey.generate_key(2048, auto_kid=True)
        if not key.kid.startswith("-"):
            return key


def _add_key(key_set: str, activates_at: datetime) -> SigningKey:
    """Generate a key, encrypt its private part and add it to the session (not committed)."""
    alg = _algorithm(key_set)
    key = _generate(alg)
    public = {**key.as_dict(private=False), "use": "sig", "alg": alg}
    private = json.dumps(key.as_dict(private=True))
    fernet = current_app.config["IDP_KEY_FERNET"]
    row = SigningKey(
        kid=key.kid,
        alg=alg,
        purpose=_purpose(key_set),
        public_jwk=public,
        private_jwk_encrypted=fernet.encrypt(private.encode()).decode(),
        activates_at=activates_at,
    )
    db.session.add(row)
    db.session.flush()
    return row


def create_signing_key(alg: str, activates_at: datetime | None = None) -> SigningKey:
    """Generate, encrypt and store a new signing key that signs from activates_at (now)."""
    row = _add_key(alg, activates_at or utcnow())
    _settle(alg, utcnow())
    db.session.commit()
    forget_public_jwks()
    return row


def ensure_signing_keys() -> None:
    """Make sure a key signs now for each supported algorithm and for identities: if none can,
    a new one does."""
    for alg in KEY_SETS:
        if current_signing_key_row(alg) is None:
            try:
                create_signing_key(alg)
            except IntegrityError:
                db.session.rollback()


def token_hold(key_set: str | None = None) -> timedelta:
    """How long a key stays published after it stops signing: until every token it signed
    has expired (ID tokens and logout tokens; coreIdentityJWTs for the identity key), plus
    the clock skew."""
    settings = current_settings()
    if key_set == IDENTITY:
        longest = settings.identity_jwt_lifetime
    else:
        longest = max(settings.id_token_lifetime, settings.logout_token_lifetime)
    return timedelta(seconds=longest + settings.clock_skew)


def _live(now: datetime):
    """The filter of keys still in use: not withdrawn and not past their retirement."""
    return (
        SigningKey.retired_at.is_(None),
        or_(SigningKey.retires_at.is_(None), SigningKey.retires_at > now),
    )


def _live_rows(alg: str, now: datetime) -> list[SigningKey]:
    """An algorithm's keys still in use, oldest activation first."""
    return list(
        db.session.scalars(
            db.select(SigningKey)
            .where(*_of_set(alg), *_live(now))
            .order_by(SigningKey.activates_at, SigningKey.id)
        )
    )


def current_signing_key_row(alg: str, now: datetime | None = None) -> SigningKey | None:
    """The key that signs for an algorithm now: the newest key in use that has activated."""
    now = now or utcnow()
    return db.session.scalar(
        db.select(SigningKey)
        .where(*_of_set(alg), *_live(now), SigningKey.activates_at <= now)
        .order_by(SigningKey.activates_at.desc(), SigningKey.id.desc())
        .limit(1)
    )


def waiting_key_rows(alg: str, now: datetime | None = None) -> list[SigningKey]:
    """An algorithm's keys that are published but do not sign yet, soonest first."""
    now = now or utcnow()
    return [row for row in _live_rows(alg, now) if row.activates_at > now]


def _settle(alg: str, now: datetime) -> None:
    """Make publication match the signing schedule (flushed, not committed).

    The key signing now, and each waiting key, stays published until the key after it
    activates plus the token hold; the last one indefinitely. Older keys that still have no
    end stopped signing when the current key activated.
    """
    rows = _live_rows(alg, now)
    signer = current_signing_key_row(alg, now)
    if signer is None:
        return
    hold = token_hold(alg)
    start = next(i for i, row in enumerate(rows) if row.id == signer.id)
    for row in rows[:start]:
        if row.retires_at is None:
            row.retires_at = signer.activates_at + hold
    schedule = rows[start:]
    for row, successor in zip(schedule, schedule[1:], strict=False):
        row.retires_at = successor.activates_at + hold
    schedule[-1].retires_at = None
    db.session.flush()


def _lock(alg: str) -> None:
    """Serialise rotations and retirements of one algorithm until commit or rollback.

    A no-op UPDATE of its rows: row locks on PostgreSQL, the write lock on SQLite (where
    SELECT ... FOR UPDATE does nothing). Readers are not blocked. What is read afterwards
    includes whatever a rotation that held the lock before committed.
    """
    table = SigningKey.__table__
    db.session.execute(
        update(table)
        .where(table.c.alg == _algorithm(alg), table.c.purpose == _purpose(alg))
        .values(alg=table.c.alg)
    )


def rotate_signing_keys(algs: Sequence[str], lead_time: int) -> list[Rotation]:
    """Add a new key per algorithm that signs lead_time seconds from now; the keys it replaces
    stay published until the tokens they signed have expired. All algorithms or none."""
    if lead_time < 0:
        raise KeyRotationError(f"the lead time must be 0 seconds or more, not {lead_time}")
    for alg in algs:
        if alg not in KEY_SETS:
            raise KeyRotationError(
                f"unknown algorithm {alg!r}; use {', '.join(SUPPORTED_ALGS)} or {IDENTITY}"
            )
    ensure_signing_keys()
    try:
        for alg in algs:
            _lock(alg)
        now = utcnow()
        for alg in algs:
            _refuse_while_waiting(alg, now)
        rotations = [_rotate(alg, now, lead_time) for alg in algs]
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    forget_public_jwks()
    return rotations


def _refuse_while_waiting(alg: str, now: datetime) -> None:
    """KeyRotationError if a key of the algorithm is already waiting to sign."""
    waiting = waiting_key_rows(alg, now)
    if waiting:
        first = waiting[0]
        raise KeyRotationError(
            f"{alg} key {first.kid} is already waiting to sign (from "
            f"{first.activates_at:%Y-%m-%d %H:%M:%S} UTC); rotate again once it signs, or "
            f"withdraw it first with: idp keys retire {first.kid}"
        )


def _rotate(alg: str, now: datetime, lead_time: int) -> Rotation:
    """Add the new key and schedule the end of the ones it replaces (flushed, not committed)."""
    before = {row.id: row.retires_at for row in _live_rows(alg, now)}
    row = _add_key(alg, now + timedelta(seconds=lead_time))
    _settle(alg, now)
    replaced = [
        Replaced(old.kid, old.retires_at)
        for old in _live_rows(alg, now)
        if old.id in before and before[old.id] is None and old.retires_at is not None
    ]
    return Rotation(alg=alg, kid=row.kid, activates_at=row.activates_at, replaced=replaced)


def retire_signing_key(kid: str, force: bool = False) -> Retirement:
    """Withdraw a key at once: it leaves the JWKS and never signs again.

    If nothing else could sign for its algorithm, a waiting key signs at once; failing that
    the retirement is refused unless forced, when a new key is created that signs at once.
    """
    row = db.session.scalar(db.select(SigningKey).filter_by(kid=kid))
    if row is None:
        raise KeyRotationError(f"no signing key with kid {kid!r}; see: idp keys list")
    try:
        _lock(key_set_of(row))
        db.session.refresh(row)
        retirement = _retire(row, utcnow(), force)
    except Exception:
        db.session.rollback()
        raise
    db.session.commit()
    forget_public_jwks()
    return retirement


def _retire(row: SigningKey, now: datetime, force: bool) -> Retirement:
    """Withdraw the key and make sure another signs (flushed, not committed)."""
    if row.retired_at is not None:
        raise KeyRotationError(
            f"key {row.kid} was already retired at {row.retired_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    key_set = key_set_of(row)
    signer = current_signing_key_row(key_set, now)
    was_signing = signer is not None and signer.id == row.id
    row.retired_at = now
    db.session.flush()
    brought_forward = created = None
    published_for = 0
    if was_signing and current_signing_key_row(key_set, now) is None:
        waiting = waiting_key_rows(key_set, now)
        if waiting:
            waiting[0].activates_at = now
            brought_forward = waiting[0].kid
            published_for = int((now - waiting[0].created_at).total_seconds())
        elif not force:
            raise KeyRotationError(
                f"key {row.kid} is the only key that can sign {key_set} tokens; first run "
                f"idp keys rotate --alg {key_set} --lead-time 0 (or pass --force to retire it "
                "and sign with a new key at once)"
            )
        else:
            created = _add_key(key_set, now).kid
        db.session.flush()
    _settle(key_set, now)
    new_signer = current_signing_key_row(key_set, now)
    return Retirement(
        kid=row.kid,
        alg=key_set,
        was_signing=was_signing,
        signer_kid=new_signer.kid if new_signer else None,
        brought_forward=brought_forward,
        created=created,
        published_for=published_for,
    )


def key_state(row: SigningKey, now: datetime, signer_ids: set[int]) -> str:
    """waiting, signing, published-only (until when), or retired."""
    if row.retired_at is not None or (row.retires_at is not None and row.retires_at <= now):
        return "retired"
    if row.activates_at > now:
        return "waiting"
    if row.id in signer_ids:
        return "signing"
    if row.retires_at is None:
        return "published-only"
    return f"published-only until {row.retires_at:%Y-%m-%d %H:%M:%S}"


def all_key_rows() -> list[SigningKey]:
    """Every key, by algorithm and then activation."""
    return list(
        db.session.scalars(
            db.select(SigningKey).order_by(
                SigningKey.purpose, SigningKey.alg, SigningKey.activates_at, SigningKey.id
            )
        )
    )


def signer_ids(now: datetime) -> set[int]:
    """The ids of the keys that sign now, one per algorithm."""
    rows = (current_signing_key_row(alg, now) for alg in KEY_SETS)
    return {row.id for row in rows if row is not None}


def signing_key(alg: str):
    """The private key (joserfc) that signs with this algorithm now, looked up once a request."""
    chosen = g.setdefault("signing_keys", {})
    if alg not in chosen:
        chosen[alg] = _load_signing_key(alg)
    return chosen[alg]


@dataclass(frozen=True)
class _Signer:
    """What this process keeps of a key that may sign: enough to choose it and decrypt it."""

    kid: str
    activates_at: datetime
    retires_at: datetime | None
    private_jwk_encrypted: str


_LIVE_KEYS = (
    db.select(
        SigningKey.kid,
        SigningKey.activates_at,
        SigningKey.retires_at,
        SigningKey.private_jwk_encrypted,
    )
    .where(
        SigningKey.alg == bindparam("alg"),
        SigningKey.purpose == bindparam("purpose"),
        SigningKey.retired_at.is_(None),
    )
    .order_by(SigningKey.activates_at.desc(), SigningKey.id.desc())
)


def _signers(alg: str) -> tuple[_Signer, ...]:
    parameters = {"alg": _algorithm(alg), "purpose": _purpose(alg)}
    return tuple(_Signer(*row) for row in db.session.execute(_LIVE_KEYS, parameters))


# An algorithm's keys not withdrawn, newest activation first, kept until any key changes
# (idp/models/generation.py); which of them signs is chosen by the time at each request.
_signer_cache = ProcessCache(SIGNING_KEYS, _signers, lambda: current_settings().cache_check_seconds)


def _current_signer(alg: str, now: datetime) -> _Signer | None:
    database = current_app.config["SQLALCHEMY_DATABASE_URI"]
    for signer in _signer_cache.get(database, alg):
        if signer.activates_at <= now and (signer.retires_at is None or signer.retires_at > now):
            return signer
    return None


def _load_signing_key(alg: str):
    """The key that signs for the algorithm now, decrypted once per process."""
    row = _current_signer(alg, utcnow())
    if row is None:
        ensure_signing_keys()
        _signer_cache.clear()
        row = _current_signer(alg, utcnow())
    if alg != IDENTITY:  # identity keys are never in /jwks.json
        _publish_signer(row.kid)
    with _cache_lock:
        key = _private_key_cache.get(row.kid)
    if key is None:
        fernet = current_app.config["IDP_KEY_FERNET"]
        key = import_key(json.loads(decrypt(fernet, row.private_jwk_encrypted)))
        with _cache_lock:
            _private_key_cache[row.kid] = key
    return key


def public_jwks() -> dict[str, list[dict[str, Any]]]:
    """Public members only, one entry per published key (waiting ones too).

    Each process keeps the answer in memory until the moment a published key's retirement
    falls due, and for PUBLIC_JWKS_MAX_AGE seconds (jwks_max_age if shorter) at most, so a key
    published or withdrawn by another process (`idp keys rotate`, `idp keys retire`) shows
    within that time; this process's own changes show at once.
    """
    now = utcnow()
    database = current_app.config["SQLALCHEMY_DATABASE_URI"]
    with _cache_lock:
        cached = _public_jwks_cache.get(database)
    if cached is not None and now < cached[0]:
        return cached[1]
    rows = list(
        db.session.scalars(
            db.select(SigningKey)
            .where(SigningKey.purpose == ID_TOKEN_PURPOSE, *_live(now))
            .order_by(SigningKey.id)
        )
    )
    published = {"keys": [dict(row.public_jwk) for row in rows]}
    retirements = [row.retires_at for row in rows if row.retires_at is not None]
    # Never longer than departments are told they may keep it (the jwks_max_age setting).
    held = min(PUBLIC_JWKS_MAX_AGE, current_settings().jwks_max_age)
    until = min([now + timedelta(seconds=held), *retirements])
    with _cache_lock:
        _public_jwks_cache[database] = (until, published)
    return published


def _publish_signer(kid: str) -> None:
    """A process never answers /jwks.json without the key it signs with: a key made to sign at
    once elsewhere (`idp keys retire --force`) drops the cached answer at this process's first
    signature with it."""
    database = current_app.config["SQLALCHEMY_DATABASE_URI"]
    with _cache_lock:
        cached = _public_jwks_cache.get(database)
        if cached is not None and all(key.get("kid") != kid for key in cached[1]["keys"]):
            del _public_jwks_cache[database]


def forget_public_jwks() -> None:
    """Read the published keys from the database at the next request (after a change)."""
    with _cache_lock:
        _public_jwks_cache.clear()


def identity_public_keys() -> list[dict[str, Any]]:
    """The identity-signing keys' public parts (waiting ones too), oldest first: for the DID
    document and the identity JWKS. Read from the database at each request (rarely asked)."""
    now = utcnow()
    rows = db.session.scalars(
        db.select(SigningKey)
        .where(SigningKey.purpose == IDENTITY, *_live(now))
        .order_by(SigningKey.id)
    )
    return [dict(row.public_jwk) for row in rows]

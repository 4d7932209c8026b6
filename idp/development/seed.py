"""`idp seed`: millions of fake citizens and audit entries, quickly, for benchmarks at scale.

The benchmark compares sign-in, the returning citizen's journey and the auditor's filtered
first page on a small database and on a big one; this fills the big one. It writes rows in
bulk, a batch at a time (PostgreSQL: COPY through psycopg; SQLite: executemany), with a
progress bar for each part, and never on a real issuer: only when the issuer is on loopback
(a developer's or benchmark machine), or with --force.

Citizens
    What idp/accounts/citizens.py:create_citizen stores: a random subject (new_subject, as for
    a real account), the email in its normalised form (checked with normalise_email), the
    address verified, an argon2id hash of the password, a name, and a creation time (spread
    over the year before the audit entries begin). The addresses are numbered,
    seed-0000001@seed.example.gov.uk, seed-0000002@... (seed_email), so a benchmark can sign
    in as any of them; a second run carries on after the highest number already stored.
    Every seeded citizen has the same password, and the SAME hash of it: the password is
    hashed ONCE, by the IdP's own hasher with the configured argon2 parameters, and that
    string is stored in every row, because a million real hashes would take a million times
    ~50 ms. Signing in still runs argon2 on the stored hash, exactly as for a real account;
    only the salt is shared. Seeded citizens have no second factor: after the password the
    IdP asks them to set up an authenticator app (a benchmark that needs the whole sign-in
    adds one, as tests/conftest.py:new_citizen does).

Audit entries
    A realistic mix of what the IdP records (sign-ins and their failures, second factors,
    consents, authorization codes, tokens, userinfo, refreshes, sign-outs, revocations,
    refusals, lockouts), journey by journey, over the seeded citizens and the registered
    clients (made-up client ids when there are none), with IP addresses, user agents,
    session references (audit.session_ref) and request ids, at times spread over the last
    90 days, increasing with seq and ending at about now. They are APPENDED to the real chain
    after its current head: each entry's salted personal digest, content hash and link are
    computed by idp/audit/chain.py (the functions the writer and `idp audit verify` use), so
    the chain still verifies. Unlike audit.record, seeded entries are not written to the
    audit log on standard output (ten million lines): they exist in the database only.

    Never a broken chain: every batch is one append transaction, like each of the linker's
    batches (idp/audit/linker.py). It takes the head row's lock (UPDATE audit_head ...
    RETURNING), links its entries to the head it read, inserts them,
    moves the head to its last entry and commits. Interrupted (Ctrl-C, a crash, a lost
    connection), the open batch rolls back whole: the chain ends at the previous batch, head
    and entries agreeing, and the next run appends after it. Between batches the lock is free,
    so a running IdP's linker can still chain its entries (they land between two batches, linked
    like any other; their times are now, among seeded ones spread over the past).

    Checkpoints: before the first batch, make_checkpoint checks and signs the chain as it is
    (a chain that does not verify is not seeded over, which would bury the problem under
    millions of entries). At the end, when every entry since that checkpoint is one this run
    linked (nobody wrote between its batches), the new head is signed at once with the
    checkpoints module's own signing; make_checkpoint would first read them all back through
    the ORM to recompute the hashes just computed here (~45 s per million entries). When
    someone did write in between, make_checkpoint checks everything since the first
    checkpoint before it signs. Either way the background worker finds the head signed.

On PostgreSQL the filled tables are then vacuumed and analysed (seconds, even for ten million
rows), so a benchmark starts with fresh statistics and no autovacuum pass in the middle of it.

Memory stays flat: rows are generated, hashed and streamed a batch at a time; only the ids of
the seeded citizens (an array of integers) are held.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from random import Random
from typing import Any

import click
from sqlalchemy import insert, select, text, update

from idp.accounts.citizens import normalise_email
from idp.audit import session_ref, software_version
from idp.audit.chain import (
    CONTENT_FIELDS,
    GENESIS,
    PERSONAL_FIELDS,
    content_hash,
    entry_hash,
    personal_digest,
)
from idp.audit.checkpoints import CheckpointError, make_checkpoint, sign_checkpoint
from idp.audit.linker import recreate_head
from idp.extensions import db
from idp.models import Citizen, Client
from idp.models.audit import AuditEntry, AuditHead
from idp.models.citizen import new_subject
from idp.models.timestamps import utcnow
from idp.security.passwords import (
    PasswordPolicyError,
    check_password_policy,
    hash_password,
    normalise_for_comparison,
)
from idp.security.secrets import new_token
from idp.settings import current_settings, is_loopback_host

# Every seeded citizen's password unless --password says otherwise. It is published (here and
# in the command's help), which is why seeding refuses to run on a real issuer.
BENCHMARK_PASSWORD = "benchmark citizens share this long passphrase"
SEED_DOMAIN = "seed.example.gov.uk"
SEED_EMAIL = re.compile(r"seed-(\d+)@" + re.escape(SEED_DOMAIN))
# Local parts of seeded addresses: a password containing one breaks that account's policy.
SEED_LOCAL_PART = re.compile(r"seed-\d{7}")

# Audit entries span this many days, ending now; citizens were created in the year before.
AUDIT_DAYS = 90
CITIZEN_DAYS = 365
# What seeded entries give as the instance that wrote them.
SEED_INSTANCE = "idp-seed"
# Seeded entries are written by this release, as the IdP's own would be.
SOFTWARE_VERSION = software_version()
# Client ids used when no department is registered.
MADE_UP_CLIENTS = ("seed-dept-tax", "seed-dept-driving", "seed-dept-benefits", "seed-dept-passport")

GIVEN_NAMES = ("Ada", "Alan", "Grace", "Tim", "Mary", "Ravi", "Aisha", "Owen", "Mei", "Tomasz")
FAMILY_NAMES = ("Lovelace", "Turing", "Hopper", "Berners-Lee", "Somerville", "Patel", "Khan")

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
)
SERVER_AGENTS = (
    "python-httpx/0.28.1",
    "Apache-HttpClient/4.5.14 (Java/17.0.11)",
    "Go-http-client/2.0",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
)
# Someone trying addresses that have no account (from documentation ranges, as are departments'
# addresses; citizens' are in 100.64.0.0/10 and 2001:db8::/32: nobody's real address).
GUESSER_AGENTS = ("python-requests/2.32.3", "curl/8.8.0", BROWSERS[0])

CITIZEN_COLUMNS = (
    "subject",
    "email",
    "email_verified",
    "password_hash",
    "given_name",
    "family_name",
    "phone_number_verified",
    "created_at",
)
# The chain's content fields, then the personal ones, then the columns that link the chain.
AUDIT_COLUMNS = (
    *CONTENT_FIELDS,
    *PERSONAL_FIELDS,
    "personal_salt",
    "personal_digest",
    "prev_hash",
    "entry_hash",
)
COPY_CITIZENS = f"COPY citizen ({', '.join(CITIZEN_COLUMNS)}) FROM STDIN"
COPY_AUDIT = f"COPY audit_entry ({', '.join(AUDIT_COLUMNS)}) FROM STDIN"
SEED_EMAILS_LIKE = f"seed-%@{SEED_DOMAIN}"

Progress = Callable[[int], None]


class SeedError(Exception):
    """Seeding cannot start or go on; the message says why."""


def seed_email(index: int) -> str:
    """The address of seeded citizen number index (1, 2, ...)."""
    return f"seed-{index:07d}@{SEED_DOMAIN}"


def check_password(password: str) -> None:
    """The password must pass the IdP's policy for every seeded address."""

    try:
        check_password_policy(password, email=seed_email(1))
    except PasswordPolicyError as exc:
        raise SeedError(f"--password: {exc}") from None
    if SEED_LOCAL_PART.search(normalise_for_comparison(password)):
        raise SeedError("--password must not contain a seeded address (seed-NNNNNNN)")


def highest_seed_index() -> int:
    """The highest number among the seeded addresses already stored (0 for none)."""

    emails = db.session.scalars(
        select(Citizen.email)
        .where(Citizen.email.like(SEED_EMAILS_LIKE))
        .order_by(db.func.length(Citizen.email).desc(), Citizen.email.desc())
        .limit(100)
    )
    numbers = [int(m.group(1)) for m in map(SEED_EMAIL.fullmatch, emails) if m]
    return max(numbers, default=0)


def _has_citizens() -> bool:
    """Whether any citizen is stored."""

    found = db.session.scalar(select(Citizen.id).limit(1)) is not None
    db.session.commit()
    return found


def seeded_citizen_ids() -> array:
    """The ids of every seeded citizen (of every citizen, when none was seeded)."""

    ids = array(
        "q", db.session.scalars(select(Citizen.id).where(Citizen.email.like(SEED_EMAILS_LIKE)))
    )
    if not ids:
        ids = array("q", db.session.scalars(select(Citizen.id)))
    db.session.commit()
    return ids


# -- Citizens ----------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What one part wrote: how many rows, from where to where, in how long."""

    rows: int = 0
    seconds: float = 0.0
    first: int | None = None
    last: int | None = None

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.rows / self.seconds if self.seconds else 0.0


def _citizen_rows(first: int, count: int, password_hash: str, now: datetime) -> Iterator[tuple]:
    """Rows of CITIZEN_COLUMNS for seeded citizens first .. first + count - 1."""

    if normalise_email(seed_email(first)) != seed_email(first):
        raise SeedError(f"{seed_email(first)} is not in its normalised form")
    start = now - timedelta(days=CITIZEN_DAYS + AUDIT_DAYS)
    step = timedelta(days=CITIZEN_DAYS) / max(count, 1)
    for number in range(count):
        index = first + number
        yield (
            new_subject(),
            seed_email(index),
            True,
            password_hash,
            GIVEN_NAMES[index % len(GIVEN_NAMES)],
            FAMILY_NAMES[index // len(GIVEN_NAMES) % len(FAMILY_NAMES)],
            False,
            start + step * number,
        )


def seed_citizens(count: int, password: str, batch: int, progress: Progress) -> Seeded:
    """Insert count citizens, numbered after the highest seeded one, batch by batch (each
    committed: an interrupted run keeps whole batches, and the next run numbers after them)."""

    began = time.perf_counter()
    if not count:
        return Seeded()
    check_password(password)
    first = highest_seed_index() + 1
    db.session.commit()
    # ONE argon2id hash, with the configured parameters, for every row (see the module's doc).
    password_hash = hash_password(password)
    rows = _citizen_rows(first, count, password_hash, utcnow())
    done = 0
    while done < count:
        size = min(batch, count - done)
        chunk = islice(rows, size)
        with db.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                _copy(connection, COPY_CITIZENS, chunk)
            else:
                connection.execute(
                    insert(Citizen.__table__),
                    [dict(zip(CITIZEN_COLUMNS, r, strict=True)) for r in chunk],
                )
        done += size
        progress(size)
    return Seeded(count, time.perf_counter() - began, first, first + count - 1)


# -- Audit entries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """A department's service as the record sees it: its client id, the scope it asks for,
    where its back end calls from (token, userinfo) and with what."""

    client_id: str
    scope: str
    claims: tuple[str, ...]
    ip: str
    user_agent: str
    refresh: bool


# Details that differ for every event (their JSON text is not kept for reuse).
UNIQUE_DETAILS = frozenset({"previous_session"})
CLAIMS = {
    "openid": ("sub",),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "profile": ("family_name", "given_name", "name"),
}


def services() -> list[Service]:
    """The registered clients (made-up ones when none is), as seeded events use them."""

    rows = db.session.execute(select(Client.client_id, Client.client_metadata)).all()
    db.session.commit()
    found = [(client_id, (meta or {}).get("scope") or "openid email") for client_id, meta in rows]
    if not found:
        found = [(client_id, "openid email") for client_id in MADE_UP_CLIENTS]
    made = []
    for number, (client_id, registered) in enumerate(sorted(found)):
        # Most departments ask for less than they registered.
        wanted = [s for s in registered.split() if s in ("openid", "email")] or ["openid"]
        claims = sorted({claim for scope in wanted for claim in CLAIMS.get(scope, ())})
        made.append(
            Service(
                client_id=client_id[:128],
                scope=" ".join(wanted),
                claims=tuple(claims),
                ip=f"192.0.2.{10 + number % 240}",
                user_agent=SERVER_AGENTS[number % len(SERVER_AGENTS)],
                refresh=number % 3 == 0,
            )
        )
    return made


def _browser(citizen_id: int) -> tuple[str, str]:
    """The citizen's usual IP address and browser (the same each time: as at home)."""
    mixed = (citizen_id * 2654435761) & 0xFFFFFFFF
    if mixed % 10 == 0:
        # Written as the IdP writes addresses (ipaddress's compressed form): no zero group but
        # the run that "::" stands for.
        groups = ((mixed >> 16) or 1, (mixed & 0xFFFF) or 1, (citizen_id % 0xFFFF) or 1)
        ip = "2001:db8:{:x}:{:x}::{:x}".format(*groups)
    else:
        ip = f"100.{64 + (mixed >> 16) % 64}.{mixed >> 8 & 0xFF}.{mixed & 0xFF or 1}"
    return ip, BROWSERS[mixed % len(BROWSERS)]


class Journeys:
    """An endless stream of events, journey by journey, as the IdP records them: each event a
    dict of everything but seq, time, request id and instance (given as they are stored)."""

    def __init__(self, rng: Random, citizen_ids: array, services: list[Service]):

        self.rng = rng
        self.citizen_ids = citizen_ids
        self.services = services
        self.new_session = lambda: session_ref(new_token(24))
        # JSON texts of recurring details, by event name and details (a few dozen).
        self.texts: dict[tuple, str] = {}
        journeys = (
            (self.service_sign_in, 40),
            (self.returning, 22),
            (self.refresh, 10),
            (self.wrong_password, 8),
            (self.wrong_code, 3),
            (self.no_account, 3),
            (self.sign_out, 6),
            (self.revoked, 2),
            (self.authorization_failed, 3),
            (self.consent_refused, 1),
            (self.locked, 1),
            (self.introspected, 1),
        )
        self.kinds = [kind for kind, _ in journeys]
        total = 0
        self.cumulative = []
        for _, weight in journeys:
            total += weight
            self.cumulative.append(total)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng, ids, services = self.rng, self.citizen_ids, self.services
        while True:
            kind = rng.choices(self.kinds, cum_weights=self.cumulative)[0]
            citizen_id = ids[rng.randrange(len(ids))]
            yield from kind(citizen_id, services[rng.randrange(len(services))])

    def event(
        self,
        name: str,
        citizen_id: int | None,
        where: tuple[str, str],
        *,
        outcome: str = "success",
        reason: str | None = None,
        client_id: str | None = None,
        session: str | None = None,
        level: str | None = None,
        methods: str | None = None,
        **details: Any,
    ) -> dict[str, Any]:
        """One event, shaped as audit.record stores it, with its details as stored JSON text
        ("details_text"); the texts of details that recur are made once."""
        key = (name, *details.items())
        text = self.texts.get(key)
        if text is None:
            text = json.dumps(details, sort_keys=True)
            if UNIQUE_DETAILS.isdisjoint(details):
                self.texts[key] = text
        return {
            "event": name,
            "outcome": outcome,
            "reason": reason,
            "client_id": client_id,
            "session_ref": session,
            "level": level,
            "methods": methods,
            "details": details,
            "details_text": text,
            "citizen_id": citizen_id,
            "ip": where[0],
            "user_agent": where[1],
        }

    # A department's sign-in: password, second factor, (consent), code, tokens, userinfo.
    def service_sign_in(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        browser = _browser(citizen_id)
        events = self.signs_in(citizen_id, browser)
        return events + self.service_visit(citizen_id, service, browser, events[-1]["session_ref"])

    def signs_in(self, citizen_id: int, browser: tuple[str, str]) -> list[dict[str, Any]]:
        """The password, then the authenticator app's code, which starts a new session."""
        password_session = self.new_session()
        return [
            self.event(
                "sign_in.succeeded",
                citizen_id,
                browser,
                session=password_session,
                level="Cl",
                methods="pwd",
            ),
            self.second_step(citizen_id, browser, password_session),
        ]

    def second_step(self, citizen_id: int, browser, password_session: str) -> dict[str, Any]:
        """The authenticator app's code, which starts a new session (the step-up)."""
        return self.event(
            "second_factor.succeeded",
            citizen_id,
            browser,
            session=self.new_session(),
            level="Cl.Cm",
            methods="pwd otp",
            factor="totp",
            during="sign_in",
            previous_session=password_session,
        )

    def service_visit(self, citizen_id: int, service: Service, browser, session: str) -> list:
        """A signed-in citizen sent back to a department with a code, which it redeems."""
        rng = self.rng
        signed_in = {"session": session, "level": "Cl.Cm", "methods": "pwd otp"}
        events = []
        if rng.random() < 0.15:
            events.append(
                self.event(
                    "consent.given",
                    citizen_id,
                    browser,
                    client_id=service.client_id,
                    scope=service.scope,
                    **signed_in,
                )
            )
        client = {"client_id": service.client_id, **signed_in}
        backend = (service.ip, service.user_agent)
        events.append(
            self.event(
                "authorization_code.issued", citizen_id, browser, scope=service.scope, **client
            )
        )
        events.append(
            self.event(
                "token.issued",
                citizen_id,
                backend,
                grant_type="authorization_code",
                scope=service.scope,
                with_refresh=service.refresh,
                **client,
            )
        )
        if rng.random() < 0.8:
            events.append(
                self.event(
                    "userinfo.released",
                    citizen_id,
                    backend,
                    scope=service.scope,
                    claims=service.claims,  # a tuple: the same JSON as a list
                    **client,
                )
            )
        return events

    # A citizen already signed in (single sign-on) visiting another department.
    def returning(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        return self.service_visit(citizen_id, service, _browser(citizen_id), self.new_session())

    def refresh(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        return [
            self.event(
                "token.refreshed",
                citizen_id,
                (service.ip, service.user_agent),
                client_id=service.client_id,
                session=self.new_session(),
                level="Cl.Cm",
                methods="pwd otp",
                grant_type="refresh_token",
                scope=service.scope,
                with_refresh=True,
            )
        ]

    def wrong_password(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        failed = self.event(
            "sign_in.failed",
            citizen_id,
            _browser(citizen_id),
            outcome="failure",
            reason="wrong_password",
            methods="pwd",
        )
        if self.rng.random() < 0.6:
            return [failed, *self.service_sign_in(citizen_id, service)]
        return [failed]

    def wrong_code(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        browser = _browser(citizen_id)
        password_session = self.new_session()
        events = [
            self.event(
                "sign_in.succeeded",
                citizen_id,
                browser,
                session=password_session,
                level="Cl",
                methods="pwd",
            ),
            self.event(
                "second_factor.failed",
                citizen_id,
                browser,
                outcome="failure",
                reason="wrong_code",
                session=password_session,
                methods="pwd",
                factor="totp",
                during="sign_in",
            ),
        ]
        if self.rng.random() < 0.7:
            events.append(self.second_step(citizen_id, browser, password_session))
        return events

    def no_account(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        rng = self.rng
        guesser = (
            f"{rng.choice(('198.51.100', '203.0.113'))}.{rng.randrange(1, 255)}",
            rng.choice(GUESSER_AGENTS),
        )
        return [
            self.event(
                "sign_in.failed",
                None,
                guesser,
                outcome="failure",
                reason="no_account",
                methods="pwd",
            )
            for _ in range(rng.randrange(1, 4))
        ]

    def sign_out(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        browser = _browser(citizen_id)
        signed_in = {"session": self.new_session(), "level": None, "methods": "pwd otp"}
        if self.rng.random() < 0.5:
            return [
                self.event(
                    "citizen.signed_out", citizen_id, browser, by="sign_out_button", **signed_in
                )
            ]
        return [
            self.event(
                "citizen.signed_out_by_service",
                citizen_id,
                browser,
                client_id=service.client_id,
                confirmed_by=self.rng.choice(("citizen", "id_token_hint")),
                hint_valid=True,
                **signed_in,
            )
        ]

    def revoked(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        return [
            self.event(
                "token.revoked",
                citizen_id,
                (service.ip, service.user_agent),
                client_id=service.client_id,
                session=self.new_session(),
                level="Cl.Cm",
                methods="pwd otp",
                token_type="refresh_token",  # noqa: S106 - a kind of token, not one
                found=True,
            )
        ]

    def introspected(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        return [
            self.event(
                "token.introspected",
                None,
                (service.ip, service.user_agent),
                client_id=service.client_id,
                active=False,
            )
        ]

    def authorization_failed(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        reason = self.rng.choice(("invalid_request", "invalid_scope", "login_required"))
        return [
            self.event(
                "authorization.failed",
                None,
                _browser(citizen_id),
                outcome="failure",
                reason=reason,
                client_id=service.client_id,
            )
        ]

    def consent_refused(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        browser = _browser(citizen_id)
        events = self.signs_in(citizen_id, browser)
        events.append(
            self.event(
                "consent.refused",
                citizen_id,
                browser,
                outcome="failure",
                reason="declined",
                client_id=service.client_id,
                session=events[-1]["session_ref"],
                level="Cl.Cm",
                methods="pwd otp",
                scope=service.scope,
            )
        )
        return events

    def locked(self, citizen_id: int, service: Service) -> list[dict[str, Any]]:
        browser = _browser(citizen_id)
        failures = [
            self.event(
                "sign_in.failed",
                citizen_id,
                browser,
                outcome="failure",
                reason="wrong_password",
                methods="pwd",
            )
            for _ in range(5)
        ]
        return [
            *failures,
            self.event(
                "account.locked",
                citizen_id,
                browser,
                outcome="failure",
                reason="too many wrong attempts (password)",
                kind="password",
                locked_for=900,
            ),
        ]


def _lock_head(connection, count: int) -> tuple[int, str]:
    """Take the head row's lock and move its seq on by count, as the linker does for a batch;
    (the seq of the first new entry, the hash it links to)."""

    head = AuditHead.__table__
    bump = (
        update(head)
        .where(head.c.id == 1)
        .values(seq=head.c.seq + count)
        .returning(head.c.seq, head.c.head_hash)
    )
    row = connection.execute(bump).first()
    if row is None:
        recreate_head(connection)
        row = connection.execute(bump).first()
    return row[0] - count + 1, row[1]


class _Chain:
    """Entries linked from a head, hashed by idp/audit/chain.py (the writer's functions)."""

    def __init__(self, first_seq: int, prev_hash: str):
        self.seq = first_seq - 1
        self.head_hash = prev_hash

    def rows(
        self, events: Iterator[dict[str, Any]], times: Iterator[datetime], count: int
    ) -> Iterator[tuple]:
        """The next count entries as rows of AUDIT_COLUMNS (details as JSON text); the chain's
        seq and head_hash follow the last one yielded."""

        randomness = os.urandom(32 * count).hex()
        for number in range(count):
            entry = next(events)
            seq = self.seq + 1
            # As the writer: 16 random bytes of salt per entry (secrets.token_hex(16)); the
            # request id has the 32 hex digits of a uuid4().hex.
            salt = randomness[64 * number : 64 * number + 32]
            request = randomness[64 * number + 32 : 64 * number + 64]
            entry["seq"] = seq
            entry["time"] = moment = next(times)
            entry["request_id"] = request
            entry["instance"] = SEED_INSTANCE
            entry["software_version"] = SOFTWARE_VERSION
            citizen_id, ip, agent = entry["citizen_id"], entry["ip"], entry["user_agent"]
            digest = personal_digest(salt, citizen_id, ip, agent)
            prev_hash = self.head_hash
            link = entry_hash(prev_hash, content_hash(entry, digest))
            self.seq, self.head_hash = seq, link
            yield (
                seq,
                moment,
                entry["event"],
                entry["outcome"],
                entry["reason"],
                entry["client_id"],
                entry["session_ref"],
                request,
                entry["level"],
                entry["methods"],
                SEED_INSTANCE,
                entry["details_text"],
                SOFTWARE_VERSION,
                citizen_id,
                ip,
                agent,
                salt,
                digest,
                prev_hash,
                link,
            )


def _copy(connection, statement: str, rows: Iterator[tuple]) -> None:
    """PostgreSQL: stream rows into COPY on the connection's own psycopg connection (in its
    transaction): the server stores them while the next ones are made."""
    from psycopg.errors import UniqueViolation

    try:
        with (
            connection.connection.driver_connection.cursor() as cursor,
            cursor.copy(statement) as copy,
        ):
            for row in rows:
                copy.write_row(row)
    except UniqueViolation as exc:
        raise SeedError(
            f"{exc.diag.message_detail or exc} (is another idp seed running?)"
        ) from None


def _spread_times(count: int, now: datetime, rng: Random) -> Iterator[datetime]:
    """count times over the AUDIT_DAYS before now, each in its own slot: never decreasing."""
    start = now - timedelta(days=AUDIT_DAYS)
    slot = (timedelta(days=AUDIT_DAYS) / max(count, 1)).total_seconds()
    for number in range(count):
        yield start + timedelta(seconds=slot * (number + rng.random()))


@dataclass
class Appended(Seeded):
    """What the audit part wrote, and the checkpoint that signs it."""

    # The seq the first batch began at and the hash it linked to; the last entry's hash.
    linked_from: tuple[int, str] | None = None
    head_hash: str | None = None
    # Whether every batch began where the previous one ended (no one else wrote in between).
    alone: bool = True
    checkpoint: Any = None
    signing_seconds: float = 0.0


def seed_audit(count: int, batch: int, progress: Progress, rng: Random | None = None) -> Appended:
    """Sign the chain as it is, append count entries, one append transaction per batch (see
    the module's doc), then sign the new head."""

    began = time.perf_counter()
    seeded = Appended()
    if not count:
        return seeded
    rng = rng or Random()  # noqa: S311 - fake data, not secrets (salts come from os.urandom)
    citizen_ids = seeded_citizen_ids()
    if not citizen_ids:
        raise SeedError("audit entries need citizens: seed some first (--citizens)")
    try:
        # Checks the entries since the last checkpoint: a broken chain is not seeded over.
        before = make_checkpoint()
    except CheckpointError as exc:
        raise SeedError(f"not seeding: {exc}") from None
    signed = (before.seq, before.head_hash) if before is not None else (0, GENESIS)
    db.session.commit()  # no transaction left open while seeding
    events = iter(Journeys(rng, citizen_ids, services()))
    times = _spread_times(count, utcnow(), rng)
    try:
        while seeded.rows < count:
            size = min(batch, count - seeded.rows)
            with db.engine.begin() as connection:
                start = _lock_head(connection, size)
                chain = _Chain(*start)
                rows = chain.rows(events, times, size)
                if connection.dialect.name == "postgresql":
                    _copy(connection, COPY_AUDIT, rows)
                else:
                    stored = [dict(zip(AUDIT_COLUMNS, row, strict=True)) for row in rows]
                    for row in stored:
                        row["details"] = json.loads(row["details"])
                    connection.execute(insert(AuditEntry.__table__), stored)
                _move_head(connection, chain.head_hash)
            if seeded.linked_from is None:
                seeded.linked_from, seeded.first = start, start[0]
            elif start != (seeded.last + 1, seeded.head_hash):
                seeded.alone = False
            seeded.last, seeded.head_hash = chain.seq, chain.head_hash
            seeded.rows += size
            progress(size)
    except KeyboardInterrupt:
        # The open batch rolled back; sign the batches committed, as after a whole run.
        if seeded.rows:
            _sign(seeded, signed)
        raise
    seeded.seconds = time.perf_counter() - began
    began = time.perf_counter()
    _sign(seeded, signed)
    seeded.signing_seconds = time.perf_counter() - began
    return seeded


def _sign(seeded: Appended, signed: tuple[int, str]) -> None:
    """Sign the chain up to the last seeded entry, the checkpoint before seeding at signed."""

    if seeded.alone and seeded.linked_from == (signed[0] + 1, signed[1]):
        # Every entry since the last checkpoint is one this run linked: sign without reading
        # them back (make_checkpoint would check millions of entries, one ORM row at a time).
        seeded.checkpoint = _sign_checkpoint(seeded.last, seeded.head_hash)
        return
    # Someone else wrote in between: check what they wrote (and the rest) before signing.
    try:
        seeded.checkpoint = make_checkpoint()
    except CheckpointError as exc:
        raise SeedError(str(exc)) from None


def _sign_checkpoint(seq: int, head_hash: str):
    """Sign the checkpoint of entry seq, and log it, as make_checkpoint does after its check."""

    return sign_checkpoint(seq, head_hash)


def _move_head(connection, head_hash: str) -> None:
    """Point the head at the batch's last entry (its seq was moved when the lock was taken)."""

    head = AuditHead.__table__
    connection.execute(update(head).where(head.c.id == 1).values(head_hash=head_hash))


# -- The command -------------------------------------------------------------------------------


def run(citizens: int, audit_entries: int, password: str, batch: int, force: bool) -> None:
    """`idp seed`: refuse on a real issuer, seed citizens, then audit entries, then sign the
    chain's head; progress bars on standard error, a summary on standard output."""
    from sqlalchemy.engine import make_url

    settings = current_settings()
    database_host = make_url(settings.sqlalchemy_url).host
    local_database = database_host is None or is_loopback_host(database_host)
    if not force and not (settings.is_development and local_database):
        where = settings.issuer if not settings.is_development else f"a database on {database_host}"
        raise click.ClickException(
            f"idp seed writes millions of fake citizens (all with a published password) and "
            f"audit entries: it runs only with a loopback issuer and a database on this "
            f"machine, not at {where}; add --force if this really is a benchmark copy"
        )
    try:
        check_password(password)
        if audit_entries and not citizens and not _has_citizens():
            raise SeedError("audit entries need citizens: seed some first (--citizens)")
        with _progress(citizens, "citizens") as advance:
            made = seed_citizens(citizens, password, batch, advance)
        with _progress(audit_entries, "audit entries") as advance:
            appended = seed_audit(audit_entries, batch, advance)
        tables = [
            name for name, rows in (("citizen", made), ("audit_entry", appended)) if rows.rows
        ]
        tidied = _vacuum(tables)
    except SeedError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo(
            "\ninterrupted: the batches committed so far stay (and are signed); the audit "
            "chain is intact (`idp audit verify` checks it)",
            err=True,
        )
        raise click.Abort() from None
    if made.rows:
        click.echo(
            f"seeded {made.rows} citizens ({seed_email(made.first)} to {seed_email(made.last)}) "
            f"in {made.seconds:.1f} s: {made.rate:,.0f} rows/s"
        )
        shared = repr(password) if password == BENCHMARK_PASSWORD else "the one given"
        click.echo(f"their password: {shared} (one argon2id hash, shared by every row)")
    if appended.rows:
        click.echo(
            f"appended {appended.rows} audit entries ({appended.first} to {appended.last}) "
            f"in {appended.seconds:.1f} s: {appended.rate:,.0f} rows/s"
        )
    if appended.checkpoint is not None:
        click.echo(
            f"signed the checkpoint of entry {appended.checkpoint.seq} "
            f"in {appended.signing_seconds:.1f} s"
        )
    if tidied is not None:
        click.echo(f"vacuumed and analysed {' and '.join(tables)} in {tidied:.1f} s")
    if not made.rows and not appended.rows:
        click.echo("nothing to seed")


def _vacuum(tables: list[str]) -> float | None:
    """PostgreSQL: VACUUM (ANALYZE) the tables just filled, so a benchmark starts with their
    statistics and visibility map, rather than with autovacuum working beside it; seconds."""
    if not tables or db.engine.dialect.name != "postgresql":
        return None
    began = time.perf_counter()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))
    return time.perf_counter() - began


@contextmanager
def _progress(length: int, label: str) -> Iterator[Progress]:
    """A progress bar on standard error (none for nothing to do): `advance(rows)`."""
    if not length:
        yield lambda rows: None
        return
    with click.progressbar(
        length=length, label=f"{label:<14}", file=sys.stderr, show_pos=True, width=30
    ) as bar:
        yield bar.update

"""Reading the audit record: filters, keyset pages (newest first), a session's story, and the
aggregates the charts draw. Shared by the auditor pages and the export.

Every list is a keyset query on seq, never OFFSET: each filter has a composite (filter, seq)
index (idp/models/audit.py), so `WHERE filter = ? AND seq < ? ORDER BY seq DESC LIMIT 51` reads
51 index entries however long the record is. A time range is `time >= ? AND time < ?` (the
(time, seq) index), narrowed to a range of seq first (seq_bounds): the smallest seq from the
start on and the largest before the end, each read along the (time, seq) index, so that a page
of a month-old range does not walk back along seq through every newer entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, text

from idp import audit
from idp.audit import events
from idp.audit.chain import format_time
from idp.dates import uk_local
from idp.extensions import db
from idp.models import AuditEntry, Citizen, Client, Department

PAGE_SIZE = 50
SESSION_PAGE_SIZE = 200
OUTCOMES = ("success", "failure")
# A session that replaced another (a second factor's step-up) names it in its entry's details.
SESSION_LINK = "previous_session"
MAX_LINKED_SESSIONS = 5
# How many entries are read to find a link between sessions.
LINK_SEARCH = 200
# A sign-in to a service: the IdP issued it an authorization code (idp/oidc/server.py).
SIGN_IN_EVENT = "authorization_code.issued"
# A lockout after too many wrong attempts (idp/security/throttle.py).
LOCKOUT_EVENT = "account.locked"
# Times outside these years are typing mistakes (and near the ends, arithmetic overflows).
EARLIEST_YEAR = 1970
LATEST_YEAR = 9998
# citizen.id is an INTEGER column: larger numbers cannot be anyone's id.
MAX_CITIZEN_ID = 2**31 - 1


# Filters whose values are personal data: described only as used (see Filters.describe).
PERSONAL_FILTERS = {"citizen_id": "citizen_filter", "ip": "ip_filter"}


class FilterError(ValueError):
    """A filter value that cannot be used; the message says why, in plain words."""


@dataclass(frozen=True)
class Filters:
    """What to read: every filter is optional; start is included, end is not (UTC)."""

    start: datetime | None = None
    end: datetime | None = None
    citizen_id: int | None = None
    client_id: str | None = None
    event: str | None = None
    outcome: str | None = None
    ip: str | None = None
    # A department's name: the entries of every service it runs.
    department: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE clauses, each served by its (column, seq) index."""
        column = AuditEntry.__table__.c
        clauses: list[ColumnElement[bool]] = []
        if self.start is not None:
            clauses.append(column.time >= self.start)
        if self.end is not None:
            clauses.append(column.time < self.end)
        for name in ("citizen_id", "client_id", "outcome", "ip"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(column[name] == value)
        if self.event is not None:
            clauses.append(_event_clause(self.event))
        if self.department is not None:
            # Served by the (client_id, seq) index, one range per service of the department.
            services = (
                select(Client.client_id)
                .join(Department, Department.id == Client.department_id)
                .where(Department.name == self.department)
            )
            clauses.append(column.client_id.in_(services))
        return clauses

    def describe(self) -> dict[str, Any]:
        """The filters in use, JSON-ready (times as the chain writes them), for the record and
        for an export's manifest. Personal values are left out: an entry's details are hashed
        and cannot be erased, so a citizen id filter is only "citizen_filter": true (the entry
        that records its use names the citizen in its citizen_id column, which can be erased)
        and an IP address filter only "ip_filter": true."""
        described: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None:
                continue
            if item.name in PERSONAL_FILTERS:
                described[PERSONAL_FILTERS[item.name]] = True
            else:
                described[item.name] = format_time(value) if isinstance(value, datetime) else value
        return described

    @property
    def empty(self) -> bool:
        """Whether no filter is set."""
        return all(getattr(self, item.name) is None for item in fields(self))


def _event_clause(name: str) -> ColumnElement[bool]:
    """The entries of an event, and of its former or later names (idp/audit/events.py): the
    chain keeps each entry under the name it was recorded with."""
    column = AuditEntry.__table__.c
    terms = events.filter_terms(name)
    if len(terms) == 1:
        return column.event == name  # the usual case: one range of the (event, seq) index
    return or_(
        *(
            column.event == event
            if outcome is None
            else and_(column.event == event, column.outcome == outcome)
            for event, outcome in terms
        )
    )


@dataclass
class Page:
    """One page of entries, newest first, and where the neighbouring pages start."""

    entries: list[AuditEntry]
    # The before= value of the "Older entries" link, and the after= value of "Newer entries";
    # None when there is nothing that way.
    older: int | None
    newer: int | None


# -- Parsing what an auditor (or the command line) types ----------------------------------------


def parse_time(value: str, *, end: bool = False) -> datetime:
    """A UTC time from "YYYY-MM-DD", "YYYY-MM-DD HH:MM[:SS[.ffffff]]" (or with a T); an offset
    such as +01:00 is converted to UTC. A date alone as the end of a range means the end of that
    day (the next midnight), so "to 2025-01-31" includes the 31st."""
    text_value = value.strip()
    try:
        if len(text_value) == 10:
            moment = datetime.combine(date.fromisoformat(text_value), time(), tzinfo=UTC)
            moment += timedelta(days=1) if end else timedelta()
        else:
            moment = datetime.fromisoformat(text_value.replace(" ", "T", 1))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise FilterError(
            "Enter a date as YYYY-MM-DD, or a date and time as YYYY-MM-DD HH:MM (UTC)"
        ) from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise FilterError(f"Enter a date between {EARLIEST_YEAR} and {LATEST_YEAR}")
    return moment


def parse_citizen_id(value: str) -> int:
    """A citizen id: a whole number."""
    text_value = value.strip()
    if not text_value.isdigit() or not text_value.isascii():
        raise FilterError("Enter the citizen id as a whole number, such as 42")
    number = int(text_value)
    if not 1 <= number <= MAX_CITIZEN_ID:
        raise FilterError("There is no citizen with that id: ids are from 1 to 2147483647")
    return number


def parse_ip(value: str) -> str:
    """An IPv4 or IPv6 address, written as the record writes it."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise FilterError("Enter an IP address, such as 203.0.113.7 or 2001:db8::1") from None


def check_range(start: datetime | None, end: datetime | None) -> None:
    """A range that ends after it starts."""
    if start is not None and end is not None and start >= end:
        raise FilterError("The start of the time range must be before its end")


# -- Reading ------------------------------------------------------------------------------------


def seq_bounds(
    start: datetime | None, end: datetime | None
) -> tuple[int | None, int | None] | None:
    """The lowest and highest seq of the entries in [start, end), each None when that end of
    the range is open; None when no entry lies in the range. Exact (a min and a max over the
    entries that match), so `seq BETWEEN lo AND hi` beside the time predicate drops nothing."""
    column = AuditEntry.__table__.c
    low = high = None
    if start is not None:
        low = db.session.scalar(select(func.min(column.seq)).where(column.time >= start))
        if low is None:
            return None
    if end is not None:
        high = db.session.scalar(select(func.max(column.seq)).where(column.time < end))
        if high is None:
            return None
    if low is not None and high is not None and low > high:
        return None
    return low, high


def _bounded(clauses: list[ColumnElement[bool]], bounds: tuple[int | None, int | None]) -> None:
    """Add the seq range of a time range (from seq_bounds) to the WHERE clauses."""
    seq = AuditEntry.__table__.c.seq
    low, high = bounds
    if low is not None:
        clauses.append(seq >= low)
    if high is not None:
        clauses.append(seq <= high)


def _conditions(filters: Filters) -> list[ColumnElement[bool]] | None:
    """The filters' WHERE clauses with the seq range of their time range; None when no entry
    lies in the time range (nothing to read)."""
    clauses = filters.conditions()
    if filters.start is None and filters.end is None:
        return clauses
    bounds = seq_bounds(filters.start, filters.end)
    if bounds is None:
        return None
    _bounded(clauses, bounds)
    return clauses


def page(
    filters: Filters, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> Page:
    """One page of matching entries, newest first: the newest ones (neither bound), those just
    older than before, or those just newer than after. One row more than shown is read, to know
    whether there is a further page."""
    table = AuditEntry.__table__
    conditions = _conditions(filters)
    if conditions is None:
        return Page([], older=None, newer=None)
    query = select(AuditEntry).where(*conditions)
    if after is not None:
        rows = db.session.scalars(
            query.where(table.c.seq > after).order_by(table.c.seq).limit(size + 1)
        ).all()
        if len(rows) <= size:
            # Back at the newest entries: the first page, exactly as it is shown without a link.
            return page(filters, size=size)
        entries = list(reversed(rows[:size]))
        older = entries[-1].seq if _exists(conditions, below=entries[-1].seq) else None
        return Page(entries, older=older, newer=entries[0].seq)
    if before is not None:
        query = query.where(table.c.seq < before)
    rows = db.session.scalars(query.order_by(table.c.seq.desc()).limit(size + 1)).all()
    entries = list(rows[:size])
    older = entries[-1].seq if len(rows) > size else None
    newer = None
    if before is not None:
        top = entries[0].seq if entries else before - 1
        newer = top if _exists(conditions, above=top) else None
    return Page(entries, older=older, newer=newer)


def _exists(
    conditions: list[ColumnElement[bool]], *, below: int | None = None, above: int | None = None
) -> bool:
    """Whether an entry matching the conditions lies below or above a seq (one index probe)."""
    seq = AuditEntry.__table__.c.seq
    bound = seq < below if below is not None else seq > above
    probe = select(seq).where(*conditions, bound).limit(1)
    return db.session.execute(probe).first() is not None


def journey_sessions(session_ref: str) -> list[str]:
    """The sessions of one sign-in journey, oldest first: this one, the one it replaced and the
    one that replaced it. A second factor replaces the password's session with a new one (a new
    identifier), and its entry names the session it replaced (details.previous_session)."""
    refs = [session_ref]
    for _ in range(MAX_LINKED_SESSIONS):
        previous = _previous_session(refs[0])
        if previous is None or previous in refs:
            break
        refs.insert(0, previous)
    for _ in range(MAX_LINKED_SESSIONS):
        following = _next_session(refs[-1])
        if following is None or following in refs:
            break
        refs.append(following)
    return refs


def _previous_session(session_ref: str) -> str | None:
    """The session this one replaced, as its first entries say."""
    column = AuditEntry.__table__.c
    details = db.session.scalars(
        select(column.details)
        .where(column.session_ref == session_ref)
        .order_by(column.seq)
        .limit(LINK_SEARCH)
    )
    return next((d[SESSION_LINK] for d in details if d and d.get(SESSION_LINK)), None)


def _next_session(session_ref: str) -> str | None:
    """The session that replaced this one: among the same citizen's later entries (read along
    the (citizen_id, seq) index), one that names this session as the one it replaced."""
    column = AuditEntry.__table__.c
    first = db.session.execute(
        select(column.seq, column.citizen_id)
        .where(column.session_ref == session_ref, column.citizen_id.is_not(None))
        .order_by(column.seq)
        .limit(1)
    ).first()
    if first is None:
        return None
    later = db.session.execute(
        select(column.session_ref, column.details)
        .where(column.citizen_id == first.citizen_id, column.seq > first.seq)
        .order_by(column.seq)
        .limit(LINK_SEARCH)
    )
    return next((ref for ref, d in later if ref and d and d.get(SESSION_LINK) == session_ref), None)


def session_story(
    session_refs: list[str], after: int | None = None, size: int = SESSION_PAGE_SIZE
) -> tuple[list[AuditEntry], int | None]:
    """The events of a sign-in journey's sessions in the order they happened, and the after=
    value of the next part when there are more than size of them."""
    table = AuditEntry.__table__
    query = select(AuditEntry).where(table.c.session_ref.in_(session_refs))
    if after is not None:
        query = query.where(table.c.seq > after)
    rows = db.session.scalars(query.order_by(table.c.seq).limit(size + 1)).all()
    entries = list(rows[:size])
    return entries, (entries[-1].seq if len(rows) > size else None)


def entry_batches(
    filters: Filters, up_to: int, batch: int = 1000, *, start_after: int = 0
) -> Iterator[list[Any]]:
    """Matching entries with seq up to up_to, oldest first, as rows of columns (not tracked by
    the session), a batch at a time: an export of millions of entries never holds them all."""
    table = AuditEntry.__table__
    conditions = _conditions(filters)
    if conditions is None:
        return
    after = start_after
    while True:
        rows = db.session.execute(
            select(table)
            .where(*conditions, table.c.seq > after, table.c.seq <= up_to)
            .order_by(table.c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield rows
        after = rows[-1].seq


def event_choices(limit: int = 500) -> list[tuple[str, str | None]]:
    """The event filter's suggestions, (name, description): every catalogued event, then the
    other names found in the record (former names of renamed events, and tests')."""
    catalogued = sorted(events.EVENTS)
    recorded = [name for name in event_names(limit) if name not in events.EVENTS]
    return [(name, events.description(name)) for name in [*catalogued, *recorded]]


def event_names(limit: int = 500) -> list[str]:
    """Every distinct event in the record, by hopping along the (event, seq) index: one probe
    per name, not a scan of every entry."""
    statement = text(
        """
        WITH RECURSIVE names(event) AS (
            SELECT min(event) FROM audit_entry
            UNION ALL
            SELECT (SELECT min(e.event) FROM audit_entry AS e WHERE e.event > names.event)
            FROM names WHERE names.event IS NOT NULL
        )
        SELECT event FROM names WHERE event IS NOT NULL LIMIT :limit
        """
    )
    return list(db.session.scalars(statement, {"limit": limit}))


def departments() -> list[str]:
    """Every department's name, for the filter's suggestions."""
    return list(db.session.scalars(db.select(Department.name).order_by(Department.name)))


def services() -> list[tuple[str, str, str | None]]:
    """Every registered service: (client_id, name, department name)."""
    rows = db.session.scalars(db.select(Client).order_by(Client.client_id)).all()
    return [
        (row.client_id, row.client_name, row.department.name if row.department else None)
        for row in rows
    ]


def resolve_citizen(citizen_id: int, reason: str, *, staff_id: int) -> str | None:
    """Who a citizen id is: their email address, or None when the account no longer exists.
    Recorded first (audit.citizen_resolved, with the reason given), so no answer goes out
    unrecorded."""
    citizen = db.session.get(Citizen, citizen_id)
    audit.record(
        "audit.citizen_resolved",
        reason=reason,
        citizen_id=citizen_id,
        staff_id=staff_id,
        found=citizen is not None,
    )
    return citizen.email if citizen is not None else None


# -- Aggregates for the charts ------------------------------------------------------------------


def sign_ins_per_service(start: datetime, end: datetime) -> list[tuple[str, int]]:
    """(client_id, how many sign-ins) over [start, end), most first."""
    column = AuditEntry.__table__.c
    bounds = seq_bounds(start, end)
    if bounds is None:
        return []
    clauses = [
        column.time >= start,
        column.time < end,
        column.event == SIGN_IN_EVENT,
        column.outcome == "success",
    ]
    _bounded(clauses, bounds)
    count = func.count().label("sign_ins")
    rows = db.session.execute(
        select(column.client_id, count)
        .where(*clauses)
        .group_by(column.client_id)
        .order_by(count.desc(), column.client_id)
    ).all()
    return [(client_id or "", sign_ins) for client_id, sign_ins in rows]


def failures_over_time(
    start: datetime, end: datetime, unit: str
) -> list[tuple[datetime, int, int]]:
    """(bucket start, failures, lockouts) for every hour or day of [start, end), zeros
    included: failures are entries with outcome failure, lockouts are account.locked. Days are
    UK days (from midnight on a UK clock, GMT or BST), as an auditor in the UK reads them: the
    database counts by the hour, and the hours are added up into the days here."""
    column = AuditEntry.__table__.c
    bucket = _bucket(column.time, "hour").label("bucket")
    is_failure = column.outcome == "failure"
    is_lockout = column.event == LOCKOUT_EVENT
    bounds = seq_bounds(start, end)
    if bounds is None:
        return [(moment, 0, 0) for moment in buckets(start, end, unit)]
    clauses = [column.time >= start, column.time < end, or_(is_failure, is_lockout)]
    _bounded(clauses, bounds)
    rows = db.session.execute(
        select(
            bucket,
            func.sum(case((is_failure, 1), else_=0)),
            func.sum(case((is_lockout, 1), else_=0)),
        )
        .where(*clauses)
        .group_by(bucket)
    ).all()
    counted: dict[datetime, tuple[int, int]] = {}
    for moment, f, lo in rows:
        key = truncate(_as_utc(moment), unit)
        failures, lockouts = counted.get(key, (0, 0))
        counted[key] = (failures + int(f or 0), lockouts + int(lo or 0))
    return [(moment, *counted.get(moment, (0, 0))) for moment in buckets(start, end, unit)]


def buckets(start: datetime, end: datetime, unit: str) -> list[datetime]:
    """The start (in UTC) of every hour, or UK day, that overlaps [start, end)."""
    moment = truncate(start, unit)
    found = []
    while moment < end:
        found.append(moment)
        if unit == "hour":
            moment += timedelta(hours=1)
        else:
            # The next UK midnight: 23, 24 or 25 hours later, as the clocks change.
            moment = truncate(moment + timedelta(hours=26), unit)
    return found


def truncate(moment: datetime, unit: str) -> datetime:
    """The start (in UTC) of the hour, or the UK day, a time falls in."""
    moment = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return moment
    local = uk_local(moment)
    return local.replace(hour=0).astimezone(UTC) if local.hour else moment


def _bucket(column: Any, unit: str) -> ColumnElement[Any]:
    """SQL for the hour or day a time falls in (UTC), on either database."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date_trunc(unit, func.timezone("UTC", column))
    pattern = "%Y-%m-%d %H:00:00" if unit == "hour" else "%Y-%m-%d 00:00:00"
    return func.strftime(pattern, column)


def _as_utc(value: datetime | str) -> datetime:
    """A bucket as the database returned it (a naive UTC time, or SQLite's text), aware."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

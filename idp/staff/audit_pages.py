"""The auditor pages under /staff/audit: the audit record, read-only, for staff with the
auditor role (signed in with both factors). Staff pages, so they live beside staff sign-in;
the record itself, and reading it, is idp.audit. Administrators cannot read it (auditing is a
separate duty), and auditors change nothing elsewhere.

Every page is a GET that changes nothing but the record of who read what (audit.viewed). The
two POST forms, with CSRF tokens, are resolving a citizen id to an email address (a reason is
required, and recorded) and downloading an export (recorded by the export itself).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, render_template, request, send_file
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException
from wtforms import HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional, ValidationError

from idp import audit
from idp.audit import charts, events, queries
from idp.audit.export import FORMATS, ExportError, write_export
from idp.audit.linker import pending_count
from idp.audit.queries import FilterError, Filters
from idp.dates import UK, uk_local
from idp.models import StaffMember
from idp.models.timestamps import utcnow
from idp.staff.forms import choices
from idp.staff.guards import auditor_required, english_only
from idp.staff.sessions import current_staff

bp = english_only(Blueprint("audit", __name__))

FILTER_FIELDS = (
    "start",
    "end",
    *(f"{name}-{part}" for name in ("start", "end") for part in ("day", "month", "year")),
    "citizen",
    "department",
    "client_id",
    "event",
    "outcome",
    "ip",
)
SESSION_REF = re.compile(r"[0-9a-f]{32}")
REASON_MIN_LENGTH = 10
CHART_DEFAULT_RANGE = timedelta(days=7)
CHART_MAX_RANGE = timedelta(days=366)
# Ranges up to this long are charted by the hour, longer ones by the day.
HOURLY_UP_TO = timedelta(days=3)
FORMAT_NAMES = {"csv": "CSV", "jsonl": "JSON Lines"}


# -- Forms --------------------------------------------------------------------------------------


def _parsed(parse: Callable[[str], Any], value: str) -> Any:
    """A filter value parsed, or the reason it cannot be, as a form error."""
    try:
        return parse(value)
    except FilterError as exc:
        raise ValidationError(str(exc)) from None


DATE_PARTS = ("day", "month", "year")
DATE_NAMES = {"start": "from", "end": "to"}


@dataclass
class DateParts:
    """A date typed as the Design System asks (day, month and year fields, govukDateInput):
    its fields, and which of them are in error, for the template (staff/_fields.html)."""

    name: str
    form: FlaskForm
    parts_in_error: tuple[str, ...] = ()

    def field(self, part: str) -> StringField:
        """The day, month or year field."""
        return self.form[f"{self.name}_{part}"]

    def typed(self) -> dict[str, str]:
        """The parts given, without spaces."""
        parts = {part: (self.field(part).data or "").strip() for part in DATE_PARTS}
        return {part: value for part, value in parts.items() if value}

    def error_message(self, errors: Any) -> str | None:
        """The date's one message (on whichever of its fields the error was put)."""
        found = [errors.by_field.get(self.field(part).id) for part in DATE_PARTS] if errors else []
        return next((text for text in found if text), None)


def _date_from_parts(date_parts: DateParts) -> date | None:
    """The date typed, or None when nothing is; a ValueError says what is wrong, in the
    Design System's words ("The from date must include a year", "... must be a real date")."""
    typed = date_parts.typed()
    which = DATE_NAMES[date_parts.name]
    if not typed:
        return None
    missing = [part for part in DATE_PARTS if part not in typed]
    if missing:
        raise ValueError(f"The {which} date must include a {' and '.join(missing)}", missing)
    if not all(value.isascii() and value.isdigit() for value in typed.values()):
        raise ValueError(f"The {which} date must be a real date", list(DATE_PARTS))
    if len(typed["year"]) != 4:
        raise ValueError(f"The {which} date's year must have 4 numbers", ["year"])
    year = int(typed["year"])
    if not queries.EARLIEST_YEAR <= year <= queries.LATEST_YEAR:
        raise ValueError(
            f"Enter a date between {queries.EARLIEST_YEAR} and {queries.LATEST_YEAR}", ["year"]
        )
    try:
        return date(year, int(typed["month"]), int(typed["day"]))
    except ValueError:
        raise ValueError(f"The {which} date must be a real date", list(DATE_PARTS)) from None


def _uk_midnight(day: date) -> datetime:
    """The start of a day on a UK clock (GMT or BST), in UTC as the record keeps time."""
    return datetime.combine(day, time(), tzinfo=ZoneInfo(UK)).astimezone(UTC)


class RangeForm(FlaskForm):
    """A time range, read from the query string (a GET form: no CSRF token).

    The form asks for dates the Design System's way: a day, month and year for each end, on
    a UK clock; "to" includes that whole day. A link may instead carry exact times in
    ``start`` and ``end`` (YYYY-MM-DD or YYYY-MM-DD HH:MM, UTC), as pages link to each other
    and as other tools write them; the dates typed in the form win over them."""

    class Meta:
        csrf = False

    start = HiddenField(
        validators=[Optional(), Length(max=40, message="Enter a date of at most 40 characters")]
    )
    end = HiddenField(
        validators=[Optional(), Length(max=40, message="Enter a date of at most 40 characters")]
    )
    start_day = StringField("Day", name="start-day")
    start_month = StringField("Month", name="start-month")
    start_year = StringField("Year", name="start-year")
    end_day = StringField("Day", name="end-day")
    end_month = StringField("Month", name="end-month")
    end_year = StringField("Year", name="end-year")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parsed: dict[str, Any] = {}
        self.dates = {name: DateParts(name, self) for name in DATE_NAMES}

    def validate_start(self, field: HiddenField) -> None:
        """A time it starts at."""
        self.parsed["start"] = _parsed(queries.parse_time, field.data)

    def validate_end(self, field: HiddenField) -> None:
        """A time it ends before."""
        self.parsed["end"] = _parsed(partial(queries.parse_time, end=True), field.data)

    def _read_dates(self) -> bool:
        """The dates typed (each replacing the exact time of a link); False if one is wrong."""
        good = True
        for name, date_parts in self.dates.items():
            try:
                day = _date_from_parts(date_parts)
            except ValueError as exc:
                message, parts = exc.args
                date_parts.parts_in_error = tuple(parts)
                first = date_parts.field(parts[0])
                first.errors = [*first.errors, message]
                good = False
                continue
            if day is not None:
                # "To" a day includes it: the range ends at the next midnight.
                self.parsed[name] = _uk_midnight(day + timedelta(days=1 if name == "end" else 0))
        return good

    def range_error(self, name: str, message: str) -> None:
        """Say what is wrong with the range at its start or end, on the field that set it."""
        date_parts = self.dates[name]
        if date_parts.typed():
            date_parts.parts_in_error = DATE_PARTS
            target = date_parts.field("day")
        else:
            target = self[name]
        target.errors = [*target.errors, message]

    def validate(self, extra_validators: Any = None) -> bool:
        """Each field, the dates, then the range: it ends after it starts."""
        valid = super().validate(extra_validators)
        if not self._read_dates() or not valid:
            return False
        try:
            queries.check_range(self.parsed.get("start"), self.parsed.get("end"))
        except FilterError as exc:
            self.range_error("end", str(exc))
            return False
        return True


class FilterForm(RangeForm):
    """The audit record's filters."""

    citizen = StringField(
        "Citizen id",
        validators=[Optional(), Length(max=20, message="Enter a citizen id of at most 20 digits")],
    )
    department = StringField(
        "Department",
        description="Every service it runs",
        validators=[
            Optional(),
            Length(max=200, message="Enter a department name of at most 200 characters"),
        ],
        render_kw={"list": "department-names", "spellcheck": "false"},
    )
    client_id = StringField(
        "Service (client ID)",
        validators=[
            Optional(),
            Length(max=128, message="Enter a client ID of at most 128 characters"),
        ],
        render_kw={"list": "service-ids", "spellcheck": "false"},
    )
    event = StringField(
        "Event",
        description="Choose one, or type its name",
        validators=[Optional(), Length(max=64, message="Enter an event of at most 64 characters")],
        render_kw={"list": "event-names", "spellcheck": "false"},
    )
    outcome = SelectField(
        "Outcome",
        choices=choices([("", "Any"), ("success", "Success"), ("failure", "Failure")]),
        validate_choice=False,
    )
    ip = StringField(
        "IP address",
        validators=[Optional(), Length(max=64, message="Enter an IP address")],
        render_kw={"spellcheck": "false"},
    )

    def validate_citizen(self, field: StringField) -> None:
        """A whole number."""
        self.parsed["citizen_id"] = _parsed(queries.parse_citizen_id, field.data)

    def validate_outcome(self, field: SelectField) -> None:
        """Success, failure or any."""
        if field.data and field.data not in queries.OUTCOMES:
            raise ValidationError("Choose success or failure, or any outcome")

    def validate_ip(self, field: StringField) -> None:
        """An IPv4 or IPv6 address."""
        self.parsed["ip"] = _parsed(queries.parse_ip, field.data)

    def filters(self) -> Filters:
        """The filters, once the form is valid."""
        return Filters(
            start=self.parsed.get("start"),
            end=self.parsed.get("end"),
            citizen_id=self.parsed.get("citizen_id"),
            client_id=(self.client_id.data or "").strip() or None,
            department=(self.department.data or "").strip() or None,
            event=(self.event.data or "").strip() or None,
            outcome=self.outcome.data or None,
            ip=self.parsed.get("ip"),
        )


class ChartForm(RangeForm):
    """The charts' time range: up to now unless chosen, a week long unless chosen, at most
    CHART_MAX_RANGE."""

    def validate(self, extra_validators: Any = None) -> bool:
        """A range that ends after it starts, at most CHART_MAX_RANGE long."""
        if not super().validate(extra_validators):
            return False
        start, end = self.chart_range()
        if start >= end:
            self.range_error("start", "The start of the range must be in the past")
            return False
        if end - start > CHART_MAX_RANGE:
            self.range_error("end", "Choose a range of at most 366 days")
            return False
        return True

    def chart_range(self) -> tuple[datetime, datetime]:
        """(start, end): the end defaults to now, the start to a week before the end."""
        end = self.parsed.get("end") or utcnow()
        return self.parsed.get("start") or end - CHART_DEFAULT_RANGE, end


class ResolveForm(FlaskForm):
    """Why the auditor needs to know who a citizen id is."""

    reason = TextAreaField(
        "Why do you need to know who this is?",
        description="For example the reference of the investigation or request. Your reason "
        "and your staff account are kept in the audit record.",
        validators=[Length(max=200, message="Give a reason of at most 200 characters")],
    )
    submit = SubmitField("Show the email address")

    def validate_reason(self, field: TextAreaField) -> None:
        """A real reason: at least REASON_MIN_LENGTH characters besides spaces."""
        if len((field.data or "").strip()) < REASON_MIN_LENGTH:
            raise ValidationError(
                f"Give the reason you need this email address, in at least {REASON_MIN_LENGTH} "
                "characters"
            )


class ExportForm(FlaskForm):
    """Only a CSRF token: the filters and format are in the form's action (query string)."""


# -- Who may read -------------------------------------------------------------------------------


@bp.errorhandler(HTTPException)
def audit_error(error: HTTPException):
    """A refusal on an auditor page, said to staff."""
    return render_template(
        "staff/error.html", member=current_staff(), message=error.description
    ), error.code


@bp.app_template_filter("event_description")
def event_description(name: str) -> str:
    """What an event means, from the catalogue (idp/audit/events.py), for the entries' tables."""
    return events.description(name) or ""


# -- Pages --------------------------------------------------------------------------------------


def _seq_arg(name: str) -> int | None:
    """A before= or after= entry number from the query string."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        abort(400, "This page link is not right: go back to the audit record and try again.")
    return int(value)


def _filter_args() -> dict[str, str]:
    """The filters as typed, for links to other pages of the same list."""
    return {name: value for name in FILTER_FIELDS if (value := request.args.get(name, "").strip())}


def _viewed(
    member: StaffMember, page: str, *, citizen_id: int | None = None, **details: Any
) -> None:
    """Record what an auditor read. citizen_id: the citizen the auditor filtered on, kept in
    the entry's citizen_id column (erasable), never in its details (hashed for good)."""
    audit.record("audit.viewed", staff_id=member.id, page=page, citizen_id=citizen_id, **details)


@bp.get("/staff/audit")
@auditor_required
def entries(member: StaffMember) -> Any:
    """The record, newest first, filtered, 50 entries a page."""
    form = FilterForm(formdata=request.args)
    before, after = _seq_arg("before"), _seq_arg("after")
    if not form.validate():
        return _entries_page(member, form, None, status=400)
    filters = form.filters()
    found = queries.page(filters, before=before, after=after)
    waiting = pending_count()  # before this read's own entry
    _viewed(
        member,
        "entries",
        filters=filters.describe(),
        citizen_id=filters.citizen_id,
        before=before,
        after=after,
        shown=[found.entries[-1].seq, found.entries[0].seq] if found.entries else [],
    )
    return _entries_page(member, form, found, waiting=waiting)


def _entries_page(
    member: StaffMember, form: FilterForm, found: Any, status: int = 200, waiting: int = 0
) -> Any:
    """The record page: the filters, the entries, the links to the next pages, the exports;
    waiting: how many entries are recorded but not yet chained (so not shown)."""
    args = _filter_args() if found is not None else {}
    services = queries.services()
    return render_template(
        "staff/audit/entries.html",
        member=member,
        form=form,
        page=found,
        waiting=waiting,
        filter_args=args,
        export_form=ExportForm(),
        formats=FORMAT_NAMES,
        event_choices=queries.event_choices(),
        services=services,
        service_names=_service_names(services),
        departments=queries.departments(),
    ), status


def _service_names(services: list[tuple[str, str, str | None]]) -> dict[str, str]:
    """Each registered service's name by its client ID: the entries say which service by the
    name its department gave it, not by an identifier."""
    return {client_id: name for client_id, name, _ in services}


@bp.get("/staff/audit/sessions/<session_ref>")
@auditor_required
def session(member: StaffMember, session_ref: str) -> Any:
    """Every event of one sign-in journey (one single sign-on session), in order."""
    if not SESSION_REF.fullmatch(session_ref):
        abort(404, "There is no such session in the audit record.")
    after = _seq_arg("after")
    sessions = queries.journey_sessions(session_ref)
    story, more = queries.session_story(sessions, after=after)
    if not story and after is None:
        abort(404, "There is no such session in the audit record.")
    waiting = pending_count()  # before this read's own entry
    _viewed(
        member, "session", session_ref=session_ref, sessions=sessions, after=after, shown=len(story)
    )
    return render_template(
        "staff/audit/session.html",
        member=member,
        session_ref=session_ref,
        sessions=sessions,
        entries=story,
        more=more,
        after=after,
        waiting=waiting,
        service_names=_service_names(queries.services()),
    )


@bp.route("/staff/audit/citizens/<int:citizen_id>/resolve", methods=["GET", "POST"])
@auditor_required
def resolve(member: StaffMember, citizen_id: int) -> Any:
    """Who a citizen id is: asked with a reason, recorded, then the email address shown."""
    if not 1 <= citizen_id <= queries.MAX_CITIZEN_ID:
        abort(404, "There is no citizen with that id.")
    form = ResolveForm()
    if form.validate_on_submit():
        reason = " ".join(form.reason.data.split())
        email = queries.resolve_citizen(citizen_id, reason, staff_id=member.id)
        return render_template(
            "staff/audit/resolved.html",
            member=member,
            citizen_id=citizen_id,
            email=email,
            reason=reason,
        )
    status = 400 if form.is_submitted() else 200
    return render_template(
        "staff/audit/resolve.html", member=member, form=form, citizen_id=citizen_id
    ), status


@bp.get("/staff/audit/charts")
@auditor_required
def chart_page(member: StaffMember) -> Any:
    """Sign-ins per service, and failures and lockouts over time, as SVG and as tables."""
    form = ChartForm(formdata=request.args)
    if not form.validate():
        return render_template("staff/audit/charts.html", member=member, form=form), 400
    start, end = form.chart_range()
    unit = "hour" if end - start <= HOURLY_UP_TO else "day"
    context = _charts(start, end, unit)
    _viewed(member, "charts", filters=Filters(start=start, end=end).describe(), unit=unit)
    return render_template("staff/audit/charts.html", member=member, form=form, **context)


def _charts(start: datetime, end: datetime, unit: str) -> dict[str, Any]:
    """The charts of [start, end) and the numbers behind them, for the charts page."""
    period = f"{uk_local(start):%d %b %Y %H:%M} to {uk_local(end):%d %b %Y %H:%M} (UK time)"
    names = {client_id: (name, dept) for client_id, name, dept in queries.services()}
    sign_ins = queries.sign_ins_per_service(start, end)
    over_time = queries.failures_over_time(start, end, unit)
    bars = [(names[c][0] if c in names else c or "(no service)", n) for c, n in sign_ins]
    return {
        "period": period,
        "unit": unit,
        "sign_ins": [(c, *names.get(c, (None, None)), n) for c, n in sign_ins],
        "sign_ins_svg": charts.sign_ins_chart(bars, period),
        "over_time": [(charts.time_label(moment, unit), f, lo) for moment, f, lo in over_time],
        "failures_svg": charts.failures_chart(over_time, unit, period),
    }


@bp.post("/staff/audit/export")
@auditor_required
def export(member: StaffMember) -> Any:
    """Download the filtered record as a .zip (CSV or JSON Lines, and a manifest to verify it
    offline with `idp audit verify --export FILE`). The export records itself."""
    form = ExportForm()
    if not form.validate_on_submit():
        abort(400, "Nothing was exported: use the export buttons on the audit record page.")
    fmt = request.args.get("format", "")
    filters_form = FilterForm(formdata=request.args)
    if fmt not in FORMATS or not filters_form.validate():
        abort(400, "Nothing was exported: choose the filters again on the audit record page.")
    target = tempfile.TemporaryFile()  # noqa: SIM115 - send_file closes it after sending
    try:
        summary = write_export(
            filters_form.filters(),
            fmt,
            target,
            actor={"staff_id": member.id, "via": "auditor page"},
        )
    except ExportError as exc:
        target.close()
        abort(409, f"Nothing was exported: {exc}.")
    target.seek(0)
    response = send_file(
        target, mimetype="application/zip", as_attachment=True, download_name=summary.download_name
    )
    response.headers["Cache-Control"] = "no-store"  # personal data: never kept in a cache
    return response

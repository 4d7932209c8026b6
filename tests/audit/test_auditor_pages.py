"""The auditor pages, used over HTTP as an auditor would: a read-only role of its own that
filters the record, pages through it without gaps, reads a sign-in journey's whole story and
resolves a citizen id to an email address only with a reason (which is recorded). Nobody else
reads the record, and an auditor changes nothing."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import event as sqlalchemy_event

from idp import audit
from idp.audit import queries
from idp.audit.queries import Filters
from idp.dates import uk_datetime, uk_local
from idp.extensions import db
from idp.models import AuditEntry, Client, StaffMember
from idp.models.timestamps import utcnow
from idp.staff.accounts import begin_staff_totp_enrolment, create_staff
from idp.staff.audit_pages import _uk_midnight
from tests.departments import (
    PASSPORTS,
    STAFF_APPS,
    STAFF_PASSWORD,
    StaffApp,
    StaffBrowser,
    error_summary,
    make_service,
    make_staff,
    redirects_to,
    visible_text,
)
from tests.support.browser import CitizenBrowser, error_beside
from tests.support.cli import migrated_env, run

AUDITOR = "auditor@audit.example.gov.uk"
SEPARATE_DUTY = "Auditing is a separate duty"
ENTRY_ROW = re.compile(r'<tr [^>]*id="entry-(\d+)">')


# -- Helpers -----------------------------------------------------------------------------------


def make_auditor(app, email: str = AUDITOR, *, second_factor: bool = True) -> str:
    """An auditor (no department), with a confirmed authenticator app unless not."""
    with app.app_context():
        member = create_staff(email, STAFF_PASSWORD, "auditor")
        if second_factor:
            secret = begin_staff_totp_enrolment(member)
            member.totp_confirmed_at = utcnow()
            db.session.commit()
            STAFF_APPS[member.email] = StaffApp(secret)
    return email


@pytest.fixture
def auditor(idp) -> StaffBrowser:
    """An auditor, signed in with both factors."""
    return StaffBrowser(idp.issuer).signed_in(make_auditor(idp.app))


def record(idp, event: str, *, ip: str | None = None, user_agent: str = "pytest", **fields) -> int:
    """Record an event as the IdP would (from a request when ip is given); its seq once the
    request (or the app context) has ended and its entries are chained."""
    with idp.app.app_context():
        if ip is None:
            audit.record(event, **fields)
        else:
            environ = {"REMOTE_ADDR": ip, "HTTP_USER_AGENT": user_agent}
            with idp.app.test_request_context("/", environ_base=environ):
                audit.record(event, **fields)
    return newest(idp, event)


def newest(idp, event: str | None = None) -> int:
    """The newest entry's seq (of one event, if given)."""
    with idp.app.app_context():
        query = db.select(db.func.max(AuditEntry.seq))
        if event is not None:
            query = query.where(AuditEntry.event == event)
        return db.session.scalar(query) or 0


def stored(idp, event: str) -> list[AuditEntry]:
    """Every entry of an event, oldest first (detached)."""
    with idp.app.app_context():
        rows = db.session.scalars(
            db.select(AuditEntry).filter_by(event=event).order_by(AuditEntry.seq)
        ).all()
        db.session.expunge_all()
        return list(rows)


def shown(page: httpx.Response) -> list[int]:
    """The entries a page lists, in its order."""
    return [int(seq) for seq in ENTRY_ROW.findall(page.text)]


def link(page: httpx.Response, label: str) -> str | None:
    """The href of the link with this text, if there is one."""
    found = re.search(
        rf'<a [^>]*href="([^"]+)"[^>]*>(?:<[^>]+>|\s)*{re.escape(label)}(?:<[^>]+>|\s)*</a>',
        page.text,
    )
    return found.group(1).replace("&amp;", "&") if found else None


def entry_row(page: httpx.Response, seq: int) -> str:
    """The text of one entry's row in the table."""
    row = re.split(rf'<tr [^>]*id="entry-{seq}">', page.text, maxsplit=1)[1].split("</tr>")[0]
    return visible_text(httpx.Response(200, text=row))


def listed(auditor: StaffBrowser, **params: str) -> httpx.Response:
    """The record page with these filters."""
    return auditor.http.get("/staff/audit", params=params)


# -- Reading the record ------------------------------------------------------------------------


def test_an_auditor_signs_in_to_the_record_and_each_read_is_recorded(idp):
    first = record(idp, "test.event", citizen_id=5, client_id="dept-a")
    email = make_auditor(idp.app)
    browser = StaffBrowser(idp.issuer)

    response = browser.sign_in(email)
    home = browser.follow(response)

    assert home.url.path == "/staff/audit"
    assert home.status_code == 200
    text = visible_text(home)
    assert "Audit record" in text and f"{AUDITOR} · Auditor" in text
    assert link(home, "Charts") == "/staff/audit/charts"
    assert first in shown(home)
    assert shown(home) == sorted(shown(home), reverse=True)
    # No department pages for an auditor in the navigation.
    assert "Register a service" not in text and "Initial access tokens" not in text
    viewed = stored(idp, "audit.viewed")
    with idp.app.app_context():
        member = db.session.scalar(db.select(StaffMember).filter_by(email=AUDITOR))
    assert viewed[-1].details["staff_id"] == member.id
    assert viewed[-1].details["page"] == "entries"


def test_filters_narrow_the_record(idp, auditor, clock):
    a = record(idp, "test.sign_in", citizen_id=7, client_id="dept-a", ip="203.0.113.7")
    b = record(
        idp, "test.sign_in", outcome="failure", reason="wrong", citizen_id=8, ip="2001:db8::1"
    )
    c = record(idp, "test.other", citizen_id=7, client_id="dept-b", ip="203.0.113.8")
    clock.advance(0.01)
    middle_start = utcnow()
    d = record(idp, "test.timed", client_id="dept-b")
    e = record(idp, "test.timed", client_id="dept-b")
    middle_end = utcnow()
    clock.advance(0.01)
    f = record(idp, "test.timed", client_id="dept-b")

    assert shown(listed(auditor, citizen="7")) == [c, a]
    assert shown(listed(auditor, client_id="dept-b")) == [f, e, d, c]
    assert shown(listed(auditor, event="test.sign_in")) == [b, a]
    assert shown(listed(auditor, event="test.sign_in", outcome="failure")) == [b]
    assert shown(listed(auditor, ip="203.0.113.7")) == [a]
    # An IPv6 address matches however it is written.
    assert shown(listed(auditor, ip="2001:0db8:0:0::1")) == [b]
    assert shown(listed(auditor, citizen="7", client_id="dept-b")) == [c]
    timed = listed(auditor, start=middle_start.isoformat(), end=middle_end.isoformat())
    assert shown(timed) == [e, d]
    # A date alone as the end includes that whole day.
    today = middle_start.date().isoformat()
    assert set(shown(listed(auditor, start=today, end=today))) >= {a, b, c, d, e, f}
    nothing = listed(auditor, citizen="4242")
    assert nothing.status_code == 200 and shown(nothing) == []
    assert "No entries match these filters" in visible_text(nothing)
    # The event box offers the events in the record; the filters stay in the form.
    page = listed(auditor, event="test.sign_in")
    assert '<option value="test.other">' in page.text
    assert 'value="test.sign_in"' in page.text


def record_uncatalogued(idp, monkeypatch, event: str, **fields) -> int:
    """An entry the catalogue (idp/audit/events.py) does not declare, such as one under an
    event's former name from an older release: record() takes it only in production (where it
    logs the error and records anyway); its seq."""
    settings = idp.app.config["IDP_SETTINGS"]
    production = dataclasses.replace(settings, issuer="https://idp.example.gov.uk")
    with monkeypatch.context() as patch:
        patch.setitem(idp.app.config, "IDP_SETTINGS", production)
        return record(idp, event, **fields)


def test_a_renamed_event_finds_the_entries_recorded_under_its_former_name(
    idp, auditor, monkeypatch
):
    old_failure = record_uncatalogued(
        idp, monkeypatch, "staff.sign_in", outcome="failure", reason="wrong_password", staff_id=1
    )
    old_success = record_uncatalogued(idp, monkeypatch, "staff.sign_in", staff_id=1)
    old_sign_out = record_uncatalogued(idp, monkeypatch, "staff.sign_out", staff_id=1)
    new_failure = record(
        idp, "staff.sign_in.failed", outcome="failure", reason="wrong_password", staff_id=1
    )
    new_sign_out = record(idp, "staff.signed_out", staff_id=1)

    made = {old_failure, old_success, old_sign_out, new_failure, new_sign_out}

    def found(event: str) -> list[int]:
        """The entries of this test the filter finds (the auditor's own sign-in is there too)."""
        return [seq for seq in shown(listed(auditor, event=event)) if seq in made]

    # One old name became two new ones: its entries are told apart by their outcome.
    assert found("staff.sign_in.failed") == [new_failure, old_failure]
    assert found("staff.sign_in.succeeded") == [old_success]
    assert found("staff.signed_out") == [new_sign_out, old_sign_out]
    # The former name finds the entries of the names it became, too.
    assert found("staff.sign_out") == [new_sign_out, old_sign_out]
    assert found("staff.sign_in") == [new_failure, old_success, old_failure]
    # An export reads through the same filter.
    with idp.app.app_context():
        up_to = newest(idp)
        batches = queries.entry_batches(Filters(event="staff.signed_out"), up_to)
        assert [row.seq for rows in batches for row in rows] == [old_sign_out, new_sign_out]


def test_the_record_says_what_each_event_means(idp, auditor, monkeypatch):
    seq = record(idp, "staff.signed_out", staff_id=1)
    old = record_uncatalogued(idp, monkeypatch, "staff.sign_out", staff_id=1)
    page = listed(auditor)
    # The event in words first, then its name (as the event filter takes it).
    row = entry_row(page, seq)
    assert "A staff member signed out staff.signed_out success" in row
    row = entry_row(page, old)
    assert "Recorded before it was renamed staff.signed_out staff.sign_out" in row
    # The event box offers every catalogued event, with its meaning, and the former names.
    assert (
        '<option value="password.reset" label="A citizen set a new password after proving '
        'their email address">'
    ) in page.text
    assert '<option value="staff.sign_out" label="Recorded before it was renamed' in page.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "yesterday"}, "Enter a date as YYYY-MM-DD"),
        ({"end": "2025-02-30"}, "Enter a date as YYYY-MM-DD"),
        ({"end": "9999-06-30"}, "Enter a date between 1970 and 9998"),
        ({"start": "0001-01-01 00:00+01:00"}, "Enter a date as YYYY-MM-DD"),
        ({"start": "2025-03-02", "end": "2025-03-01"}, "must be before its end"),
        ({"start": "2025-03-02 10:00", "end": "2025-03-02 10:00"}, "must be before its end"),
        ({"citizen": "abc"}, "Enter the citizen id as a whole number"),
        ({"citizen": "-3"}, "Enter the citizen id as a whole number"),
        ({"citizen": "99999999999"}, "There is no citizen with that id"),
        ({"ip": "999.1.1.1"}, "Enter an IP address"),
        ({"ip": "203.0.113.7; DROP TABLE audit_entry"}, "Enter an IP address"),
        ({"outcome": "maybe"}, "Choose success or failure"),
        ({"event": "x" * 65}, "at most 64 characters"),
    ],
)
def test_bad_filters_get_an_error_summary_not_an_error(idp, auditor, params, message):
    record(idp, "test.event", citizen_id=1)
    viewed_before = len(stored(idp, "audit.viewed"))

    page = listed(auditor, **params)

    assert page.status_code == 400
    assert any(message in item for item in error_summary(page)), error_summary(page)
    assert shown(page) == []
    assert len(stored(idp, "audit.viewed")) == viewed_before


def test_a_bad_page_link_is_refused_plainly(idp, auditor):
    for params in ({"before": "abc"}, {"after": "-1"}, {"before": "9" * 40}):
        page = listed(auditor, **params)
        assert page.status_code == 400
        assert "This page link is not right" in visible_text(page)


def test_pages_walk_every_entry_once_newest_first(idp, auditor):
    made = [record(idp, "test.page", n=n) for n in range(120)]

    urls, pages, url = [], [], "/staff/audit?event=test.page"
    while url:
        page = auditor.get(url)
        assert page.status_code == 200
        urls.append(url)
        pages.append(shown(page))
        url = link(page, "Older entries")

    assert [len(p) for p in pages] == [50, 50, 20]
    assert [seq for p in pages for seq in p] == sorted(made, reverse=True)
    # And back with "Newer entries": the same pages in reverse order.
    page, back = auditor.get(urls[-1]), []
    while (newer := link(page, "Newer entries")) is not None:
        page = auditor.get(newer)
        back.append(shown(page))
    assert back == [pages[1], pages[0]]


def test_the_whole_record_pages_without_gaps_or_duplicates(idp, auditor):
    for n in range(120):
        record(idp, "test.page", n=n)

    first = auditor.get("/staff/audit")
    top = shown(first)[0]
    seen, page = [], first
    while True:
        entries = shown(page)
        assert len(entries) <= 50
        seen += entries
        older = link(page, "Older entries")
        if older is None:
            break
        assert parse_qs(urlsplit(older).query)["before"] == [str(entries[-1])]
        page = auditor.get(older)
    assert seen == list(range(top, 0, -1))

    # Newer links retrace the same pages back up to the newest one.
    previous = shown(page)
    while (newer := link(page, "Newer entries")) is not None:
        page = auditor.get(newer)
        entries = shown(page)
        assert previous[0] + 1 in entries
        if link(page, "Newer entries") is not None:
            assert entries[-1] == previous[0] + 1 and len(entries) == 50
        previous = entries
    assert shown(page)[0] >= top


def first_statement(engine, call) -> tuple[str, object]:
    """The first SQL statement (and its parameters) that call sends to the database."""
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sqlalchemy_event.listen(engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sqlalchemy_event.remove(engine, "before_cursor_execute", capture)
    return statements[0]


@pytest.mark.both_databases
def test_each_filter_reads_its_own_index(idp):
    # Many entries, few of them matching: what the record looks like after years. (Rows made
    # directly, with made-up hashes: this test reads query plans, not the chain.)
    rows = []
    for seq in range(1, 2001):
        rare = seq % 50 == 0
        rows.append(
            {
                "seq": seq,
                "time": utcnow(),
                "event": "test.rare" if rare else "test.common",
                "outcome": "failure" if rare else "success",
                "client_id": "dept-rare" if rare else "dept-common",
                "instance": "test",
                "details": {},
                "citizen_id": 1 if rare else 2,
                "ip": "203.0.113.9" if rare else "198.51.100.1",
                "personal_digest": "0" * 64,
                "prev_hash": "0" * 64,
                "entry_hash": f"{seq:064x}",
            }
        )
    with idp.app.app_context():
        db.session.execute(db.insert(AuditEntry), rows)
        db.session.commit()
    cases = {
        "ix_audit_entry_citizen_seq": Filters(citizen_id=1),
        "ix_audit_entry_client_seq": Filters(client_id="dept-rare"),
        "ix_audit_entry_event_seq": Filters(event="test.rare"),
        "ix_audit_entry_outcome_seq": Filters(outcome="failure"),
        "ix_audit_entry_ip_seq": Filters(ip="203.0.113.9"),
    }
    with idp.app.app_context():
        engine = db.engine
        postgres = engine.dialect.name == "postgresql"
        if postgres:
            db.session.execute(db.text("ANALYZE audit_entry"))
            db.session.commit()
        for index, filters in cases.items():
            statement, parameters = first_statement(
                engine, lambda f=filters: queries.page(f, before=1900)
            )
            # SQLite's dialect always writes an OFFSET: zero, never a count of skipped rows.
            assert "OFFSET" not in statement.upper() or list(parameters)[-1] == 0
            with engine.connect() as connection:
                prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
                plan = " ".join(
                    str(row[-1])
                    for row in connection.exec_driver_sql(prefix + statement, parameters)
                )
            assert index in plan, plan
            assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_a_sessions_whole_story_is_on_one_page(idp, auditor, make_citizen, make_client):
    citizen = make_citizen()
    other = make_citizen("other@example.com")
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    browser.authorize(client.authorization().url, citizen["email"], citizen["password"])
    CitizenBrowser(idp.issuer).authorize(
        client.authorization().url, other["email"], other["password"]
    )
    with idp.app.app_context():
        issued = db.session.scalars(
            db.select(AuditEntry).filter_by(
                event="authorization_code.issued", citizen_id=citizen["id"]
            )
        ).one()
        # The second factor replaced the password's session; its entry names that session.
        step_up = db.session.scalars(
            db.select(AuditEntry).filter(
                AuditEntry.session_ref == issued.session_ref,
                AuditEntry.citizen_id == citizen["id"],
            )
        ).all()
        password_session = next(
            e.details["previous_session"] for e in step_up if "previous_session" in e.details
        )
        sessions = (password_session, issued.session_ref)
        journey = db.session.scalars(
            db.select(AuditEntry.seq)
            .filter(AuditEntry.session_ref.in_(sessions))
            .order_by(AuditEntry.seq)
        ).all()
        others = db.session.scalars(
            db.select(AuditEntry.seq).filter_by(citizen_id=other["id"])
        ).all()

    record_page = listed(auditor, citizen=str(citizen["id"]), event="authorization_code.issued")
    story_url = f"/staff/audit/sessions/{issued.session_ref}"
    assert f'href="{story_url}"' in record_page.text
    story = auditor.get(story_url)
    from_the_start = auditor.get(f"/staff/audit/sessions/{password_session}")

    assert story.status_code == from_the_start.status_code == 200
    assert shown(story) == shown(from_the_start) == list(journey)  # oldest first
    assert not set(others) & set(shown(story))
    text = visible_text(story)
    for event in ("sign_in.succeeded", "authorization_code.issued", "consent.given"):
        assert event in text
    viewed = stored(idp, "audit.viewed")[-1]
    assert viewed.details["page"] == "session"
    assert viewed.details["sessions"] == list(sessions)
    assert auditor.get("/staff/audit/sessions/" + "0" * 32).status_code == 404
    assert auditor.get("/staff/audit/sessions/not-a-session").status_code == 404


def test_resolving_a_citizen_needs_a_reason_and_is_recorded(idp, auditor, make_citizen):
    citizen = make_citizen("resolve.me@example.com")
    seq = record(idp, "test.event", citizen_id=citizen["id"])
    page = listed(auditor, citizen=str(citizen["id"]))
    assert seq in shown(page)
    resolve_path = f"/staff/audit/citizens/{citizen['id']}/resolve"
    assert f'href="{resolve_path}"' in page.text
    assert citizen["email"] not in page.text

    form = auditor.get(resolve_path)
    assert form.status_code == 200 and citizen["email"] not in form.text
    for reason, message in (
        ("", "Give the reason you need this email address"),
        ("   because   ", "in at least 10 characters"),
        ("x" * 201, "at most 200 characters"),
    ):
        refused = auditor.submit(form, {"reason": reason})
        assert refused.status_code == 400
        assert any(message in item for item in error_summary(refused)), error_summary(refused)
        assert citizen["email"] not in refused.text
    assert stored(idp, "audit.citizen_resolved") == []

    shown_email = auditor.submit(form, {"reason": "Fraud case FR-2025-0042: suspicious logins"})

    assert shown_email.status_code == 200
    assert citizen["email"] in visible_text(shown_email)
    (resolved,) = stored(idp, "audit.citizen_resolved")
    assert resolved.reason == "Fraud case FR-2025-0042: suspicious logins"
    assert resolved.citizen_id == citizen["id"]
    assert resolved.details["found"] is True
    with idp.app.app_context():
        member = db.session.scalar(db.select(StaffMember).filter_by(email=AUDITOR))
    assert resolved.details["staff_id"] == member.id


def test_resolving_a_deleted_citizen_says_so(idp, auditor):
    record(idp, "test.event", citizen_id=987654)
    form = auditor.get("/staff/audit/citizens/987654/resolve")

    page = auditor.submit(form, {"reason": "Complaint reference C-118 about this account"})

    assert page.status_code == 200
    assert "no longer exists" in visible_text(page)
    assert stored(idp, "audit.citizen_resolved")[-1].details["found"] is False
    assert auditor.get("/staff/audit/citizens/99999999999999/resolve").status_code == 404


# -- Nothing changes, and nobody else reads -----------------------------------------------------


def test_every_post_needs_its_csrf_token(idp, auditor, make_citizen):
    citizen = make_citizen()
    record(idp, "test.event", citizen_id=citizen["id"])
    reason = {"reason": "Investigation INV-77 into this account"}
    path = f"/staff/audit/citizens/{citizen['id']}/resolve"

    for token in (None, "not-the-token"):
        data = reason if token is None else {**reason, "csrf_token": token}
        resolved = auditor.http.post(path, data=data)
        assert resolved.status_code == 400
        assert citizen["email"] not in resolved.text
        exported = auditor.http.post(
            "/staff/audit/export?format=csv", data={"csrf_token": token or ""}
        )
        assert exported.status_code == 400
        assert exported.headers["content-type"].startswith("text/html")

    assert stored(idp, "audit.citizen_resolved") == []
    assert stored(idp, "audit.exported") == []


def test_every_other_method_is_refused(idp, auditor):
    ref = "a" * 32
    for path in ("/staff/audit", "/staff/audit/charts", f"/staff/audit/sessions/{ref}"):
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert auditor.http.request(method, path).status_code == 405, (method, path)
    for method in ("PUT", "DELETE", "PATCH"):
        assert auditor.http.request(method, "/staff/audit/citizens/1/resolve").status_code == 405
    assert auditor.get("/staff/audit/export?format=csv").status_code == 405


def test_administrators_cannot_read_the_record(idp):
    record(idp, "test.secret", citizen_id=3, client_id="dept-a")
    platform = StaffBrowser(idp.issuer).signed_in(
        make_staff(idp.app, "platform@sign-in.example.gov.uk")
    )
    department = StaffBrowser(idp.issuer).signed_in(
        make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)
    )

    for browser in (platform, department):
        for path in (
            "/staff/audit",
            "/staff/audit/charts",
            "/staff/audit/sessions/" + "a" * 32,
            "/staff/audit/citizens/3/resolve",
        ):
            page = browser.get(path)
            assert page.status_code == 403, path
            assert SEPARATE_DUTY in visible_text(page)
            assert "test.secret" not in page.text and shown(page) == []
        assert "Audit record" not in visible_text(browser.get("/departments/", follow=True))
    assert stored(idp, "audit.viewed") == []


def test_citizens_departments_and_strangers_get_no_data(idp, make_citizen, make_client):
    record(idp, "test.secret", citizen_id=3, client_id="dept-a")
    citizen = make_citizen()
    client = make_client()
    browser = CitizenBrowser(idp.issuer)
    attempt = client.authorization()
    callback = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    tokens = client.token_request(callback.params["code"], attempt.code_verifier).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    anonymous = httpx.Client(base_url=idp.issuer)

    for path in ("/staff/audit", "/staff/audit/charts", "/staff/audit/sessions/" + "a" * 32):
        for response in (
            anonymous.get(path),
            browser.http.get(idp.url(path)),  # the citizen's IdP session cookie
            anonymous.get(path, headers=bearer),  # a department's access token
        ):
            assert response.status_code == 302
            assert redirects_to(response) == "/staff/sign-in"
            assert "test.secret" not in response.text
    for response in (
        anonymous.post("/staff/audit/export?format=csv"),
        anonymous.post("/staff/audit/export?format=csv", headers=bearer),
        browser.http.post(idp.url("/staff/audit/citizens/3/resolve"), data={"reason": "x" * 20}),
    ):
        assert response.status_code in (302, 400, 403)
        assert citizen["email"] not in response.text and "PK" not in response.text[:2]
    assert stored(idp, "audit.viewed") == []
    assert stored(idp, "audit.exported") == []


def test_the_password_alone_opens_no_auditor_page(idp):
    email = make_auditor(idp.app)
    browser = StaffBrowser(idp.issuer)
    browser.password_step(email)

    page = browser.get("/staff/audit?event=test")

    assert page.status_code == 302
    assert redirects_to(page) == "/staff/sign-in/second-factor"
    next_path = parse_qs(urlsplit(page.headers["location"]).query)["next"]
    assert next_path == ["/staff/audit?event=test"]


def test_an_auditor_changes_nothing(idp, auditor):
    client_id, _ = make_service(idp.app, None, "No department yet", approved=True)
    owned, _ = make_service(idp.app, PASSPORTS, "Renew your passport", approved=True)
    token = re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"',
        auditor.get("/staff/audit/citizens/1/resolve").text,
    ).group(1)

    home = auditor.get("/departments/")
    assert home.status_code == 302 and redirects_to(home) == "/staff/audit"
    for path in (
        "/departments/services/new",
        f"/departments/services/{client_id}",
        f"/departments/services/{owned}",
        "/admin/services",
        "/admin/initial-access-tokens",
    ):
        assert auditor.get(path).status_code == 403, path
    for path, data in (
        ("/departments/services/new", {"client_name": "Sneaky"}),
        (f"/departments/services/{client_id}", {"edit-client_name": "Renamed"}),
        (f"/departments/services/{client_id}/status", {"action-action": "disable"}),
        (f"/departments/services/{client_id}/secret", {}),
        (f"/departments/services/{client_id}/keys", {"keys-jwks_uri": "https://x.example"}),
        ("/admin/initial-access-tokens", {"description": "For me"}),
    ):
        response = auditor.http.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
        assert "Auditors read the audit record and change nothing" in visible_text(response)
    with idp.app.app_context():
        clients = db.session.scalars(db.select(Client).order_by(Client.id)).all()
        assert [(c.client_name, c.status) for c in clients] == [
            ("No department yet", "active"),
            ("Renew your passport", "active"),
        ]
    # Signing out still works.
    out = auditor.http.post("/staff/sign-out", data={"csrf_token": token, "action": "sign-out"})
    assert out.status_code == 303
    assert redirects_to(auditor.get("/staff/audit")) == "/staff/sign-in"


def test_staff_create_makes_an_auditor_without_a_department(tmp_path):
    env = migrated_env(tmp_path)
    run(env, "departments", "add", PASSPORTS)

    created = run(
        env,
        *("staff", "create", "--email", "Auditor@Example.gov.uk", "--role", "auditor"),
        *("--password", STAFF_PASSWORD),
    )
    with_department = run(
        env,
        *("staff", "create", "--email", "a2@example.gov.uk", "--role", "auditor"),
        *("--department", PASSPORTS, "--password", STAFF_PASSWORD),
        check=False,
    )

    assert "created auditor auditor@example.gov.uk" in created.stdout
    assert with_department.returncode != 0
    assert "only department administrators belong to a department" in with_department.stderr


def test_a_page_knows_its_neighbours(idp):
    made = [record(idp, "test.small", n=n) for n in range(5)]
    with idp.app.app_context():
        newest_two = queries.page(Filters(event="test.small"), size=2)
        middle = queries.page(Filters(event="test.small"), before=newest_two.older, size=2)
        oldest = queries.page(Filters(event="test.small"), before=middle.older, size=2)
        again = queries.page(Filters(event="test.small"), after=oldest.newer, size=2)
        future = queries.page(Filters(event="test.small", start=utcnow() + timedelta(days=1)))

    assert [e.seq for e in newest_two.entries] == [made[4], made[3]]
    assert (newest_two.newer, newest_two.older) == (None, made[3])
    assert [e.seq for e in middle.entries] == [made[2], made[1]]
    assert (middle.newer, middle.older) == (made[2], made[1])
    assert [e.seq for e in oldest.entries] == [made[0]]
    assert (oldest.newer, oldest.older) == (made[0], None)
    assert [e.seq for e in again.entries] == [made[2], made[1]]
    assert (future.entries, future.newer, future.older) == ([], None, None)


def test_a_time_range_reads_a_range_of_seq_first(idp):
    """A time range is narrowed to the seq of its first and last entries (two probes of the
    (time, seq) index) before the page is read; no entry in the range, no page query at all."""
    base = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [
        {
            "seq": seq,
            # Out of order on purpose (clocks of several instances): the bounds stay exact.
            "time": base + timedelta(hours=seq if seq != 5 else 20),
            "event": "test.timed",
            "outcome": "success",
            "instance": "test",
            "details": {},
            "personal_digest": "0" * 64,
            "prev_hash": "0" * 64,
            "entry_hash": f"{seq:064x}",
        }
        for seq in range(1, 31)
    ]
    with idp.app.app_context():
        db.session.execute(db.insert(AuditEntry), rows)
        db.session.commit()
        start, end = base + timedelta(hours=10), base + timedelta(hours=21)
        assert queries.seq_bounds(start, end) == (5, 20)
        found = queries.page(Filters(start=start, end=end), size=100)
        assert [e.seq for e in found.entries] == [20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 5]
        batches = list(queries.entry_batches(Filters(start=start, end=end), up_to=30, batch=4))
        assert [r.seq for batch in batches for r in batch] == [5, *range(10, 21)]
        later = base + timedelta(days=30)
        assert queries.seq_bounds(later, None) is None
        statements = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        sqlalchemy_event.listen(db.engine, "before_cursor_execute", capture)
        try:
            empty = queries.page(Filters(start=later))
        finally:
            sqlalchemy_event.remove(db.engine, "before_cursor_execute", capture)
        assert empty.entries == [] and empty.older is None and empty.newer is None
        assert len(statements) == 1 and "min(" in statements[0].lower(), statements


def test_a_department_filter_shows_every_service_it_runs(idp, auditor, make_client):
    from idp.departments.services import ensure_department

    with idp.app.app_context():
        hmrc = ensure_department("HM Revenue & Customs")
        dvla = ensure_department("Driver and Vehicle Licensing Agency")
        for client_id in ("tax", "tax-credits", "driving"):
            make_client(client_id, redirect_uri=f"https://{client_id}.example.gov.uk/cb")
        for client_id, department in (("tax", hmrc), ("tax-credits", hmrc), ("driving", dvla)):
            client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
            client.department_id = department.id
        db.session.commit()
    tax = record(idp, "test.sign_in", client_id="tax")
    driving = record(idp, "test.sign_in", client_id="driving")
    credits = record(idp, "test.sign_in", client_id="tax-credits")
    page = listed(auditor, department="HM Revenue & Customs")
    with idp.app.app_context():
        expected = db.session.scalars(
            db.select(AuditEntry.seq)
            .where(AuditEntry.client_id.in_(["tax", "tax-credits"]))
            .order_by(AuditEntry.seq.desc())
        ).all()
    assert shown(page) == expected  # registrations too: every event of the two services
    assert credits in expected and tax in expected and driving not in shown(page)
    assert 'option value="Driver and Vehicle Licensing Agency"' in page.text
    assert shown(listed(auditor, department="No such department")) == []


def test_each_entry_shows_the_software_version_beside_the_instance(idp, auditor):
    seq = record(idp, "test.versioned")

    page = listed(auditor, event="test.versioned")

    assert shown(page) == [seq]
    assert f"version: {audit.software_version()}" in page.text


# -- Dates the Design System's way, service names, words and UK times ---------------------------


def date_fields(name: str, day: date) -> dict[str, str]:
    """A date typed into the from (start) or to (end) date input."""
    return {
        f"{name}-day": str(day.day),
        f"{name}-month": str(day.month),
        f"{name}-year": str(day.year),
    }


def test_the_date_inputs_filter_by_days_on_a_uk_clock(idp, auditor):
    seq = record(idp, "test.dated", client_id="dept-a")
    today = uk_local(utcnow()).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)

    form = listed(auditor)
    for name in ("start", "end"):
        for part in ("day", "month", "year"):
            assert f'name="{name}-{part}"' in form.text
    # "To" a day includes the whole of it; "from" starts at its midnight.
    assert seq in shown(listed(auditor, **date_fields("start", today), **date_fields("end", today)))
    assert seq not in shown(listed(auditor, **date_fields("end", yesterday)))
    assert seq not in shown(listed(auditor, **date_fields("start", tomorrow)))
    # The dates stay in the form, and the next pages keep them.
    page = listed(auditor, event="test.dated", **date_fields("start", today))
    assert f'name="start-year" type="text" value="{today.year}"' in page.text
    export = re.search(r'<form method="post" action="(/staff/audit/export\?[^"]+)"', page.text)
    assert f"start-day={today.day}" in export.group(1)


def test_a_date_input_day_is_a_uk_day():
    # British Summer Time: 1 July starts at 23:00 UTC on 30 June; in winter at midnight UTC.
    assert _uk_midnight(date(2025, 7, 1)) == datetime(2025, 6, 30, 23, 0, tzinfo=UTC)
    assert _uk_midnight(date(2025, 1, 15)) == datetime(2025, 1, 15, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("params", "message", "field"),
    [
        ({"start-day": "3", "start-month": "4"}, "The from date must include a year", "start-year"),
        ({"end-year": "2025"}, "The to date must include a day and month", "end-day"),
        (
            {"start-day": "31", "start-month": "2", "start-year": "2025"},
            "The from date must be a real date",
            "start-day",
        ),
        (
            {"start-day": "x", "start-month": "2", "start-year": "2025"},
            "The from date must be a real date",
            "start-day",
        ),
        (
            {"end-day": "1", "end-month": "2", "end-year": "25"},
            "The to date's year must have 4 numbers",
            "end-year",
        ),
        (
            {"end-day": "1", "end-month": "2", "end-year": "1900"},
            "Enter a date between 1970 and 9998",
            "end-year",
        ),
        (
            {**date_fields("start", date(2025, 3, 2)), **date_fields("end", date(2025, 3, 1))},
            "The start of the time range must be before its end",
            "end-day",
        ),
    ],
)
def test_a_wrong_date_is_named_in_the_summary_and_beside_its_input(
    idp, auditor, params, message, field
):
    viewed_before = len(stored(idp, "audit.viewed"))

    page = listed(auditor, **params)

    assert page.status_code == 400
    assert error_summary(page) == [message]
    assert f'<a href="#{field}">' in page.text  # the summary links to the first wrong part
    assert error_beside(page.text, field.split("-")[0]) == message
    assert f'id="{field}"' in page.text and "govuk-input--error" in page.text
    assert page.text.count("<title>Error: ") == 1
    assert len(stored(idp, "audit.viewed")) == viewed_before


def test_entries_name_the_service_say_the_event_in_words_and_the_time_in_uk_time(idp, auditor):
    client_id, _ = make_service(idp.app, PASSPORTS, "Renew your passport", approved=True)
    seq = record(idp, "staff.signed_out", staff_id=1, client_id=client_id)
    unknown = record(idp, "test.event", client_id="no-longer-registered")
    with idp.app.app_context():
        moment = db.session.scalar(db.select(AuditEntry.time).filter_by(seq=seq))

    page = listed(auditor)

    row = entry_row(page, seq)
    assert "Renew your passport" in row and client_id not in row
    assert "A staff member signed out staff.signed_out" in row
    assert uk_datetime(moment) in row and "UTC" not in row
    assert "no-longer-registered (not registered now)" in entry_row(page, unknown)

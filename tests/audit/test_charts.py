"""Charts of the audit record: sign-ins per service, failures and lockouts over time, drawn on
the server as inline SVG (no script, no external resource, nothing the Content-Security-Policy
would block), labelled for screen readers and repeated as tables of numbers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest

from idp.audit import charts, queries
from idp.audit.charts import Series, bar_chart, line_chart, nice_ticks
from idp.dates import uk_local
from idp.models.timestamps import utcnow
from tests.audit.test_auditor_pages import (  # noqa: F401 - fixture
    auditor,
    record,
    record_uncatalogued,
    stored,
)
from tests.departments import error_summary, visible_text

pytestmark = pytest.mark.both_databases

SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def svgs(html: str) -> list[str]:
    """Every chart on a page (inline SVG; not the layout's own icons, such as the footer's
    crown)."""
    return [svg for svg in SVG.findall(html) if svg.startswith('<svg class="chart"')]


def assert_self_contained(svg: str) -> None:
    """No script, no link or reference to anything outside, no inline style."""
    lowered = svg.lower()
    for forbidden in ("<script", "http:", "https:", "href", "style=", "<style", "url(", "<image"):
        assert forbidden not in lowered, forbidden
    assert re.search(r"\son\w+=", lowered) is None  # no event handler attributes


def table_rows(html: str, caption: str) -> list[list[str]]:
    """The body rows of the table with this caption, as text cells."""
    table = re.split(rf"<caption[^>]*>{re.escape(caption)}", html, maxsplit=1)[1]
    body = table.split("</table>", 1)[0].split("<tbody", 1)[1]
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td.*?</td>", row, re.S)
        ]
        for row in re.findall(r"<tr\b.*?</tr>", body, re.S)
    ]


# -- Drawing (pure functions) -------------------------------------------------------------------


def test_ticks_are_round_numbers_up_to_at_least_the_maximum():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(1234)[-1] >= 1234 and len(nice_ticks(1234)) <= 7


def test_a_bar_chart_is_labelled_and_escapes_what_it_is_given():
    svg = bar_chart(
        "c1",
        'Sign-ins "today"',
        "Two services & more",
        [
            ("<script>alert(1)</script>", 5),
            ("A very long service name that will not fit beside", 2),
        ],
        value_axis="Sign-ins",
        label_axis="Service",
    )

    assert svg.startswith("<svg ") and 'role="img"' in svg
    assert 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Sign-ins &#34;today&#34;</title>' in svg
    assert '<desc id="c1-desc">Two services &amp; more</desc>' in svg
    assert "&lt;script&gt;" in svg and "<script" not in svg
    assert svg.count("<rect ") == 2
    assert ">Sign-ins</text>" in svg and ">Service</text>" in svg
    assert "…" in svg  # the long label is shortened (its bar's tooltip has it whole)
    assert "A very long service name that will not fit beside: 2" in svg
    assert_self_contained(svg)


def test_an_empty_bar_chart_says_so():
    svg = bar_chart("c2", "t", "d", [], value_axis="x", label_axis="y", empty="No sign-ins")
    assert "No sign-ins" in svg and "<rect" not in svg


def test_a_line_chart_draws_each_series_with_a_legend_and_labelled_axes():
    labels = [f"{h:02d}:00" for h in range(24)]
    svg = line_chart(
        "c3",
        "Failures",
        "Per hour",
        labels,
        [
            Series("Failures", [h % 5 for h in range(24)], "#d4351c"),
            Series("Lockouts", [0] * 24, "#000", "6 4"),
        ],
        x_axis="Time (UK), per hour",
        y_axis="Events",
    )

    assert svg.count("<polyline") == 2
    assert 'stroke-dasharray="6 4"' in svg  # told apart without colour
    assert ">Failures</text>" in svg and ">Lockouts</text>" in svg
    assert ">Time (UK), per hour</text>" in svg and ">Events</text>" in svg
    # At most 8 time labels, the first of them the first hour.
    assert 1 <= sum(f">{label}</text>" in svg for label in labels) <= 8
    assert ">00:00</text>" in svg
    assert_self_contained(svg)


# -- The charts page ---------------------------------------------------------------------------


def test_the_charts_count_sign_ins_per_service_and_failures_over_time(
    idp,
    auditor,  # noqa: F811
    monkeypatch,
):
    for _ in range(3):
        record(idp, "authorization_code.issued", client_id="dept-a", citizen_id=1)
    record(idp, "authorization_code.issued", client_id="dept-b", citizen_id=2)
    # Not an outcome the IdP records for it, but a sign-in only counts when it succeeded.
    record_uncatalogued(
        idp, monkeypatch, "authorization_code.issued", outcome="failure", client_id="dept-b"
    )
    record(idp, "sign_in.failed", outcome="failure", reason="wrong password", citizen_id=1)
    record(idp, "account.locked", outcome="failure", reason="too many wrong attempts (password)")
    record(idp, "account.locked", outcome="failure", reason="too many wrong attempts (password)")

    page = auditor.get("/staff/audit/charts")

    assert page.status_code == 200
    sign_ins_svg, failures_svg = svgs(page.text)
    for svg in (sign_ins_svg, failures_svg):
        assert_self_contained(svg)
        assert "<title" in svg and "<desc" in svg and 'role="img"' in svg
    assert sign_ins_svg.count("<rect ") == 2
    rows = table_rows(page.text, "Sign-ins per service")
    assert [(row[1], row[3]) for row in rows] == [("dept-a", "3"), ("dept-b", "1")]
    # The last 7 days by the day: today's bucket holds the failures (the failed code issue,
    # the wrong password, the two lockouts) and the lockouts.
    per_day = table_rows(page.text, "Failures and lockouts per day")
    assert len(per_day) == 8  # 7 days ago (part of it) up to today
    today = uk_local(utcnow()).strftime("%d %b %Y")
    assert [today, "4", "2"] in per_day
    assert sum(int(row[1]) for row in per_day) == 4
    assert "content-security-policy" in page.headers
    # The charts are drawn by the server: no script in the page's content (the layout's only
    # script is GOV.UK Frontend's).
    assert "<script" not in page.text.split("<main", 1)[1].split("</main>", 1)[0]
    assert stored(idp, "audit.viewed")[-1].details["page"] == "charts"


def test_a_short_range_is_charted_by_the_hour(idp, auditor):  # noqa: F811
    record(idp, "sign_in.failed", outcome="failure")
    now = utcnow()
    start = (now - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M")

    page = auditor.http.get("/staff/audit/charts", params={"start": start})

    assert page.status_code == 200
    per_hour = table_rows(page.text, "Failures and lockouts per hour")
    assert len(per_hour) == 6
    assert per_hour[-1][0] == uk_local(now).strftime("%d %b %H:00")
    assert per_hour[-1][1:] == ["1", "0"]
    assert "per hour" in visible_text(page)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2025-03-02", "end": "2025-03-01"}, "must be before its end"),
        ({"start": "not a date"}, "Enter a date as YYYY-MM-DD"),
        ({"start": "2023-01-01", "end": "2025-01-01"}, "at most 366 days"),
        ({"start": "2999-01-01"}, "must be in the past"),
        ({"end": "1969-06-30"}, "Enter a date between 1970 and 9998"),
    ],
)
def test_a_bad_range_gets_an_error_summary(idp, auditor, params, message):  # noqa: F811
    page = auditor.http.get("/staff/audit/charts", params=params)

    assert page.status_code == 400
    assert any(message in item for item in error_summary(page)), error_summary(page)
    assert svgs(page.text) == []


def test_time_labels_name_the_hour_or_the_day_on_a_uk_clock():
    moment = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)
    assert charts.time_label(moment, "hour") == "14 Mar 09:00"
    assert charts.time_label(moment, "day") == "14 Mar 2025"
    summer = datetime(2025, 7, 14, 23, 0, tzinfo=UTC)  # BST: midnight of the 15th
    assert charts.time_label(summer, "hour") == "15 Jul 00:00"
    assert charts.time_label(summer, "day") == "15 Jul 2025"


def test_days_are_uk_days_across_the_change_of_the_clocks():
    # The clocks went forward on 30 March 2025 (a 23-hour day) and back on 26 October.
    spring = queries.buckets(
        datetime(2025, 3, 29, 12, tzinfo=UTC), datetime(2025, 3, 31, 22, tzinfo=UTC), "day"
    )
    assert spring == [
        datetime(2025, 3, 29, 0, tzinfo=UTC),
        datetime(2025, 3, 30, 0, tzinfo=UTC),
        datetime(2025, 3, 30, 23, tzinfo=UTC),  # 31 March, midnight BST
    ]
    autumn = queries.buckets(
        datetime(2025, 10, 25, 12, tzinfo=UTC), datetime(2025, 10, 27, 12, tzinfo=UTC), "day"
    )
    assert autumn == [
        datetime(2025, 10, 24, 23, tzinfo=UTC),
        datetime(2025, 10, 25, 23, tzinfo=UTC),
        datetime(2025, 10, 27, 0, tzinfo=UTC),
    ]
    # An entry at 23:30 UTC on a summer day is counted on the next UK day.
    assert queries.truncate(datetime(2025, 7, 14, 23, 30, tzinfo=UTC), "day") == datetime(
        2025, 7, 14, 23, tzinfo=UTC
    )

"""Times as GOV.UK writes them, on a UK clock (idp/dates.py): GMT in winter, BST in summer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from idp.dates import uk_clock_time, uk_date, uk_datetime


@pytest.mark.parametrize(
    ("moment", "english", "welsh"),
    [
        # Winter: Greenwich Mean Time is UTC.
        (
            datetime(2026, 12, 6, 7, 42, tzinfo=UTC),
            "6 December 2026 at 7:42am",
            "6 Rhagfyr 2026 am 7:42yb",
        ),
        # Summer: British Summer Time is an hour ahead of UTC.
        (
            datetime(2026, 7, 1, 6, 42, tzinfo=UTC),
            "1 July 2026 at 7:42am",
            "1 Gorffennaf 2026 am 7:42yb",
        ),
        (
            datetime(2026, 3, 9, 15, 5, tzinfo=UTC),
            "9 March 2026 at 3:05pm",
            "9 Mawrth 2026 am 3:05yh",
        ),
        # Noon and midnight, and whole hours without ":00".
        (
            datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
            "15 January 2026 at 12pm",
            "15 Ionawr 2026 am 12yh",
        ),
        (
            datetime(2026, 1, 15, 0, 0, tzinfo=UTC),
            "15 January 2026 at 12am",
            "15 Ionawr 2026 am 12yb",
        ),
        (
            datetime(2026, 6, 14, 23, 0, tzinfo=UTC),
            "15 June 2026 at 12am",
            "15 Mehefin 2026 am 12yb",
        ),
        (
            datetime(2026, 6, 14, 11, 0, tzinfo=UTC),
            "14 June 2026 at 12pm",
            "14 Mehefin 2026 am 12yh",
        ),
        (
            datetime(2026, 2, 1, 9, 0, tzinfo=UTC),
            "1 February 2026 at 9am",
            "1 Chwefror 2026 am 9yb",
        ),
        (
            datetime(2026, 2, 1, 12, 30, tzinfo=UTC),
            "1 February 2026 at 12:30pm",
            "1 Chwefror 2026 am 12:30yh",
        ),
    ],
)
def test_times_are_written_the_gov_uk_way_in_uk_time(moment, english, welsh):
    assert uk_datetime(moment) == english
    assert uk_datetime(moment, "cy") == welsh


def test_the_clocks_change_on_the_last_sundays_of_march_and_october():
    # 29 March 2026: at 1am GMT the clocks go forward to 2am BST.
    assert uk_clock_time(datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == "12:59am"
    assert uk_clock_time(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "2am"
    # 25 October 2026: at 2am BST the clocks go back to 1am GMT.
    assert uk_clock_time(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == "1:30am"
    assert uk_clock_time(datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == "1:30am"


def test_any_zone_and_naive_utc_are_converted():
    new_york = timezone(timedelta(hours=-5))
    assert uk_datetime(datetime(2026, 12, 6, 2, 42, tzinfo=new_york)) == "6 December 2026 at 7:42am"
    assert uk_datetime(datetime(2026, 12, 6, 7, 42)) == "6 December 2026 at 7:42am"
    assert uk_datetime(None) == ""


def test_an_unknown_language_is_written_in_english():
    assert uk_date(datetime(2026, 12, 6, tzinfo=UTC), "fr") == "6 December 2026"

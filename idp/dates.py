"""Dates and times as GOV.UK writes them, in UK time: "6 December 2026 at 7:42am", "9am",
"12pm" for noon and "12am" for midnight; in Welsh "6 Rhagfyr 2026 am 7:42yb".

Every stored time is UTC (idp/models/timestamps.py); a citizen reads the time on the clock
on their wall, Greenwich Mean Time in winter and British Summer Time in summer, so the
conversion goes through the Europe/London zone rules (zoneinfo, the IANA database) rather
than a fixed offset. Month names come from the Unicode CLDR through Babel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from babel.dates import get_month_names

UK = "Europe/London"

# How each language joins a date and a time, and writes the two halves of the day (GOV.UK
# style: "am"/"pm" straight after the number; Welsh "yb" (y bore) and "yh" (yr hwyr)).
WORDS = {
    "en": {"at": "{date} at {time}", "am": "am", "pm": "pm"},
    "cy": {"at": "{date} am {time}", "am": "yb", "pm": "yh"},
}


def _zone() -> ZoneInfo:
    # ZoneInfo keeps each zone it has read: cheap to call every time.
    return ZoneInfo(UK)


def uk_local(moment: datetime) -> datetime:
    """The moment on a UK clock; a naive datetime is taken to be UTC, as stored."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(_zone())


def _words(language: str) -> dict[str, str]:
    return WORDS.get(language, WORDS["en"])


def uk_date(moment: datetime, language: str = "en") -> str:
    """ "6 December 2026" (no leading zero, the month in words), in UK time."""
    local = uk_local(moment)
    months = get_month_names("wide", locale=language if language in WORDS else "en")
    return f"{local.day} {months[local.month]} {local.year}"


def uk_clock_time(moment: datetime, language: str = "en") -> str:
    """ "7:42am", "9am", "12pm" (noon), "12am" (midnight): the 12-hour clock, minutes only
    when there are some, as GOV.UK's style guide writes times."""
    local = uk_local(moment)
    words = _words(language)
    hour = local.hour % 12 or 12
    half = words["am"] if local.hour < 12 else words["pm"]
    minutes = f":{local.minute:02d}" if local.minute else ""
    return f"{hour}{minutes}{half}"


def uk_datetime(moment: datetime | None, language: str = "en") -> str:
    """ "6 December 2026 at 7:42am" in UK time; an empty string for no time at all."""
    if moment is None:
        return ""
    return _words(language)["at"].format(
        date=uk_date(moment, language), time=uk_clock_time(moment, language)
    )

"""Charts of the audit record, drawn on the server as inline SVG: no JavaScript, no external
resources, no style attributes (the Content-Security-Policy allows none), only presentation
attributes. Each chart has a <title> and <desc> for screen readers and labelled axes; the page
also shows the numbers as a table. Pure functions: numbers in, markup out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from idp.dates import uk_local

WIDTH = 720
FONT = 'font-family="Arial, Helvetica, sans-serif"'
TEXT_COLOUR = "#0b0c0c"
GRID_COLOUR = "#b1b4b6"
BAR_COLOUR = "#1d70b8"
FAILURE_COLOUR = "#d4351c"
LOCKOUT_COLOUR = "#0b0c0c"
LABEL_CHARACTERS = 32
# At most this many labels along the time axis (every nth bucket is labelled).
TIME_LABELS = 8


@dataclass(frozen=True)
class Series:
    """One line of a line chart: told apart by its dashes as well as its colour."""

    name: str
    values: Sequence[int]
    colour: str
    dashes: str | None = None


def nice_ticks(maximum: int, count: int = 5) -> list[int]:
    """Round tick values from 0 to at least maximum (steps of 1, 2 or 5 times a power of ten)."""
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    magnitude = 1
    while magnitude * 10 <= raw:
        magnitude *= 10
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    top = -(-maximum // step) * step
    return list(range(0, top + 1, step))


def _text(x: float, y: float, content: str, *, anchor: str = "start", size: int = 13, **extra):
    """A <text> element, its content escaped."""
    attributes = "".join(
        f' {name.replace("_", "-")}="{escape(value)}"' for name, value in extra.items()
    )
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" {FONT} '
        f'fill="{TEXT_COLOUR}"{attributes}>{escape(content)}</text>'
    )


def _open_svg(chart_id: str, height: float, title: str, description: str) -> list[str]:
    """The <svg> start tag (labelled by its title and description), title and desc."""
    chart_id = escape(chart_id)
    return [
        f'<svg class="chart" id="{chart_id}" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _shorten(label: str) -> str:
    """A label that fits beside its bar (the table beside the chart has it in full)."""
    return label if len(label) <= LABEL_CHARACTERS else label[: LABEL_CHARACTERS - 1] + "…"


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[tuple[str, int]],
    *,
    value_axis: str,
    label_axis: str,
    empty: str = "Nothing to show in this range",
) -> Markup:
    """A horizontal bar chart: one labelled bar per (label, value), the value at its end."""
    left, right, top, row = 250, 60, 30, 28
    bottom = top + max(len(bars), 1) * row
    height = bottom + 55
    span = WIDTH - left - right
    ticks = nice_ticks(max((value for _, value in bars), default=0))
    scale = span / ticks[-1]
    parts = _open_svg(chart_id, height, title, description)
    parts += _value_axis_lines(ticks, left, scale, top, bottom)
    for index, (label, value) in enumerate(bars):
        y = top + index * row
        width = value * scale
        parts.append(_text(left - 8, y + row / 2 + 4, _shorten(label), anchor="end"))
        parts.append(
            f'<rect x="{left}" y="{y + 4:.1f}" width="{width:.1f}" height="{row - 8}" '
            f'fill="{BAR_COLOUR}"><title>{escape(label)}: {value}</title></rect>'
        )
        parts.append(_text(left + width + 6, y + row / 2 + 4, str(value)))
    if not bars:
        parts.append(_text(left + span / 2, top + row / 2 + 4, empty, anchor="middle"))
    parts.append(_text(left + span / 2, height - 10, value_axis, anchor="middle", size=14))
    parts.append(
        _text(
            14,
            (top + bottom) / 2,
            label_axis,
            anchor="middle",
            size=14,
            transform=f"rotate(-90 14 {(top + bottom) / 2:.1f})",
        )
    )
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text and attribute above is escaped


def _value_axis_lines(ticks: list[int], left: float, scale: float, top: float, bottom: float):
    """Vertical grid lines and their labels along the bottom of a bar chart."""
    lines = []
    for tick in ticks:
        x = left + tick * scale
        lines.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        lines.append(_text(x, bottom + 18, str(tick), anchor="middle", size=12))
    return lines


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    x_axis: str,
    y_axis: str,
) -> Markup:
    """A line chart over evenly spaced labels (times), one line per series, with a legend."""
    left, right, top, bottom = 60, 50, 40, 250
    height = bottom + 60
    span = WIDTH - left - right
    ticks = nice_ticks(max((max(s.values, default=0) for s in series), default=0))
    y_scale = (bottom - top) / ticks[-1]
    step = span / max(len(labels) - 1, 1)
    parts = _open_svg(chart_id, height, title, description)
    for tick in ticks:
        y = bottom - tick * y_scale
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" '
            f'stroke="{GRID_COLOUR}" stroke-width="1"/>'
        )
        parts.append(_text(left - 6, y + 4, str(tick), anchor="end", size=12))
    every = max(1, -(-len(labels) // TIME_LABELS))
    for index in range(0, len(labels), every):
        x = left + index * step
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" '
            f'stroke="{TEXT_COLOUR}" stroke-width="1"/>'
        )
        parts.append(_text(x, bottom + 20, labels[index], anchor="middle", size=12))
    for number, line in enumerate(series):
        parts += _series(line, left, step, bottom, y_scale, markers=len(labels) <= 60)
        parts += _legend_item(line, left + number * 200, 16)
    parts.append(
        f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - right}" y2="{bottom}" '
        f'stroke="{TEXT_COLOUR}" stroke-width="1"/>'
    )
    parts.append(_text(left + span / 2, height - 10, x_axis, anchor="middle", size=14))
    middle = (top + bottom) / 2
    parts.append(
        _text(14, middle, y_axis, anchor="middle", size=14, transform=f"rotate(-90 14 {middle})")
    )
    parts.append("</svg>")
    return Markup("\n".join(parts))  # noqa: S704 - every text and attribute above is escaped


def _series(
    line: Series, left: float, step: float, bottom: float, y_scale: float, *, markers: bool
) -> list[str]:
    """One series as a polyline (and a dot per point when there are few)."""
    points = [(left + i * step, bottom - value * y_scale) for i, value in enumerate(line.values)]
    dashes = f' stroke-dasharray="{escape(line.dashes)}"' if line.dashes else ""
    parts = [
        f'<polyline fill="none" stroke="{escape(line.colour)}" stroke-width="2"{dashes} '
        f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'
    ]
    if markers:
        parts += [
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{escape(line.colour)}"/>'
            for x, y in points
        ]
    return parts


def _legend_item(line: Series, x: float, y: float) -> list[str]:
    """A sample of the line and its name."""
    dashes = f' stroke-dasharray="{escape(line.dashes)}"' if line.dashes else ""
    return [
        f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 30:.1f}" y2="{y:.1f}" '
        f'stroke="{escape(line.colour)}" stroke-width="2"{dashes}/>',
        _text(x + 36, y + 4, line.name),
    ]


# -- The auditor page's two charts ---------------------------------------------------------------


def time_label(moment: datetime, unit: str) -> str:
    """How a bucket is labelled, on a UK clock: "14 Mar 09:00" by the hour, "14 Mar 2025" by
    the day."""
    return uk_local(moment).strftime("%d %b %H:%M" if unit == "hour" else "%d %b %Y")


def sign_ins_chart(bars: Sequence[tuple[str, int]], period: str) -> Markup:
    """Sign-ins per service over the period, most first."""
    total = sum(value for _, value in bars)
    return bar_chart(
        "sign-ins-chart",
        f"Sign-ins per service, {period}",
        f"A bar for each service that citizens signed in to: {total} sign-ins in all, "
        f"{len(bars)} services. The table below gives the same numbers.",
        bars,
        value_axis="Sign-ins (authorization codes issued)",
        label_axis="Service",
        empty="No sign-ins in this range",
    )


def failures_chart(points: Sequence[tuple[datetime, int, int]], unit: str, period: str) -> Markup:
    """Failures and lockouts per hour or day over the period."""
    failures = [f for _, f, _ in points]
    lockouts = [lo for _, _, lo in points]
    return line_chart(
        "failures-chart",
        f"Failures and lockouts per {unit}, {period}",
        f"Two lines over time, one point per {unit}: failed events ({sum(failures)} in all, "
        f"at most {max(failures, default=0)} in one {unit}) and lockouts ({sum(lockouts)} in "
        "all). The table below gives the same numbers.",
        [time_label(moment, unit) for moment, _, _ in points],
        [
            Series("Failures", failures, FAILURE_COLOUR),
            Series("Lockouts", lockouts, LOCKOUT_COLOUR, dashes="6 4"),
        ],
        x_axis=f"Time (UK), per {unit}",
        y_axis="Events",
    )

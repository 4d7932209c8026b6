"""The forms of the identity check (Flask-WTF), one question per page: which document, the
passport's details, the driving licence's details, the address, and each knowledge question.

Dates are the GOV.UK Design System's date input: day, month and year fields, checked together
(DateParts), one message for the date, on its first part in error, so the error summary links
to it and the page marks the parts in error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import pgettext
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, SubmitField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, Regexp

from idp import clock

NAME_PATTERN = re.compile(r"^[^\W\d_]+(?:[ '’.-]+[^\W\d_]+)*\.?$")
# DVLA's driving licence number: 5 of the surname (9s to fill), 6 digits of the birth date,
# 2 initials (9 to fill), a digit, 2 check letters or digits.
LICENCE_PATTERN = re.compile(r"^[A-Z9]{5}\d{6}[A-Z9]{2}\d[A-Z\d]{2}$")
POSTCODE_PATTERN = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$")
# A month may be typed as a word ("Jan", "July"): the Design System accepts it.
MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _upper_no_spaces(value):
    return re.sub(r"\s+", "", value).upper() if isinstance(value, str) else value


def _postcode(value):
    if not isinstance(value, str):
        return value
    compact = re.sub(r"\s+", "", value).upper()
    return f"{compact[:-3]} {compact[-3:]}" if len(compact) > 3 else compact


def name_field(label, empty, invalid, too_long, hint=None):
    return StringField(
        label,
        filters=[_strip],
        validators=[
            DataRequired(empty),
            Length(max=100, message=too_long),
            Regexp(NAME_PATTERN, message=invalid),
        ],
        description=hint,
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )


def date_part(label, autocomplete=None):
    return StringField(
        label,
        filters=[_strip],
        render_kw={"inputmode": "numeric", "autocomplete": autocomplete}
        if autocomplete
        else {"inputmode": "numeric"},
    )


@dataclass(frozen=True)
class DateParts:
    """One date input of a form: its field name prefix and its messages."""

    name: str
    # The date's name as the messages start with it ("Date of birth must be a real date"),
    # translated in its own context: Welsh puts it mid-sentence ("Rhaid i'r dyddiad geni ...").
    what: Callable[[], str]
    empty: str
    past: bool = False  # True: must be in the past

    def fields(self, form):
        return [getattr(form, f"{self.name}_{part}") for part in ("day", "month", "year")]


def _check_date(form, parts: DateParts) -> tuple[str | None, list[str], date | None]:
    """(message, parts in error, the date) for one date input."""
    day, month, year = (f.data or "" for f in parts.fields(form))
    missing = [name for name, v in (("day", day), ("month", month), ("year", year)) if not v]
    everything = ["day", "month", "year"]
    if len(missing) == 3:
        return str(parts.empty), everything, None
    what = parts.what()
    if missing:
        words = {"day": _("a day"), "month": _("a month"), "year": _("a year")}
        if len(missing) == 1:
            message = _("%(what)s must include %(part)s", what=what, part=words[missing[0]])
        else:
            message = _(
                "%(what)s must include %(first)s and %(second)s",
                what=what,
                first=words[missing[0]],
                second=words[missing[1]],
            )
        return message, missing, None
    month_number = MONTHS.get(month[:3].lower()) if not month.isdigit() else None
    if not day.isdigit() or not (month.isdigit() or month_number) or not year.isdigit():
        return _("%(what)s must be a real date", what=what), everything, None
    if len(year) != 4:
        return _("Year must include 4 numbers"), ["year"], None
    try:
        value = date(int(year), month_number or int(month), int(day))
    except (ValueError, OverflowError):  # OverflowError: a day or month of many digits
        return _("%(what)s must be a real date", what=what), everything, None
    if parts.past and value >= clock.now().date():
        return _("%(what)s must be in the past", what=what), everything, None
    if value.year < 1900:
        return _("%(what)s must be after 1900", what=what), ["year"], None
    return None, [], value


class DatesForm(FlaskForm):
    """A form with date inputs (DATES); after validate(), `dates` holds each date and
    `date_errors` the parts in error of each."""

    DATES: tuple[DateParts, ...] = ()

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.dates: dict[str, date] = {}
        self.date_errors: dict[str, list[str]] = {}
        for parts in self.DATES:
            message, in_error, value = _check_date(self, parts)
            if message:
                first = getattr(self, f"{parts.name}_{in_error[0]}")
                first.errors = [*first.errors, message]
                self.date_errors[parts.name] = in_error
                ok = False
            else:
                self.dates[parts.name] = value
        return ok

    def parts_in_error(self, name: str) -> list[str]:
        return getattr(self, "date_errors", {}).get(name, [])


# -- The pages' forms -------------------------------------------------------------------------


CHOOSE_DOCUMENT = _l("Select if you have a UK passport, a UK photocard driving licence or neither")
DOCUMENT_CHOICES = ("passport", "driving_licence", "neither")


class DocumentForm(FlaskForm):
    """Which identity document the citizen has."""

    document = RadioField(
        _l("Do you have a UK passport or a UK photocard driving licence?"),
        choices=[
            SelectChoice("passport", _l("UK passport")),
            SelectChoice("driving_licence", _l("UK photocard driving licence")),
            SelectChoice("neither", _l("I do not have either of these")),
        ],
        validators=[InputRequired(CHOOSE_DOCUMENT), AnyOf(DOCUMENT_CHOICES, CHOOSE_DOCUMENT)],
        validate_choice=False,
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


def _birth_date():
    return (
        date_part(_l("Day"), "bday-day"),
        date_part(_l("Month"), "bday-month"),
        date_part(_l("Year"), "bday-year"),
    )


def _expiry() -> str:
    return pgettext("in a sentence", "Expiry date")


BIRTH_DATE = DateParts(
    "birth",
    lambda: pgettext("in a sentence", "Date of birth"),
    _l("Enter your date of birth"),
    past=True,
)


class PassportForm(DatesForm):
    """The passport's details, as printed on it."""

    DATES = (
        BIRTH_DATE,
        DateParts("expiry", _expiry, _l("Enter the expiry date of your passport")),
    )

    surname = name_field(
        _l("Surname"),
        _l("Enter your surname as it appears on your passport"),
        _l("Surname must only include letters, spaces, hyphens and apostrophes"),
        _l("Surname must be 100 characters or fewer"),
    )
    given_names = name_field(
        _l("Given names"),
        _l("Enter your given names as they appear on your passport"),
        _l("Given names must only include letters, spaces, hyphens and apostrophes"),
        _l("Given names must be 100 characters or fewer"),
        hint=_l("Include any middle names, as on your passport"),
    )
    birth_day, birth_month, birth_year = _birth_date()
    passport_number = StringField(
        _l("Passport number"),
        filters=[_upper_no_spaces],
        validators=[
            DataRequired(_l("Enter your passport number")),
            Regexp(r"^\d*$", message=_l("Passport number must only include numbers")),
            Length(min=9, max=9, message=_l("Passport number must be 9 numbers long")),
        ],
        description=_l("For example, 123456789"),
        render_kw={"autocomplete": "off", "spellcheck": "false", "inputmode": "numeric"},
    )
    expiry_day = date_part(_l("Day"))
    expiry_month = date_part(_l("Month"))
    expiry_year = date_part(_l("Year"))
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class DrivingLicenceForm(DatesForm):
    """The photocard driving licence's details, as printed on it."""

    DATES = (
        BIRTH_DATE,
        DateParts(
            "issue",
            lambda: pgettext("in a sentence", "Issue date"),
            _l("Enter the issue date of your driving licence"),
            past=True,
        ),
        DateParts("expiry", _expiry, _l("Enter the expiry date of your driving licence")),
    )

    surname = name_field(
        _l("Surname"),
        _l("Enter your surname as it appears on your driving licence"),
        _l("Surname must only include letters, spaces, hyphens and apostrophes"),
        _l("Surname must be 100 characters or fewer"),
    )
    given_names = name_field(
        _l("Given names"),
        _l("Enter your given names as they appear on your driving licence"),
        _l("Given names must only include letters, spaces, hyphens and apostrophes"),
        _l("Given names must be 100 characters or fewer"),
        hint=_l("Include any middle names, as on your licence (section 2)"),
    )
    birth_day, birth_month, birth_year = _birth_date()
    licence_number = StringField(
        _l("Driving licence number"),
        filters=[_upper_no_spaces],
        validators=[
            DataRequired(_l("Enter your driving licence number")),
            Length(min=16, max=16, message=_l("Driving licence number must be 16 characters long")),
            Regexp(
                LICENCE_PATTERN,
                message=_l(
                    "Enter your driving licence number as it appears on your licence, "
                    "like MORGA753116SM9IJ"
                ),
            ),
        ],
        description=_l("Section 5 of your licence, for example MORGA753116SM9IJ"),
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    issue_day = date_part(_l("Day"))
    issue_month = date_part(_l("Month"))
    issue_year = date_part(_l("Year"))
    expiry_day = date_part(_l("Day"))
    expiry_month = date_part(_l("Month"))
    expiry_year = date_part(_l("Year"))
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class AddressForm(FlaskForm):
    """The citizen's current address."""

    building = StringField(
        _l("Building number or name"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter the building number or name")),
            Length(max=100, message=_l("Building number or name must be 100 characters or fewer")),
        ],
        render_kw={"autocomplete": "address-line1"},
    )
    street = StringField(
        _l("Street"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter the street")),
            Length(max=100, message=_l("Street must be 100 characters or fewer")),
        ],
        render_kw={"autocomplete": "address-line2"},
    )
    town = StringField(
        _l("Town or city"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Enter the town or city")),
            Length(max=100, message=_l("Town or city must be 100 characters or fewer")),
        ],
        render_kw={"autocomplete": "address-level2"},
    )
    postcode = StringField(
        _l("Postcode"),
        filters=[_postcode],
        validators=[
            DataRequired(_l("Enter the postcode")),
            Regexp(
                POSTCODE_PATTERN,
                message=_l("Enter a full UK postcode, like BA2 5AA"),
            ),
        ],
        render_kw={"autocomplete": "postal-code", "spellcheck": "false"},
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))


class QuestionForm(FlaskForm):
    """One knowledge-based question: its choices are set by the page."""

    question = HiddenField()
    answer = RadioField(
        "",
        choices=[],
        validators=[InputRequired(_l("Select an answer"))],
        validate_choice=False,  # the page checks the answer is one of the question's choices
    )
    journey = HiddenField()
    submit = SubmitField(_l("Continue"))

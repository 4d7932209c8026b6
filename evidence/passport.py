"""The passport check: is there a passport with this number, for this person, still valid?

Scores as One Login's passport credential issuer gives them: a passport is strength 4; a
passport found and matching is validity 2; otherwise validity 0 with a contra-indicator."""

from __future__ import annotations

import datetime

from evidence.credentials import Evidence
from evidence.records import load, person_of
from evidence.subject import InvalidRequest, compact, date, only_item, parse_person, text

REGISTER = "passports.json"
STRENGTH = 4
# Contra-indicators: no passport matches what was typed; the passport has expired.
CI_NO_MATCH = "D02"
CI_EXPIRED = "D14"
CHECK = {"checkMethod": "data"}


def check(subject: dict, today: datetime.date) -> tuple[dict, Evidence]:
    """The credentialSubject and evidence for the details typed in subject."""
    person = parse_person(subject)
    typed = only_item(subject, "passport", "subject.passport")
    number = compact(text(typed, "documentNumber", "subject.passport[0].documentNumber"))
    expiry = date(typed, "expiryDate", "subject.passport[0].expiryDate")
    if not number.isdigit() or len(number) != 9:
        raise InvalidRequest(
            "subject.passport[0].documentNumber must be the 9 digits of a UK passport"
        )
    claimed = {"name": person.name_claim(), "birthDate": person.birth_date_claim()}
    record = find(number)
    typed_passport = {"documentNumber": number, "expiryDate": expiry}
    if record is None or person_of(record, REGISTER) != person:
        return _failed(claimed, typed_passport, CI_NO_MATCH)
    passport = record["passport"][0]
    if passport["expiryDate"] != expiry:
        return _failed(claimed, typed_passport, CI_NO_MATCH)
    if datetime.date.fromisoformat(expiry) < today:
        return _failed(claimed, passport, CI_EXPIRED)
    claimed["passport"] = [dict(passport)]
    return claimed, Evidence(
        scores={"strengthScore": STRENGTH, "validityScore": 2}, check_details=[CHECK]
    )


def find(number: str) -> dict | None:
    """The register entry for a passport number."""
    for record in load(REGISTER)["passports"]:
        if compact(record["passport"][0]["documentNumber"]) == compact(number):
            return record
    return None


def _failed(claimed: dict, passport: dict, ci: str) -> tuple[dict, Evidence]:
    """A failed check: what was typed, validity 0 and the contra-indicator."""
    claimed["passport"] = [
        {
            "documentNumber": passport["documentNumber"],
            "icaoIssuerCode": passport.get("icaoIssuerCode", "GBR"),
            "expiryDate": passport["expiryDate"],
        }
    ]
    return claimed, Evidence(
        scores={"strengthScore": STRENGTH, "validityScore": 0},
        ci=[ci],
        failed_check_details=[CHECK],
    )

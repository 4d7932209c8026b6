"""The driving licence check: is there a photocard licence with this number, for this person,
still valid, as the driving licence register (DVLA) holds it?

Scores as One Login's driving licence credential issuer gives them: a photocard licence is
strength 3; found and matching is validity 2; otherwise validity 0 with a contra-indicator."""

from __future__ import annotations

import datetime
import re

from evidence.credentials import Evidence
from evidence.records import load, person_of
from evidence.subject import InvalidRequest, compact, date, only_item, parse_person, text

REGISTER = "driving_licences.json"
STRENGTH = 3
CI_NO_MATCH = "D02"
CI_EXPIRED = "D14"
# A GB licence number: 5 letters of the surname (9s pad), 6 digits from the birth date, 2
# initials (9 pads), a digit and 2 check characters.
LICENCE_NUMBER = re.compile(r"[A-Z9]{5}\d{6}[A-Z9]{2}\d[A-Z0-9]{2}")


def check(subject: dict, today: datetime.date) -> tuple[dict, Evidence]:
    """The credentialSubject and evidence for the details typed in subject."""
    person = parse_person(subject)
    typed = only_item(subject, "drivingPermit", "subject.drivingPermit")
    where = "subject.drivingPermit[0]"
    number = compact(text(typed, "personalNumber", f"{where}.personalNumber"))
    if not LICENCE_NUMBER.fullmatch(number):
        raise InvalidRequest(
            f"{where}.personalNumber must be the 16 characters of a GB licence number "
            "(field 5 on the photocard)"
        )
    expiry = date(typed, "expiryDate", f"{where}.expiryDate")
    issued = date(typed, "issueDate", f"{where}.issueDate", required=False)
    issued_by = text(typed, "issuedBy", f"{where}.issuedBy", required=False)
    claimed = {"name": person.name_claim(), "birthDate": person.birth_date_claim()}
    typed_permit = {"personalNumber": number, "expiryDate": expiry}
    if issued:
        typed_permit["issueDate"] = issued
    record = find(number)
    if record is None or person_of(record, REGISTER) != person:
        return _failed(claimed, typed_permit, CI_NO_MATCH)
    permit = record["drivingPermit"][0]
    if (
        permit["expiryDate"] != expiry
        or (issued and permit["issueDate"] != issued)
        or (issued_by and issued_by.upper() != permit["issuedBy"])
    ):
        return _failed(claimed, typed_permit, CI_NO_MATCH)
    if datetime.date.fromisoformat(expiry) < today:
        return _failed(claimed, dict(permit), CI_EXPIRED)
    claimed["drivingPermit"] = [dict(permit)]
    return claimed, Evidence(
        scores={"strengthScore": STRENGTH, "validityScore": 2},
        check_details=[_check_detail(permit)],
    )


def find(number: str) -> dict | None:
    """The register entry for a licence number."""
    for record in load(REGISTER)["drivingPermits"]:
        if record["drivingPermit"][0]["personalNumber"] == number:
            return record
    return None


def _check_detail(permit: dict) -> dict:
    """What was checked, as One Login's driving licence credential issuer says it."""
    detail = {"checkMethod": "data", "identityCheckPolicy": "published"}
    if permit.get("issueDate"):
        detail["activityFrom"] = permit["issueDate"]
    return detail


def _failed(claimed: dict, permit: dict, ci: str) -> tuple[dict, Evidence]:
    """A failed check: validity 0 and the contra-indicator."""
    claimed["drivingPermit"] = [permit]
    return claimed, Evidence(
        scores={"strengthScore": STRENGTH, "validityScore": 0},
        ci=[ci],
        failed_check_details=[{"checkMethod": "data", "identityCheckPolicy": "published"}],
    )

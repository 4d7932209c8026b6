"""The address check with the fraud checks: does the credit reference agency know this person
at this address, and do the fraud databases find anything against them?

Scores as One Login's fraud credential issuer gives them: identityFraudScore 2 when the person
is found at the address and no fraud check fails; 0 when not found, or with a
contra-indicator (F03: a fraud check failed) when one does."""

from __future__ import annotations

import datetime

from evidence.credentials import Evidence
from evidence.records import load, person_of
from evidence.subject import InvalidRequest, compact, date, normalise, only_item, parse_person, text

REGISTER = "addresses.json"
# One Login's address fields (https://vocab.account.gov.uk/v1/address).
ADDRESS_FIELDS = (
    "uprn",
    "organisationName",
    "departmentName",
    "subBuildingName",
    "buildingNumber",
    "buildingName",
    "dependentStreetName",
    "streetName",
    "doubleDependentAddressLocality",
    "dependentAddressLocality",
    "addressLocality",
    "postalCode",
    "addressCountry",
    "validFrom",
    "validUntil",
)
DATE_FIELDS = ("validFrom", "validUntil")
FRAUD_CHECKS = (
    "mortality_check",
    "identity_theft_check",
    "synthetic_identity_check",
    "impersonation_risk_check",
)
RECORD_CHECK = {"checkMethod": "data", "dataCheck": "record_check"}


def parse_address(subject: dict) -> dict:
    """subject.address[0] with One Login's field names; a postcode and a building number or
    name at least."""
    typed = only_item(subject, "address", "subject.address")
    where = "subject.address[0]"
    for key in typed:
        if key not in ADDRESS_FIELDS:
            raise InvalidRequest(
                f"{where}.{str(key)[:40]} is not an address field (use One Login's names: "
                + ", ".join(ADDRESS_FIELDS)
                + ")"
            )
    address = {}
    for key in ADDRESS_FIELDS:
        if key in DATE_FIELDS:
            value = date(typed, key, f"{where}.{key}", required=False)
        else:
            value = text(typed, key, f"{where}.{key}", required=key == "postalCode")
        if value:
            address[key] = value
    if "buildingNumber" not in address and "buildingName" not in address:
        raise InvalidRequest(f"{where} needs a buildingNumber or a buildingName")
    address.setdefault("addressCountry", "GB")
    return address


def same_address(typed: dict, known: dict) -> bool:
    """Whether typed is known: the same postcode and building number (or name)."""
    if compact(typed["postalCode"]) != compact(known["postalCode"]):
        return False
    return any(
        key in typed and key in known and normalise(typed[key]) == normalise(known[key])
        for key in ("buildingNumber", "buildingName")
    )


def check(subject: dict, today: datetime.date) -> tuple[dict, Evidence]:
    """The credentialSubject and evidence for the details typed in subject."""
    person = parse_person(subject)
    typed = parse_address(subject)
    claimed = {"name": person.name_claim(), "birthDate": person.birth_date_claim()}
    resident = find(person, typed)
    if resident is None:
        claimed["address"] = [typed]
        return claimed, Evidence(
            scores={"identityFraudScore": 0}, failed_check_details=[RECORD_CHECK]
        )
    claimed["address"] = [dict(resident["address"][0])]
    fraud = resident["fraud"]
    failed = fraud.get("failedFraudCheck")
    return claimed, Evidence(
        scores={"identityFraudScore": fraud["identityFraudScore"]},
        ci=list(fraud["ci"]),
        check_details=[RECORD_CHECK]
        + [{"checkMethod": "data", "fraudCheck": name} for name in FRAUD_CHECKS if name != failed],
        failed_check_details=[{"checkMethod": "data", "fraudCheck": failed}] if failed else [],
    )


def find(person, typed: dict) -> dict | None:
    """The resident with this name and birth date at the typed address."""
    for resident in load(REGISTER)["residents"]:
        if person_of(resident, REGISTER) == person and same_address(typed, resident["address"][0]):
            return resident
    return None

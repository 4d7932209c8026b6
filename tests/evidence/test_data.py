"""The test identities in evidence/data/ are well formed, so that adding a person who is not
fails here rather than as a server error during a check."""

from __future__ import annotations

import datetime

import pytest

from evidence.address import FRAUD_CHECKS
from evidence.records import load, person_of

REGISTERS = [
    ("passports.json", "passports", "passport", ("documentNumber", "expiryDate")),
    ("driving_licences.json", "drivingPermits", "drivingPermit", ("personalNumber", "expiryDate")),
    ("addresses.json", "residents", "address", ("postalCode", "validFrom")),
    ("kbv.json", "people", None, ()),
]


@pytest.mark.parametrize(("file_name", "member", "document", "fields"), REGISTERS)
def test_every_entry_names_a_person_and_holds_its_document(file_name, member, document, fields):
    entries = load(file_name)[member]
    assert entries
    people = [person_of(entry, file_name) for entry in entries]
    if document:
        keys = [entry[document][0][fields[0]] for entry in entries]
        assert len(set(keys)) == len(keys), f"{file_name}: a {fields[0]} appears twice"
        for entry in entries:
            for field in fields[1:]:
                datetime.date.fromisoformat(entry[document][0][field])
    else:
        assert len(set(people)) == len(people)


def test_every_question_has_its_answer_among_its_choices():
    data = load("kbv.json")
    for entry in data["people"]:
        assert len(entry["questions"]) == 3
        for question in entry["questions"]:
            assert question["answer"] in question["choices"], question["text"]
    assert len(data["noHistoryQuestions"]) == 3


def test_every_resident_has_a_fraud_result_and_a_contra_indicator_names_its_check():
    for resident in load("addresses.json")["residents"]:
        fraud = resident["fraud"]
        assert fraud["identityFraudScore"] in (0, 1, 2)
        if fraud["ci"]:
            assert fraud["failedFraudCheck"] in FRAUD_CHECKS
        else:
            assert "failedFraudCheck" not in fraud

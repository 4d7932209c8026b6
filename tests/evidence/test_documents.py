"""The passport and driving licence checks: each test identity's outcome, as a credential."""

from __future__ import annotations

import pytest

from tests.support.evidence import CLAIRE, KENNETH, MARY, OLIVIA, PAUL, PRIYA, person, typed


def with_passport(identity: dict, **changes) -> dict:
    """The identity's passport details, with some fields typed differently."""
    return {**typed(identity, "passport"), "passport": [{**identity["passport"][0], **changes}]}


def with_licence(identity: dict, **changes) -> dict:
    """The identity's licence details, with some fields typed differently."""
    licence = {**identity["drivingPermit"][0], **changes}
    return {**typed(identity, "drivingPermit"), "drivingPermit": [licence]}


PASSPORTS = [
    # (what the citizen types, validityScore, ci)
    pytest.param(with_passport(KENNETH), 2, [], id="kenneth"),
    pytest.param(with_passport(CLAIRE), 2, [], id="claire"),
    pytest.param(with_passport(OLIVIA), 2, [], id="olivia"),
    pytest.param(
        {**with_passport(KENNETH), **person("Kenneth", "decerqueira", "1965-07-08")},
        2,
        [],
        id="names-in-lower-case",
    ),
    pytest.param(
        with_passport(KENNETH, documentNumber="321 654 987"), 2, [], id="number-with-spaces"
    ),
    # Mary's passport is in her maiden name, ROBERTS: WATSON does not match it.
    pytest.param(with_passport(MARY), 0, ["D02"], id="mary-watson-name-mismatch"),
    pytest.param(
        {**with_passport(MARY), **person("MARY", "ROBERTS", "1932-02-25")},
        2,
        [],
        id="mary-as-roberts",
    ),
    pytest.param(with_passport(PAUL), 0, ["D14"], id="paul-expired"),
    pytest.param(
        {**with_passport(KENNETH), "birthDate": [{"value": "1965-07-09"}]},
        0,
        ["D02"],
        id="wrong-birth-date",
    ),
    pytest.param(with_passport(KENNETH, expiryDate="2031-01-01"), 0, ["D02"], id="wrong-expiry"),
    pytest.param(with_passport(KENNETH, documentNumber="111111111"), 0, ["D02"], id="unknown"),
    pytest.param(
        {**typed(PRIYA), "passport": KENNETH["passport"]}, 0, ["D02"], id="someone-elses-passport"
    ),
]


@pytest.mark.parametrize(("subject", "validity", "ci"), PASSPORTS)
def test_passport_check_outcome(caller, subject, validity, ci):
    claims = caller.check("passport", subject)
    (evidence,) = claims["vc"]["evidence"]
    assert evidence["type"] == "IdentityCheck"
    assert evidence["strengthScore"] == 4
    assert evidence["validityScore"] == validity
    assert evidence["ci"] == ci
    if validity:
        assert evidence["checkDetails"] == [{"checkMethod": "data"}]
        assert "failedCheckDetails" not in evidence
    else:
        assert evidence["failedCheckDetails"] == [{"checkMethod": "data"}]
        assert "checkDetails" not in evidence


def test_a_passed_passport_credential_holds_the_registered_details(caller):
    claims = caller.check("passport", with_passport(KENNETH, documentNumber="321 654 987"))
    subject = claims["vc"]["credentialSubject"]
    assert claims["vc"]["type"] == ["VerifiableCredential", "IdentityCheckCredential"]
    assert subject == {
        "name": [
            {
                "nameParts": [
                    {"type": "GivenName", "value": "KENNETH"},
                    {"type": "FamilyName", "value": "DECERQUEIRA"},
                ]
            }
        ],
        "birthDate": [{"value": "1965-07-08"}],
        "passport": [
            {"documentNumber": "321654987", "icaoIssuerCode": "GBR", "expiryDate": "2030-01-01"}
        ],
    }


def test_a_failed_passport_credential_says_what_was_typed(caller):
    claims = caller.check("passport", with_passport(MARY))
    subject = claims["vc"]["credentialSubject"]
    assert subject["name"][0]["nameParts"][1] == {"type": "FamilyName", "value": "WATSON"}
    assert subject["passport"][0]["documentNumber"] == "824159121"


LICENCES = [
    pytest.param(with_licence(KENNETH), 2, [], id="kenneth"),
    pytest.param(with_licence(PRIYA), 2, [], id="priya"),
    pytest.param(
        with_licence(KENNETH, issueDate="2022-02-02", issuedBy="DVLA"), 2, [], id="with-issue-date"
    ),
    pytest.param(
        with_licence(KENNETH, personalNumber="decer607085k99ae"), 2, [], id="number-in-lower-case"
    ),
    pytest.param(with_licence(PAUL), 0, ["D14"], id="paul-expired"),
    pytest.param(with_licence(KENNETH, issueDate="2021-02-02"), 0, ["D02"], id="wrong-issue"),
    pytest.param(with_licence(KENNETH, expiryDate="2032-02-03"), 0, ["D02"], id="wrong-expiry"),
    pytest.param(
        with_licence(KENNETH, personalNumber="DECER607085K99AF"), 0, ["D02"], id="unknown-number"
    ),
    pytest.param(
        {**with_licence(KENNETH), **person("KEN", "DECERQUEIRA", "1965-07-08")},
        0,
        ["D02"],
        id="different-name",
    ),
]


@pytest.mark.parametrize(("subject", "validity", "ci"), LICENCES)
def test_driving_licence_check_outcome(caller, subject, validity, ci):
    evidence = caller.evidence("driving_licence", subject)
    assert evidence["strengthScore"] == 3
    assert evidence["validityScore"] == validity
    assert evidence["ci"] == ci
    assert bool(evidence.get("checkDetails")) == bool(validity)
    assert bool(evidence.get("failedCheckDetails")) != bool(validity)


def test_a_passed_licence_credential_holds_the_registered_details(caller):
    claims = caller.check("driving_licence", with_licence(PRIYA))
    subject = claims["vc"]["credentialSubject"]
    assert subject["drivingPermit"] == [
        {
            "personalNumber": "SHARM955170P99XX",
            "expiryDate": "2034-05-16",
            "issueDate": "2024-05-17",
            "issuedBy": "DVLA",
            "fullAddress": "27 KINGS AVENUE, LEEDS, LS6 1QS",
        }
    ]
    (evidence,) = claims["vc"]["evidence"]
    assert evidence["checkDetails"] == [
        {"checkMethod": "data", "identityCheckPolicy": "published", "activityFrom": "2024-05-17"}
    ]

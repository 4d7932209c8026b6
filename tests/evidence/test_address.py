"""The address check with fraud checks: each test identity's outcome, as a credential."""

from __future__ import annotations

import pytest

from tests.support.evidence import CLAIRE, KENNETH, MARY, OLIVIA, PAUL, PRIYA, typed


def at(identity: dict, **changes) -> dict:
    """The identity at their address, with some fields typed differently."""
    return {**typed(identity, "address"), "address": [{**identity["address"][0], **changes}]}


ADDRESSES = [
    # (what the citizen types, identityFraudScore, ci)
    pytest.param(at(KENNETH), 2, [], id="kenneth"),
    pytest.param(at(PRIYA), 2, [], id="priya"),
    pytest.param(at(MARY), 2, [], id="mary"),
    pytest.param(at(PAUL), 2, [], id="paul"),
    pytest.param(at(OLIVIA), 2, [], id="olivia"),
    pytest.param(
        at(KENNETH, postalCode="ba25aa", streetName="Hadley Rd"),
        2,
        [],
        id="postcode-written-differently",
    ),
    # A fraud database finds Claire's identity used fraudulently.
    pytest.param(at(CLAIRE), 0, ["F03"], id="claire-fraud"),
    pytest.param(at(KENNETH, buildingNumber="9"), 0, [], id="another-house"),
    pytest.param(at(KENNETH, postalCode="BA2 5AB"), 0, [], id="another-postcode"),
    pytest.param({**at(PRIYA), "birthDate": KENNETH["birthDate"]}, 0, [], id="wrong-birth-date"),
]


@pytest.mark.parametrize(("subject", "fraud_score", "ci"), ADDRESSES)
def test_address_check_outcome(caller, subject, fraud_score, ci):
    evidence = caller.evidence("address", subject)
    assert evidence["identityFraudScore"] == fraud_score
    assert evidence["ci"] == ci
    assert "strengthScore" not in evidence
    if fraud_score:
        assert "failedCheckDetails" not in evidence


def test_a_passed_address_credential_holds_the_address_on_record(caller):
    claims = caller.check("address", at(KENNETH, postalCode="ba25aa"))
    assert claims["vc"]["credentialSubject"]["address"] == [
        {
            "uprn": "100120012077",
            "buildingNumber": "8",
            "streetName": "HADLEY ROAD",
            "addressLocality": "BATH",
            "postalCode": "BA2 5AA",
            "addressCountry": "GB",
            "validFrom": "2000-01-01",
        }
    ]
    (evidence,) = claims["vc"]["evidence"]
    assert {"checkMethod": "data", "dataCheck": "record_check"} in evidence["checkDetails"]


def test_the_failed_fraud_check_is_named(caller):
    evidence = caller.evidence("address", at(CLAIRE))
    assert evidence["failedCheckDetails"] == [
        {"checkMethod": "data", "fraudCheck": "identity_theft_check"}
    ]


def test_an_unknown_address_is_a_failed_record_check(caller):
    claims = caller.check("address", at(KENNETH, buildingNumber="9"))
    (evidence,) = claims["vc"]["evidence"]
    assert evidence["failedCheckDetails"] == [{"checkMethod": "data", "dataCheck": "record_check"}]
    assert claims["vc"]["credentialSubject"]["address"][0]["buildingNumber"] == "9"

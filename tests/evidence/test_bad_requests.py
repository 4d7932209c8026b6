"""Every malformed request is refused with 400 invalid_request saying what is wrong: never a
500, never a credential."""

from __future__ import annotations

import httpx
import pytest

import evidence
from tests.support.evidence import KENNETH, typed

BINDING = {"sub": "check-1", "aud": "https://idp.example.gov.uk", "nonce": "n-1"}
PASSPORT = typed(KENNETH, "passport")
LICENCE = typed(KENNETH, "drivingPermit")
ADDRESS = typed(KENNETH, "address")


def without(body: dict, key: str) -> dict:
    """body without key."""
    return {k: v for k, v in body.items() if k != key}


def changed(subject: dict, member: str, **fields) -> dict:
    """subject with fields of its member's first item changed (None removes one)."""
    item = {**subject[member][0], **fields}
    return {**subject, member: [{k: v for k, v in item.items() if v is not None}]}


def named(*parts: dict) -> dict:
    """Kenneth's birth date with these name parts."""
    return {**PASSPORT, "name": [{"nameParts": list(parts)}]}


GIVEN = {"type": "GivenName", "value": "KENNETH"}
FAMILY = {"type": "FamilyName", "value": "DECERQUEIRA"}

# (body, what the error_description says), for any service's POST /check.
BAD_BINDINGS = [
    (without(BINDING, "sub"), "sub is missing"),
    ({**BINDING, "sub": ""}, "sub must not be empty"),
    ({**BINDING, "sub": 7}, "sub must be a string"),
    ({**BINDING, "sub": "x" * 256}, "sub is longer than 255 characters"),
    (without(BINDING, "aud"), "aud is missing"),
    ({**BINDING, "aud": "idp.example.gov.uk"}, "aud must be the IdP's issuer, an http(s) URL"),
    (without(BINDING, "nonce"), "nonce is missing"),
    ({**BINDING, "nonce": None}, "nonce is missing"),
    ({**BINDING, "nonce": ["n"]}, "nonce must be a string"),
]

# (kind, body, what the error_description says).
BAD_CHECKS = [
    ("passport", BINDING, "subject is missing"),
    ("passport", {**BINDING, "subject": "KENNETH"}, "subject must be a JSON object"),
    ("passport", {**BINDING, "subject": without(PASSPORT, "name")}, "subject.name is missing"),
    (
        "passport",
        {**BINDING, "subject": {**PASSPORT, "name": []}},
        "subject.name must be a list of one object",
    ),
    (
        "passport",
        {**BINDING, "subject": {**PASSPORT, "name": [{}]}},
        "subject.name[0].nameParts must be a non-empty list",
    ),
    (
        "passport",
        {**BINDING, "subject": named(GIVEN)},
        "needs at least one GivenName and one FamilyName",
    ),
    (
        "passport",
        {**BINDING, "subject": named(GIVEN, {"type": "Surname", "value": "X"})},
        "subject.name[0].nameParts[1].type must be GivenName or FamilyName",
    ),
    (
        "passport",
        {**BINDING, "subject": named(GIVEN, {**FAMILY, "value": " "})},
        "subject.name[0].nameParts[1].value must not be empty",
    ),
    (
        "passport",
        {**BINDING, "subject": named(GIVEN, "DECERQUEIRA")},
        "subject.name[0].nameParts[1] must be an object",
    ),
    (
        "passport",
        {**BINDING, "subject": without(PASSPORT, "birthDate")},
        "subject.birthDate is missing",
    ),
    (
        "passport",
        {**BINDING, "subject": {**PASSPORT, "birthDate": [{"value": "08/07/1965"}]}},
        "subject.birthDate[0].value must be a date written YYYY-MM-DD",
    ),
    (
        "passport",
        {**BINDING, "subject": {**PASSPORT, "birthDate": [{"value": "1965-02-30"}]}},
        "subject.birthDate[0].value is not a real date",
    ),
    (
        "passport",
        {**BINDING, "subject": {**PASSPORT, "birthDate": [{"value": "2999-01-01"}]}},
        "subject.birthDate[0].value is in the future",
    ),
    (
        "passport",
        {**BINDING, "subject": {**PASSPORT, "birthDate": {"value": "1965-07-08"}}},
        "subject.birthDate must be a list of one object",
    ),
    (
        "passport",
        {**BINDING, "subject": without(PASSPORT, "passport")},
        "subject.passport is missing",
    ),
    (
        "passport",
        {**BINDING, "subject": changed(PASSPORT, "passport", documentNumber=None)},
        "subject.passport[0].documentNumber is missing",
    ),
    (
        "passport",
        {**BINDING, "subject": changed(PASSPORT, "passport", documentNumber="12345")},
        "documentNumber must be the 9 digits of a UK passport",
    ),
    (
        "passport",
        {**BINDING, "subject": changed(PASSPORT, "passport", documentNumber=321654987)},
        "subject.passport[0].documentNumber must be a string",
    ),
    (
        "passport",
        {**BINDING, "subject": changed(PASSPORT, "passport", expiryDate=None)},
        "subject.passport[0].expiryDate is missing",
    ),
    (
        "passport",
        {**BINDING, "subject": changed(PASSPORT, "passport", expiryDate="2030")},
        "subject.passport[0].expiryDate must be a date written YYYY-MM-DD",
    ),
    (
        "driving_licence",
        {**BINDING, "subject": without(LICENCE, "drivingPermit")},
        "subject.drivingPermit is missing",
    ),
    (
        "driving_licence",
        {**BINDING, "subject": changed(LICENCE, "drivingPermit", personalNumber="DECER60708")},
        "personalNumber must be the 16 characters of a GB licence number",
    ),
    (
        "driving_licence",
        {**BINDING, "subject": changed(LICENCE, "drivingPermit", expiryDate="2/2/2032")},
        "subject.drivingPermit[0].expiryDate must be a date written YYYY-MM-DD",
    ),
    (
        "driving_licence",
        {**BINDING, "subject": changed(LICENCE, "drivingPermit", issueDate="2022-13-01")},
        "subject.drivingPermit[0].issueDate is not a real date",
    ),
    ("address", {**BINDING, "subject": without(ADDRESS, "address")}, "subject.address is missing"),
    (
        "address",
        {**BINDING, "subject": changed(ADDRESS, "address", postalCode=None)},
        "subject.address[0].postalCode is missing",
    ),
    (
        "address",
        {**BINDING, "subject": changed(ADDRESS, "address", buildingNumber=None)},
        "subject.address[0] needs a buildingNumber or a buildingName",
    ),
    (
        "address",
        {**BINDING, "subject": changed(ADDRESS, "address", postcode="BA2 5AA")},
        "subject.address[0].postcode is not an address field",
    ),
    (
        "address",
        {**BINDING, "subject": changed(ADDRESS, "address", validFrom="yesterday")},
        "subject.address[0].validFrom must be a date written YYYY-MM-DD",
    ),
    (
        "address",
        {**BINDING, "subject": changed(ADDRESS, "address", buildingNumber=8)},
        "subject.address[0].buildingNumber must be a string",
    ),
    ("kbv", BINDING, "answers is missing"),
]
BAD_QUESTIONS = [
    (BINDING, "subject is missing"),
    (without({**BINDING, "subject": ADDRESS}, "sub"), "sub is missing"),
    ({**BINDING, "subject": typed(KENNETH)}, "subject.address is missing"),
    ({**BINDING, "subject": without(ADDRESS, "birthDate")}, "subject.birthDate is missing"),
]


def assert_refused(response: httpx.Response, description: str, status: int = 400) -> None:
    """A JSON invalid_request error whose description says description, and no credential."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid_request"
    assert description in body["error_description"]
    assert "credential" not in body


@pytest.mark.parametrize("kind", evidence.KINDS)
@pytest.mark.parametrize(("binding", "description"), BAD_BINDINGS)
def test_a_bad_binding_is_refused(evidence_services, kind, binding, description):
    subject = {"passport": PASSPORT, "driving_licence": LICENCE}.get(kind, ADDRESS)
    body = {**binding, "subject": subject, "answers": KENNETH["answers"]}
    response = httpx.post(f"{evidence_services[kind]}/check", json=body)
    assert_refused(response, description)


@pytest.mark.parametrize(("kind", "body", "description"), BAD_CHECKS)
def test_a_malformed_check_is_refused(evidence_services, kind, body, description):
    response = httpx.post(f"{evidence_services[kind]}/check", json=body)
    assert_refused(response, description)


@pytest.mark.parametrize(("body", "description"), BAD_QUESTIONS)
def test_a_malformed_request_for_questions_is_refused(evidence_services, body, description):
    response = httpx.post(f"{evidence_services['kbv']}/questions", json=body)
    assert_refused(response, description)


NOT_JSON_OBJECTS = [
    ({"content": b"sub=check-1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ({"content": b"[1, 2]", "headers": {"Content-Type": "application/json"}}),
    ({"content": b"", "headers": {"Content-Type": "application/json"}}),
]


@pytest.mark.parametrize("kind", evidence.KINDS)
@pytest.mark.parametrize("request_", NOT_JSON_OBJECTS)
def test_a_body_that_is_not_a_json_object_is_refused(evidence_services, kind, request_):
    response = httpx.post(f"{evidence_services[kind]}/check", **request_)
    assert_refused(response, "the body must be a JSON object (Content-Type: application/json)")


def test_a_huge_body_is_refused(evidence_services):
    body = {**BINDING, "subject": {**PASSPORT, "padding": "x" * 20_000}}
    response = httpx.post(f"{evidence_services['passport']}/check", json=body)
    assert_refused(response, "the body is larger than 16384 bytes", status=413)


@pytest.mark.parametrize(
    ("kind", "method", "path", "status"),
    [
        ("passport", "GET", "/check", 405),
        ("passport", "POST", "/questions", 404),
        ("address", "GET", "/nowhere", 404),
        ("kbv", "PUT", "/questions", 405),
    ],
)
def test_an_unknown_endpoint_says_what_the_service_answers(
    evidence_services, kind, method, path, status
):
    response = httpx.request(method, f"{evidence_services[kind]}{path}")
    assert_refused(response, "this service answers GET /, GET /.well-known/jwks.json", status)


@pytest.mark.parametrize("kind", evidence.KINDS)
def test_deeply_nested_json_is_refused_not_a_server_error(evidence_services, kind):
    """JSON nested deeper than the parser recurses (well within the size limit) is a
    malformed body, not the service's defect."""
    content = b"[" * 5000 + b"]" * 5000
    response = httpx.post(
        f"{evidence_services[kind]}/check",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert_refused(response, "the body must be a JSON object (Content-Type: application/json)")

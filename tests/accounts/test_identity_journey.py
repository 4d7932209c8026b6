"""The identity check over HTTP, against the simulated evidence services (evidence/): each test
identity ends where it should (P2 with a passport, P2 with a driving licence, a mismatched name,
an expired passport, a failed fraud check, failed questions, no document) with the level stored
and the audit record saying what happened and never the document numbers or answers; a
department's journey goes on to authorize.resume; a citizen already proved is not asked again;
forged credentials are refused; an evidence service down or talking nonsense is a clear page;
every bad input is explained beside its field; and the operator's forget-identity command."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from idp.accounts.identity import evidence_client, store
from idp.accounts.identity.vocabulary import CORE_IDENTITY_JWT
from idp.cli import cli
from idp.extensions import db
from idp.models import Client, IdentityCheck
from tests.conftest import free_port
from tests.support.audit import captured_log, stored_entries, table_text
from tests.support.browser import CitizenBrowser, error_beside

UNAVAILABLE = "Sorry, we cannot check your identity at the moment"
NOT_CONFIRMED = "We could not confirm your identity"
PROVED = "You have proved your identity"

# The test identities of the evidence services (evidence/data), as a citizen types them.
KENNETH = {
    "given_names": "Kenneth",
    "surname": "Decerqueira",
    "birth": ("8", "7", "1965"),
    "passport_number": "321654987",
    "expiry": ("1", "1", "2030"),
    "licence_number": "DECER607085K99AE",
    "licence_issue": ("2", "2", "2022"),
    "licence_expiry": ("2", "2", "2032"),
    "address": {"building": "8", "street": "Hadley Road", "town": "Bath", "postcode": "ba25aa"},
    "answers": ["NATIONWIDE", "£501 TO £750", "O2"],
}
PRIYA = {
    "given_names": "Priya",
    "surname": "Sharma",
    "birth": ("17", "5", "1990"),
    "licence_number": "SHARM955170P99XX",
    "address": {"building": "27", "street": "Kings Avenue", "town": "Leeds", "postcode": "LS6 1QS"},
    "answers": ["LLOYDS", "AMERICAN EXPRESS", "EE"],
}
# Her passport says MARY ROBERTS.
MARY_WATSON = {
    "given_names": "Mary",
    "surname": "Watson",
    "birth": ("25", "2", "1932"),
    "passport_number": "824159121",
    "expiry": ("14", "3", "2031"),
}
PAUL = {
    "given_names": "Paul",
    "surname": "Button",
    "birth": ("3", "11", "1979"),
    "passport_number": "987654321",
    "expiry": ("30", "6", "2021"),
}
CLAIRE = {
    "given_names": "Claire",
    "surname": "Holloway",
    "birth": ("22", "4", "1988"),
    "passport_number": "612398745",
    "expiry": ("1", "8", "2029"),
    "address": {
        "building": "3",
        "street": "Station Road",
        "town": "Cardiff",
        "postcode": "CF10 1AB",
    },
}
OLIVIA = {
    "given_names": "Olivia",
    "surname": "Brown",
    "birth": ("9", "9", "2001"),
    "passport_number": "533401372",
    "expiry": ("9", "9", "2033"),
    "address": {
        "building": "19",
        "street": "Queen Street",
        "town": "Nottingham",
        "postcode": "NG1 2BL",
    },
}


# -- Fixtures ----------------------------------------------------------------------------------


def _with_services(idp, urls: dict[str, str]) -> None:
    settings = idp.app.config["IDP_SETTINGS"]
    idp.app.config["IDP_SETTINGS"] = dataclasses.replace(settings, evidence_services=dict(urls))
    evidence_client.forget_cached_keys()


@pytest.fixture
def citizen_browser(checking_idp, make_citizen) -> CitizenBrowser:
    """A citizen signed in fully (with their authenticator app)."""
    citizen = make_citizen()
    browser = CitizenBrowser(checking_idp.issuer)
    page = browser.follow(browser.get(checking_idp.url("/sign-in")))
    browser.sign_in(page, citizen["email"], citizen["password"])
    browser.citizen = citizen
    return browser


# -- Walking the pages -------------------------------------------------------------------------


def date_fields(prefix: str, parts: tuple[str, str, str]) -> dict[str, str]:
    return dict(zip((f"{prefix}_day", f"{prefix}_month", f"{prefix}_year"), parts, strict=True))


def passport_fields(person: dict) -> dict[str, str]:
    return {
        "given_names": person["given_names"],
        "surname": person["surname"],
        **date_fields("birth", person["birth"]),
        "passport_number": person["passport_number"],
        **date_fields("expiry", person["expiry"]),
    }


def licence_fields(person: dict) -> dict[str, str]:
    issue = person.get("licence_issue")
    expiry = person.get("licence_expiry")
    if person is PRIYA:
        issue, expiry = ("17", "5", "2024"), ("16", "5", "2034")
    return {
        "given_names": person["given_names"],
        "surname": person["surname"],
        **date_fields("birth", person["birth"]),
        "licence_number": person["licence_number"],
        **date_fields("issue", issue),
        **date_fields("expiry", expiry),
    }


def start(browser: CitizenBrowser, issuer: str, document: str, journey: str | None = None):
    """Open the start page and choose a document; the next page (followed)."""
    url = f"{issuer}/identity/start" + (f"?journey={journey}" if journey else "")
    page = browser.follow(browser.get(url))
    assert page.status_code == 200, page.text[:500]
    assert "Prove your identity" in page.text
    return browser.submit(page, {"document": document})


def answer_questions(browser: CitizenBrowser, page: httpx.Response, answers: list[str]):
    """Answer the questions one per page; the answer to the last (not followed)."""
    response = None
    for number, answer in enumerate(answers, start=1):
        assert page.status_code == 200, page.text[:800]
        assert f"Question {number} of {len(answers)}" in page.text
        response = browser.submit(page, {"answer": answer, "question": question_id(page.text)})
        if number < len(answers):
            assert response.status_code in (302, 303), response.text[:800]
            page = browser.follow(response)
    return response


def prove_with_passport(
    browser: CitizenBrowser, issuer: str, person: dict, journey: str | None = None
) -> httpx.Response:
    """The whole check with a passport; the last answer (not followed)."""
    page = browser.follow(start(browser, issuer, "passport", journey))
    assert "Enter your passport details" in page.text, page.text[:800]
    page = browser.follow(browser.submit(page, passport_fields(person)))
    if "Enter your address" not in page.text:
        return page
    address = browser.submit(page, person["address"])
    if (
        address.status_code not in (302, 303)
        or "/identity/questions" not in address.headers["location"]
    ):
        return address
    return answer_questions(browser, browser.follow(address), person["answers"])


def identity_of(idp, citizen_id: int):
    with idp.app.app_context():
        return store.current_identity(citizen_id), store.identity_level(citizen_id)


def checks_of(idp, citizen_id: int) -> list[tuple[str | None, str | None]]:
    with idp.app.app_context():
        rows = db.session.scalars(
            db.select(IdentityCheck).filter_by(citizen_id=citizen_id).order_by(IdentityCheck.id)
        ).all()
        return [(row.outcome, row.return_code) for row in rows]


def events(idp, prefix: str = "identity.") -> list[dict]:
    return [e for e in stored_entries(idp) if e["event"].startswith(prefix)]


def assert_no_secrets_in_audit(idp, *secrets_: str) -> None:
    text = table_text(idp).upper()
    for secret in secrets_:
        assert secret.upper() not in text, secret


# -- Each test identity ------------------------------------------------------------------------


def test_kenneth_proves_p2_with_his_passport_address_and_questions(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    last = prove_with_passport(browser, idp.issuer, KENNETH)
    assert last.status_code in (302, 303) and last.headers["location"].endswith("/identity/proved")
    proved = browser.follow(last)
    assert PROVED in proved.text
    assert "KENNETH DECERQUEIRA" in proved.text and "8 July 1965" in proved.text
    assert "Medium (P2)" in proved.text

    identity, level = identity_of(idp, browser.citizen["id"])
    assert level == "P2"
    assert identity.details["name"] == [
        {
            "nameParts": [
                {"type": "GivenName", "value": "KENNETH"},
                {"type": "FamilyName", "value": "DECERQUEIRA"},
            ]
        }
    ]
    assert identity.details["birthDate"] == [{"value": "1965-07-08"}]
    assert identity.details["passport"][0]["documentNumber"] == "321654987"
    assert identity.details["address"][0]["postalCode"] == "BA2 5AA"
    assert identity.details["address"][0]["uprn"] == "100120012077"
    assert "drivingPermit" not in identity.details
    assert checks_of(idp, browser.citizen["id"]) == [("proved", None)]

    recorded = events(idp)
    assert [(e["event"], e["outcome"]) for e in recorded] == [
        ("identity.check_started", "success"),
        ("identity.evidence_checked", "success"),
        ("identity.evidence_checked", "success"),
        ("identity.evidence_checked", "success"),
        ("identity.proved", "success"),
    ]
    assert [e["kind"] for e in recorded[1:4]] == ["passport", "address", "kbv"]
    assert recorded[0]["document"] == "passport" and recorded[0]["identity_level_asked"] == "P2"
    assert recorded[-1]["identity_level"] == "P2"
    assert all(e["citizen_id"] == browser.citizen["id"] for e in recorded)
    assert_no_secrets_in_audit(idp, "321654987", "DECERQUEIRA", "HADLEY", "NATIONWIDE", "£501")

    # Proved: the start page does not ask again.
    again = browser.get(idp.url("/identity/start"))
    assert again.status_code in (302, 303) and again.headers["location"].endswith(
        "/identity/proved"
    )


def test_priya_proves_p2_with_her_driving_licence(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "driving_licence"))
    assert "Enter your driving licence details" in page.text
    page = browser.follow(browser.submit(page, licence_fields(PRIYA)))
    assert "Enter your address" in page.text, page.text[:800]
    page = browser.follow(browser.submit(page, PRIYA["address"]))
    last = answer_questions(browser, page, PRIYA["answers"])
    assert PROVED in browser.follow(last).text

    identity, level = identity_of(idp, browser.citizen["id"])
    assert level == "P2"
    assert identity.details["drivingPermit"][0]["personalNumber"] == "SHARM955170P99XX"
    assert "passport" not in identity.details
    assert [e["kind"] for e in events(idp) if e["event"] == "identity.evidence_checked"] == [
        "driving_licence",
        "address",
        "kbv",
    ]
    assert_no_secrets_in_audit(idp, "SHARM955170P99XX", "LLOYDS", "AMERICAN EXPRESS")


def _failed(idp, browser, response, heading: str, reason: str, code: str, kind: str, ci: str):
    assert response.status_code in (302, 303), response.text[:800]
    page = browser.follow(response)
    assert urlsplit(str(page.url)).path == "/identity/not-proved"
    assert heading in page.text and reason in page.text
    assert "Return to" not in page.text  # no department asked
    _, level = identity_of(idp, browser.citizen["id"])
    assert level == "P0"
    assert checks_of(idp, browser.citizen["id"]) == [("failed", code)]
    checked = [e for e in events(idp) if e["event"] == "identity.evidence_checked"]
    assert (checked[-1]["kind"], checked[-1]["outcome"], checked[-1]["ci"]) == (
        kind,
        "failure",
        [ci],
    )
    failed = events(idp)[-1]
    assert (failed["event"], failed["outcome"], failed["return_code"]) == (
        "identity.failed",
        "failure",
        code,
    )
    assert not [e for e in events(idp) if e["event"] == "identity.proved"]


def test_a_passport_in_another_name_is_not_confirmed(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    answer = browser.submit(page, passport_fields(MARY_WATSON))
    _failed(idp, browser, answer, NOT_CONFIRMED, "did not match", "D", "passport", "D02")
    assert_no_secrets_in_audit(idp, "824159121", "WATSON")


def test_an_expired_passport_is_not_confirmed(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    answer = browser.submit(page, passport_fields(PAUL))
    _failed(idp, browser, answer, NOT_CONFIRMED, "has expired", "D", "passport", "D14")


def test_a_failed_fraud_check_is_not_confirmed(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    answer = prove_with_passport(browser, idp.issuer, CLAIRE)
    _failed(
        idp, browser, answer, NOT_CONFIRMED, "could not confirm your address", "F", "address", "F03"
    )
    assert_no_secrets_in_audit(idp, "STATION ROAD", "CF10")


def test_wrong_answers_to_the_questions_are_not_confirmed(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    page = browser.follow(browser.submit(page, passport_fields(OLIVIA)))
    page = browser.follow(browser.submit(page, OLIVIA["address"]))
    # No credit history: the questions have no right answer. Choose the first each time.
    answers = []
    for number in range(1, 4):
        assert f"Question {number} of 3" in page.text
        choice = _first_choice(page.text)
        answers.append(choice)
        response = browser.submit(page, {"answer": choice, "question": question_id(page.text)})
        if number < 3:
            page = browser.follow(response)
    _failed(idp, browser, response, NOT_CONFIRMED, "security questions", "K", "kbv", "V03")
    assert_no_secrets_in_audit(idp, *answers)


def question_id(page_html: str) -> str:
    """The id of the question a page asks (its hidden field)."""
    match = re.search(r'name="question" type="hidden" value="([^"]+)"', page_html)
    assert match, page_html[:2000]
    return match.group(1)


def _first_choice(page_html: str) -> str:
    match = re.search(r'name="answer" type="radio" value="([^"]+)"', page_html)
    assert match, page_html[:2000]
    return html.unescape(match.group(1))


def test_a_citizen_without_either_document_cannot_prove_online(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    answer = start(browser, idp.issuer, "neither")
    assert answer.status_code in (302, 303)
    page = browser.follow(answer)
    assert "You cannot prove your identity online" in page.text
    assert checks_of(idp, browser.citizen["id"]) == [("failed", "X")]
    assert [(e["event"], e.get("return_code")) for e in events(idp)] == [
        ("identity.check_started", None),
        ("identity.failed", "X"),
    ]
    assert events(idp)[-1]["reason"] == "no_document"


# -- A department's journey --------------------------------------------------------------------


def department_journey(idp, browser: CitizenBrowser, make_client, vtr: str = '["Cl.Cm.P2"]'):
    """A department's authorization request in this browser; its journey handle. (Sending the
    citizen to the check is the protocol's step; here the test opens the check itself.)"""
    client = make_client()
    with idp.app.app_context():
        # Registered for the verified name and birth date, as the platform approved.
        row = db.session.scalar(db.select(Client).filter_by(client_id=client.client_id))
        claims = [CORE_IDENTITY_JWT]
        row.client_metadata = {**row.client_metadata, "identity_claims": claims}
        row.approved_metadata = {**(row.approved_metadata or {}), "identity_claims": claims}
        db.session.commit()
    attempt = client.authorization(vtr=vtr)
    browser.get(attempt.url)
    with idp.app.app_context():
        from idp.models import Interaction

        interaction = db.session.scalars(
            db.select(Interaction).order_by(Interaction.id.desc())
        ).first()
        return interaction.handle


def test_from_a_department_the_proved_citizen_goes_on_to_the_department(
    checking_idp, citizen_browser, make_client
):
    idp, browser = checking_idp, citizen_browser
    journey = department_journey(idp, browser, make_client)
    start_page = browser.get(idp.url(f"/identity/start?journey={journey}"))
    assert "Department dept-a needs to know it is really you." in start_page.text
    last = prove_with_passport(browser, idp.issuer, KENNETH, journey)
    assert last.status_code in (302, 303)
    assert last.headers["location"] == f"/authorize/resume?journey={journey}"
    assert [e["client_id"] for e in events(idp) if e["event"] == "identity.check_started"] == [
        "dept-a"
    ]
    # A second request for P2 is not asked again: straight on.
    again = browser.get(idp.url(f"/identity/start?journey={journey}"))
    assert again.status_code in (302, 303)
    assert again.headers["location"] == f"/authorize/resume?journey={journey}"


def test_from_a_department_a_failed_check_offers_the_way_back(
    checking_idp, citizen_browser, make_client
):
    idp, browser = checking_idp, citizen_browser
    journey = department_journey(idp, browser, make_client)
    answer = start(browser, idp.issuer, "neither", journey)
    page = browser.follow(answer)
    assert "You cannot prove your identity online" in page.text
    assert "Return to Department dept-a" in page.text
    assert f'href="/authorize/resume?journey={journey}"' in page.text
    assert checks_of(idp, browser.citizen["id"]) == [("failed", "X")]


def test_a_department_asking_p1_needs_no_questions(checking_idp, citizen_browser, make_client):
    idp, browser = checking_idp, citizen_browser
    journey = department_journey(idp, browser, make_client, vtr='["Cl.Cm.P1"]')
    page = browser.follow(start(browser, idp.issuer, "passport", journey))
    page = browser.follow(browser.submit(page, passport_fields(KENNETH)))
    done = browser.submit(page, KENNETH["address"])
    assert done.headers["location"] == f"/authorize/resume?journey={journey}"
    _, level = identity_of(idp, browser.citizen["id"])
    assert level == "P1"


def test_an_unknown_journey_is_explained(checking_idp, citizen_browser):
    page = citizen_browser.get(checking_idp.url("/identity/start?journey=" + "x" * 32))
    assert page.status_code == 400
    assert "Go back to the service you were using and start again" in page.text


# -- Forged credentials ------------------------------------------------------------------------


class FakeService:
    """An evidence service that signs what a test says: its /check answers with a credential
    bound to the request unless `forge` changes the claims or the key."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.other_key = ec.generate_private_key(ec.SECP256R1())
        self.kid = "fake-1"
        self.forge: Callable[[dict], dict] = lambda claims: claims
        self.sign_with_other_key = False
        self.raw_answer: tuple[int, bytes] | None = None
        self.raw_keys: tuple[int, bytes] | None = None
        self.delay = 0.0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if owner.raw_keys is not None:
                    self._send(*owner.raw_keys)
                    return
                self._send(200, json.dumps({"keys": [owner.public_jwk()]}).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length))
                time.sleep(owner.delay)
                if owner.raw_answer is not None:
                    self._send(*owner.raw_answer)
                    return
                self._send(200, json.dumps({"credential": owner.credential(request)}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def public_jwk(self) -> dict:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "ES256"}

    def credential(self, request: dict) -> str:
        now = int(time.time())
        subject = request["subject"]
        claims = {
            "iss": self.url,
            "sub": request["sub"],
            "aud": request["aud"],
            "nbf": now,
            "iat": now,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            "nonce": request["nonce"],
            "vc": {
                "type": ["VerifiableCredential", "IdentityCheckCredential"],
                "credentialSubject": dict(subject),
                "evidence": [
                    {
                        "type": "IdentityCheck",
                        "strengthScore": 4,
                        "validityScore": 2,
                        "identityFraudScore": 2,
                        "ci": [],
                    }
                ],
            },
        }
        key = self.other_key if self.sign_with_other_key else self.key
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return jwt.encode(
            self.forge(claims), pem, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"}
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_passport_office(checking_idp, evidence_services) -> Iterator[FakeService]:
    """The IdP's passport check pointed at a FakeService."""
    fake = FakeService()
    _with_services(checking_idp, {**evidence_services, "passport": fake.url})
    yield fake
    fake.close()


def _signed_by_the_fake(fake: FakeService) -> None:
    fake.sign_with_other_key = True


FORGERIES = {
    "signed by another key": (_signed_by_the_fake, "the signature is not the service's"),
    "for another audience": (
        lambda fake: setattr(fake, "forge", lambda c: {**c, "aud": "https://other.example"}),
        "issued to another audience",
    ),
    "about another check": (
        lambda fake: setattr(fake, "forge", lambda c: {**c, "sub": "another-check"}),
        "about another check (sub)",
    ),
    "expired": (
        lambda fake: setattr(
            fake, "forge", lambda c: {**c, "nbf": c["nbf"] - 900, "exp": c["exp"] - 900}
        ),
        "expired (exp)",
    ),
    "with another nonce": (
        lambda fake: setattr(fake, "forge", lambda c: {**c, "nonce": "replayed"}),
        "not the nonce sent",
    ),
    "from another issuer": (
        lambda fake: setattr(fake, "forge", lambda c: {**c, "iss": "http://127.0.0.1:1"}),
        "issued by another issuer",
    ),
    "not an identity check credential": (
        lambda fake: setattr(
            fake, "forge", lambda c: {**c, "vc": {**c["vc"], "type": ["VerifiableCredential"]}}
        ),
        "not an IdentityCheckCredential",
    ),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_credential_is_refused(
    checking_idp, citizen_browser, fake_passport_office, forgery
):
    idp, browser, fake = checking_idp, citizen_browser, fake_passport_office
    arrange, reason = FORGERIES[forgery]
    page = browser.follow(start(browser, idp.issuer, "passport"))
    # The fake service passes anyone; first, untouched, it is believed.
    arrange(fake)
    refused = browser.submit(page, passport_fields(KENNETH))
    assert refused.status_code == 503
    assert UNAVAILABLE in refused.text
    assert 'id="try-again" href="/identity/passport"' in refused.text
    # Nothing was kept: the check is still at the passport.
    assert browser.get(idp.url("/identity/address")).headers["location"] == "/identity/passport"
    entry = events(idp)[-1]
    assert (entry["event"], entry["outcome"], entry["kind"]) == (
        "identity.evidence_refused",
        "failure",
        "passport",
    )
    assert entry["reason"] == f"credential refused: {reason}"
    assert not [e for e in events(idp) if e["event"] == "identity.evidence_checked"]


def test_the_fake_services_honest_credential_is_believed(
    checking_idp, citizen_browser, fake_passport_office
):
    """The forgery tests' control: the same fake service, nothing forged, is believed."""
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    answer = browser.submit(page, passport_fields(KENNETH))
    assert answer.status_code in (302, 303) and answer.headers["location"] == "/identity/address"


def test_a_credential_about_another_person_is_refused(
    checking_idp, citizen_browser, evidence_services
):
    """The address service vouching for someone else than the passport check did."""
    idp, browser = checking_idp, citizen_browser
    fake = FakeService()
    try:
        page = browser.follow(start(browser, idp.issuer, "passport"))
        page = browser.follow(browser.submit(page, passport_fields(KENNETH)))
        _with_services(idp, {**evidence_services, "address": fake.url})

        def someone_else(claims: dict) -> dict:
            claims["vc"]["credentialSubject"]["birthDate"] = [{"value": "1970-01-01"}]
            return claims

        fake.forge = someone_else
        refused = browser.submit(page, KENNETH["address"])
        assert refused.status_code == 503 and UNAVAILABLE in refused.text
        assert events(idp)[-1]["reason"] == (
            "credential refused: about another person than the passport check"
        )
    finally:
        fake.close()


# -- Evidence services down or talking nonsense ------------------------------------------------


def test_a_service_that_does_not_answer_is_a_clear_page(
    checking_idp, citizen_browser, evidence_services
):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    _with_services(idp, {**evidence_services, "passport": f"http://127.0.0.1:{free_port()}"})
    down = browser.submit(page, passport_fields(KENNETH))
    assert down.status_code == 503 and UNAVAILABLE in down.text
    assert "Try again in a few minutes" in down.text
    assert events(idp)[-1]["reason"].startswith("service unavailable")
    # Back up: the same check goes on.
    _with_services(idp, evidence_services)
    again = browser.follow(browser.get(idp.url("/identity/passport")))
    answer = browser.submit(again, passport_fields(KENNETH))
    assert answer.headers["location"] == "/identity/address"


@pytest.mark.parametrize(
    "answer",
    [
        (500, b'{"error": "server_error"}'),
        (200, b"<html>not json</html>"),
        (200, b'{"credential": 42}'),
        (200, b'{"credential": "not.a.jwt"}'),
        (400, b'{"error": "invalid_request", "error_description": "no"}'),
    ],
    ids=["500", "html", "number", "not-a-jwt", "400"],
)
def test_a_service_talking_nonsense_is_a_clear_page(
    checking_idp, citizen_browser, fake_passport_office, answer
):
    idp, browser = checking_idp, citizen_browser
    fake_passport_office.raw_answer = answer
    page = browser.follow(start(browser, idp.issuer, "passport"))
    response = browser.submit(page, passport_fields(KENNETH))
    assert response.status_code == 503 and UNAVAILABLE in response.text
    assert events(idp)[-1]["event"] == "identity.evidence_refused"


@pytest.mark.parametrize(
    "keys",
    [
        (404, b"{}"),
        (200, b"not json"),
        (200, b'{"keys": "none"}'),
        (200, b'{"keys": [{"kty": "oct", "kid": "fake-1", "k": "c2VjcmV0"}]}'),
    ],
    ids=["404", "not-json", "no-list", "symmetric"],
)
def test_a_service_whose_keys_cannot_be_had_is_a_clear_page(
    checking_idp, citizen_browser, fake_passport_office, keys
):
    idp, browser = checking_idp, citizen_browser
    fake_passport_office.raw_keys = keys
    page = browser.follow(start(browser, idp.issuer, "passport"))
    response = browser.submit(page, passport_fields(KENNETH))
    assert response.status_code == 503 and UNAVAILABLE in response.text
    assert events(idp)[-1]["event"] == "identity.evidence_refused"


def test_a_slow_service_is_a_clear_page(
    checking_idp, citizen_browser, fake_passport_office, monkeypatch
):
    idp, browser = checking_idp, citizen_browser
    monkeypatch.setattr(evidence_client, "TIMEOUT", 0.3)
    fake_passport_office.delay = 1.0
    page = browser.follow(start(browser, idp.issuer, "passport"))
    response = browser.submit(page, passport_fields(KENNETH))
    assert response.status_code == 503 and UNAVAILABLE in response.text
    assert events(idp)[-1]["reason"] == "service unavailable: the passport service did not answer"


def test_questions_that_cannot_be_fetched_are_asked_for_again(
    checking_idp, citizen_browser, evidence_services
):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    page = browser.follow(browser.submit(page, passport_fields(KENNETH)))
    _with_services(idp, {**evidence_services, "kbv": f"http://127.0.0.1:{free_port()}"})
    down = browser.submit(page, KENNETH["address"])
    assert down.status_code == 503 and 'href="/identity/questions"' in down.text
    _with_services(idp, evidence_services)
    page = browser.follow(browser.get(idp.url("/identity/questions")))
    last = answer_questions(browser, page, KENNETH["answers"])
    assert PROVED in browser.follow(last).text


def test_without_evidence_services_no_check_is_offered(idp, make_citizen):
    citizen = make_citizen()
    browser = CitizenBrowser(idp.issuer)
    browser.sign_in(
        browser.follow(browser.get(idp.url("/sign-in"))), citizen["email"], citizen["password"]
    )
    page = browser.get(idp.url("/identity/start"))
    assert page.status_code == 200
    assert "You cannot prove your identity online here" in page.text
    assert "Return to" not in page.text
    assert 'href="/"' in page.text


def test_without_evidence_services_a_department_gets_the_citizen_back(
    idp, make_citizen, make_client
):
    """A department asking P2 of an IdP with no evidence services: the citizen is told, and
    goes back to it as one with no document (return code X)."""
    citizen = make_citizen()
    browser = CitizenBrowser(idp.issuer)
    browser.sign_in(
        browser.follow(browser.get(idp.url("/sign-in"))), citizen["email"], citizen["password"]
    )
    journey = department_journey(idp, browser, make_client)
    page = browser.get(idp.url(f"/identity/start?journey={journey}"))
    assert page.status_code == 200
    assert "Go back to Department dept-a to find another way" in page.text
    assert '<input type="hidden" name="document" value="neither">' in page.text
    back = browser.submit(page, {"document": "neither"})
    assert checks_of(idp, citizen["id"]) == [("failed", "X")]
    assert "You cannot prove your identity online" in browser.follow(back).text


# -- Bad input ---------------------------------------------------------------------------------


def test_the_start_page_needs_a_choice(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.get(idp.url("/identity/start"))
    for fields in ({}, {"document": "library card"}):
        refused = browser.submit(page, fields)
        assert refused.status_code == 400
        assert "There is a problem" in refused.text
        message = "Select if you have a UK passport, a UK photocard driving licence or neither"
        assert error_beside(refused.text, "document") == message
        assert 'href="#document"' in refused.text
    assert checks_of(idp, browser.citizen["id"]) == []


def test_the_signed_out_are_sent_to_sign_in(checking_idp):
    browser = CitizenBrowser(checking_idp.issuer)
    for path in ("start", "passport", "address", "questions", "proved", "not-proved"):
        response = browser.get(checking_idp.url(f"/identity/{path}"))
        assert response.status_code in (302, 303) and "/sign-in" in response.headers["location"]


PASSPORT_MISTAKES = [
    ({"given_names": ""}, "given_names", "Enter your given names as they appear on your passport"),
    (
        {"surname": "D3cerqueira"},
        "surname",
        "Surname must only include letters, spaces, hyphens and apostrophes",
    ),
    (
        {"birth_day": "", "birth_month": "", "birth_year": ""},
        "birth_day",
        "Enter your date of birth",
    ),
    ({"birth_month": ""}, "birth_month", "Date of birth must include a month"),
    (
        {"birth_day": "", "birth_year": ""},
        "birth_day",
        "Date of birth must include a day and a year",
    ),
    ({"birth_day": "31", "birth_month": "2"}, "birth_day", "Date of birth must be a real date"),
    ({"birth_year": "65"}, "birth_year", "Year must include 4 numbers"),
    ({"birth_year": "2990"}, "birth_day", "Date of birth must be in the past"),
    ({"passport_number": ""}, "passport_number", "Enter your passport number"),
    (
        {"passport_number": "32165498A"},
        "passport_number",
        "Passport number must only include numbers",
    ),
    ({"passport_number": "3216549"}, "passport_number", "Passport number must be 9 numbers long"),
    ({"expiry_day": "x"}, "expiry_day", "Expiry date must be a real date"),
]


def test_each_passport_mistake_is_explained_beside_its_field(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    for change, field, message in PASSPORT_MISTAKES:
        refused = browser.submit(page, {**passport_fields(KENNETH), **change})
        assert refused.status_code == 400, (change, refused.status_code)
        assert "There is a problem" in refused.text
        dated = field.startswith(("birth_", "expiry_"))
        beside = field.split("_")[0] if dated else field
        assert error_beside(refused.text, beside) == message, (change, message)
        assert f'href="#{field}"' in refused.text, (change, field)
    # Nothing reached the passport office.
    assert not [e for e in events(idp) if e["event"].startswith("identity.evidence")]
    # A month in words is understood.
    words = {**passport_fields(KENNETH), "birth_month": "July"}
    assert browser.submit(page, words).headers["location"] == "/identity/address"


def test_each_licence_and_address_mistake_is_explained(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "driving_licence"))
    for change, message in [
        ({"licence_number": ""}, "Enter your driving licence number"),
        ({"licence_number": "DECER607085K99"}, "Driving licence number must be 16 characters long"),
        ({"licence_number": "1ECER607085K99AE"}, "Enter your driving licence number as it appears"),
        ({"issue_year": "2099"}, "Issue date must be in the past"),
        (
            {"expiry_day": "", "expiry_month": "", "expiry_year": ""},
            "Enter the expiry date of your driving licence",
        ),
    ]:
        refused = browser.submit(page, {**licence_fields(KENNETH), **change})
        assert refused.status_code == 400 and message in refused.text, (change, message)
    page = browser.follow(browser.submit(page, licence_fields(KENNETH)))
    assert "Enter your address" in page.text, page.text[:600]
    for change, field, message in [
        ({"building": ""}, "building", "Enter the building number or name"),
        ({"street": ""}, "street", "Enter the street"),
        ({"town": ""}, "town", "Enter the town or city"),
        ({"postcode": ""}, "postcode", "Enter the postcode"),
        ({"postcode": "BATH"}, "postcode", "Enter a full UK postcode, like BA2 5AA"),
    ]:
        refused = browser.submit(page, {**KENNETH["address"], **change})
        assert refused.status_code == 400
        assert error_beside(refused.text, field) == message, (change, message)


def test_a_question_needs_one_of_its_answers(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    page = browser.follow(browser.submit(page, passport_fields(KENNETH)))
    page = browser.follow(browser.submit(page, KENNETH["address"]))
    assert "Question 1 of 3" in page.text
    asked = question_id(page.text)
    empty = browser.submit(page, {"question": asked})
    assert empty.status_code == 400 and error_beside(empty.text, "answer") == "Select an answer"
    made_up = browser.submit(page, {"answer": "A BANK I MADE UP", "question": asked})
    assert made_up.status_code == 400
    assert error_beside(made_up.text, "answer") == "Select one of the answers"
    # The pages cannot be skipped: the address is done, the questions are next.
    assert browser.get(idp.url("/identity/passport")).headers["location"] == "/identity/questions"
    assert browser.get(idp.url("/identity/address")).headers["location"] == "/identity/questions"


def test_pages_out_of_order_lead_to_the_step_due(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    for path in ("passport", "driving-licence", "address", "questions"):
        response = browser.get(idp.url(f"/identity/{path}"))
        assert response.headers["location"] == "/identity/start", path
    start(browser, idp.issuer, "driving_licence")
    assert browser.get(idp.url("/identity/passport")).headers["location"] == (
        "/identity/driving-licence"
    )
    assert browser.get(idp.url("/identity/proved")).headers["location"] == "/identity/start"
    assert browser.get(idp.url("/identity/not-proved")).headers["location"] == "/identity/start"


# -- Erasing ----------------------------------------------------------------------------------


def test_an_operator_erases_a_citizens_identity(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    assert PROVED in browser.follow(prove_with_passport(browser, idp.issuer, KENNETH)).text
    runner = idp.app.test_cli_runner()
    email = browser.citizen["email"]
    result = runner.invoke(cli, ["citizens", "forget-identity", email, "--reason", "ticket 77"])
    assert result.exit_code == 0, result.output
    assert f"erased the proved identity and identity checks of {email}" in result.output
    assert identity_of(idp, browser.citizen["id"]) == (None, "P0")
    assert checks_of(idp, browser.citizen["id"]) == []
    entry = events(idp)[-1]
    assert (entry["event"], entry["reason"], entry["existed"]) == (
        "identity.erased",
        "ticket 77",
        True,
    )
    # The citizen is asked to prove it again.
    assert browser.get(idp.url("/identity/start")).status_code == 200

    again = runner.invoke(cli, ["citizens", "forget-identity", email, "--reason", "ticket 78"])
    assert "had no proved identity" in again.output
    unknown = runner.invoke(
        cli, ["citizens", "forget-identity", "nobody@example.com", "--reason", "x"]
    )
    assert unknown.exit_code != 0 and "no citizen has the email address" in unknown.output
    blank = runner.invoke(cli, ["citizens", "forget-identity", email, "--reason", " "])
    assert blank.exit_code != 0 and "--reason must say why" in blank.output


def test_the_check_reference_binds_each_credential(checking_idp, citizen_browser):
    """The check's reference is what each credential names as its subject (sub)."""
    idp, browser = checking_idp, citizen_browser
    prove_with_passport(browser, idp.issuer, KENNETH)
    identity, _ = identity_of(idp, browser.citizen["id"])
    started = [e for e in events(idp) if e["event"] == "identity.check_started"][0]
    assert identity.reference == started["reference"]


def test_three_failed_checks_in_a_day_stop_a_fourth(checking_idp, citizen_browser, clock):
    idp, browser = checking_idp, citizen_browser
    for attempt in range(1, 4):
        page = browser.follow(start(browser, idp.issuer, "passport"))
        failed = browser.follow(browser.submit(page, passport_fields(PAUL)))
        assert NOT_CONFIRMED in failed.text
        # The third failure says so at once.
        assert ("Check your details and try again" in failed.text) == (attempt < 3)
        assert ("too many times today" in failed.text) == (attempt == 3)
    refused = browser.follow(start(browser, idp.issuer, "passport"))
    assert urlsplit(str(refused.url)).path == "/identity/not-proved"
    assert "You have tried to prove your identity too many times today" in refused.text
    assert "Check your details and try again" not in refused.text
    entry = events(idp)[-1]
    assert (entry["event"], entry["reason"], entry["return_code"]) == (
        "identity.failed",
        "too_many_failed_checks",
        "D",
    )
    # Nothing reached the passport office the fourth time.
    checked = [e for e in events(idp) if e["event"] == "identity.evidence_checked"]
    assert len(checked) == 3
    # Having no document does not count; a day later the citizen may try again.
    clock.advance(24 * 3600 + 60)
    sign_in = browser.follow(browser.get(idp.url("/sign-in")))
    browser.sign_in(sign_in, browser.citizen["email"], browser.citizen["password"])
    page = browser.follow(start(browser, idp.issuer, "passport"))
    assert "Enter your passport details" in page.text


def test_the_check_speaks_welsh(checking_idp, citizen_browser):
    idp, browser = checking_idp, citizen_browser
    page = browser.get(idp.url("/identity/start?lang=cy"))
    assert '<html lang="cy" ' in page.text and "Profi eich hunaniaeth" in page.text
    refused = browser.submit(page, {})
    assert error_beside(refused.text, "document") == (
        "Dewiswch a oes gennych basbort y DU, trwydded yrru cerdyn-llun y DU neu’r un o’r ddau"
    )
    page = browser.follow(browser.submit(page, {"document": "passport"}))
    refused = browser.submit(page, {**passport_fields(KENNETH), "birth_month": ""})
    assert error_beside(refused.text, "birth") == "Rhaid i’r dyddiad geni gynnwys mis"


def test_the_error_summary_lists_the_mistakes_in_the_order_of_the_page(
    checking_idp, citizen_browser
):
    idp, browser = checking_idp, citizen_browser
    page = browser.follow(start(browser, idp.issuer, "passport"))
    refused = browser.submit(page, {})
    links = re.findall(r'<a href="#([\w-]+)">', refused.text)
    assert links == ["surname", "given_names", "birth_day", "passport_number", "expiry_day"]
    fields = re.findall(r'<input[^>]* id="([\w-]+)"', refused.text)
    assert [f for f in fields if f in links] == links


def test_a_services_refusal_is_logged_by_its_code_never_its_words(
    checking_idp, citizen_browser, fake_passport_office
):
    """A service's error_description may quote what the citizen typed: the IdP's log names the
    refusal by its error code only."""
    idp, browser = checking_idp, citizen_browser
    fake_passport_office.raw_answer = (
        400,
        json.dumps(
            {"error": "invalid_request", "error_description": "no passport 321654987 for KENNETH"}
        ).encode(),
    )
    page = browser.follow(start(browser, idp.issuer, "passport"))
    with captured_log("idp") as logged:
        response = browser.submit(page, passport_fields(KENNETH))
    assert response.status_code == 503 and UNAVAILABLE in response.text
    text = logged.getvalue()
    assert "answered HTTP 400: invalid_request" in text
    assert "321654987" not in text and "KENNETH" not in text


def test_too_many_failed_checks_from_one_network_stop_every_account_there(
    checking_idp, make_citizen, clock
):
    """Each account has three failed checks a day; one network (IP address) has
    identity_network_max_failed_checks whoever's accounts fail, so many accounts cannot guess
    at the registers from one place. "Neither" does not count."""
    idp = checking_idp
    settings = idp.app.config["IDP_SETTINGS"]
    idp.app.config["IDP_SETTINGS"] = settings.replace(identity_network_max_failed_checks=2)

    def signed_in(citizen: dict) -> CitizenBrowser:
        browser = CitizenBrowser(idp.issuer)
        page = browser.follow(browser.get(idp.url("/sign-in")))
        browser.sign_in(page, citizen["email"], citizen["password"])
        return browser

    def choose_passport(browser: CitizenBrowser) -> httpx.Response:
        page = browser.follow(browser.get(idp.url("/identity/start")))
        return browser.submit(page, {"document": "passport"})

    try:
        citizens = [make_citizen(f"network{number}@example.com") for number in range(3)]
        for citizen in citizens[:2]:
            browser = signed_in(citizen)
            start(browser, idp.issuer, "neither")  # not a failure on the evidence
            page = browser.follow(start(browser, idp.issuer, "passport"))
            browser.submit(page, passport_fields(PAUL))  # expired: fails (D)
            assert checks_of(idp, citizen["id"])[-1] == ("failed", "D")

        third = citizens[2]
        refused = choose_passport(signed_in(third))
        assert refused.status_code == 429
        assert "You cannot check your identity from here today" in refused.text
        assert 0 < int(refused.headers["Retry-After"]) <= 86400
        assert events(idp)[-1]["event"] == "identity.check_refused"
        assert checks_of(idp, third["id"]) == []  # others' failures used none of its own

        clock.advance(86400 + 1)
        again = choose_passport(signed_in(third))
        assert again.status_code in (302, 303)
        assert again.headers["location"].startswith("/identity/passport")
    finally:
        idp.app.config["IDP_SETTINGS"] = settings

"""Calling the simulated evidence services as the IdP does."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.support.evidence import verified_credential

IDP_ISSUER = "https://idp.example.gov.uk"


class EvidenceCaller:
    """The IdP's side of the API: a fresh check reference and nonce per call."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.urls = urls

    def binding(self) -> dict:
        """A new sub (check reference), our issuer as aud, a new nonce."""
        return {"sub": secrets.token_urlsafe(12), "aud": IDP_ISSUER, "nonce": secrets.token_hex(8)}

    def post(self, kind: str, path: str, body) -> httpx.Response:
        """POST body (JSON) to the service."""
        return httpx.post(f"{self.urls[kind]}{path}", json=body)

    def check(self, kind: str, subject: dict) -> dict:
        """Check a subject; the verified claims of the credential returned."""
        response = self.post(kind, "/check", {**self.binding(), "subject": subject})
        assert response.status_code == 200, response.text
        return verified_credential(self.urls[kind], response.json()["credential"], IDP_ISSUER)

    def evidence(self, kind: str, subject: dict) -> dict:
        """The one evidence item of a checked subject's credential."""
        (item,) = self.check(kind, subject)["vc"]["evidence"]
        return item

    def questions(self, subject: dict, binding: dict | None = None) -> tuple[dict, list[dict]]:
        """Ask the knowledge-based questions: the binding used and the questions."""
        binding = binding or self.binding()
        response = self.post("kbv", "/questions", {**binding, "subject": subject})
        assert response.status_code == 200, response.text
        return binding, response.json()["questions"]

    def answer(self, binding: dict, answers: dict) -> dict:
        """Send the answers; the verified claims of the credential returned."""
        response = self.post("kbv", "/check", {**binding, "answers": answers})
        assert response.status_code == 200, response.text
        return verified_credential(self.urls["kbv"], response.json()["credential"], IDP_ISSUER)


@pytest.fixture
def caller(evidence_services) -> EvidenceCaller:
    """Call the services as the IdP does."""
    return EvidenceCaller(evidence_services)

"""The verifiable credential a check issues: a JWT signed ES256 with the service's key, shaped
as GOV.UK One Login's credential issuers shape theirs, and bound to the IdP's check (sub), the
IdP (aud) and the IdP's nonce."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import jwt

from evidence.keys import SIGNING_ALG, SigningKey
from evidence.subject import Binding

# A credential is for the IdP to collect at once, not to keep presenting.
CREDENTIAL_LIFETIME = 300
VC_CONTEXT = [
    "https://www.w3.org/2018/credentials/v1",
    "https://vocab.account.gov.uk/contexts/identity-v1.jsonld",
]
VC_TYPE = ["VerifiableCredential", "IdentityCheckCredential"]


@dataclass
class Evidence:
    """One IdentityCheck evidence item: the scores, contra-indicators and what was checked."""

    scores: dict[str, int]
    ci: list[str] = field(default_factory=list)
    check_details: list[dict] = field(default_factory=list)
    failed_check_details: list[dict] = field(default_factory=list)

    def as_claim(self) -> dict:
        """The evidence member of the credential, with a fresh transaction id."""
        claim: dict = {"type": "IdentityCheck", "txn": str(uuid.uuid4()), **self.scores}
        claim["ci"] = list(self.ci)
        if self.check_details:
            claim["checkDetails"] = self.check_details
        if self.failed_check_details:
            claim["failedCheckDetails"] = self.failed_check_details
        return claim


def issue_credential(
    key: SigningKey, issuer: str, binding: Binding, credential_subject: dict, evidence: Evidence
) -> str:
    """The signed VC JWT."""
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": binding.sub,
        "aud": binding.aud,
        "nbf": now,
        "iat": now,
        "exp": now + CREDENTIAL_LIFETIME,
        "jti": f"urn:uuid:{uuid.uuid4()}",
        "nonce": binding.nonce,
        "vc": {
            "@context": VC_CONTEXT,
            "type": VC_TYPE,
            "credentialSubject": credential_subject,
            "evidence": [evidence.as_claim()],
        },
    }
    return jwt.encode(
        claims, key.private_key, algorithm=SIGNING_ALG, headers={"kid": key.kid, "typ": "JWT"}
    )

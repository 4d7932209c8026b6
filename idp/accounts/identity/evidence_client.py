"""The IdP's side of the evidence services (a passport check, a driving licence check, an
address and fraud check, knowledge-based questions): the calls, server to server, and the
verification of each verifiable credential (a JWT) they issue.

Each service is configured by the operator (settings.evidence_services: base URLs by kind).
A request names the check (`sub`, the check's random reference), the IdP (`aud`, its issuer)
and a fresh `nonce`; the credential that comes back must be signed by that service's key (its
/.well-known/jwks.json, fetched and cached), and name that service, this IdP, this check and
this nonce, be within its validity, be an IdentityCheckCredential, and be about the same person
as the check's other credentials (name parts and birth date). Anything else is refused.

A service that does not answer, answers slowly or answers nonsense raises EvidenceUnavailable:
the citizen is told the check is not available at the moment, never shown an error page.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from idp import clock
from idp.settings import current_settings

# An OAuth-style error code (RFC 6749 5.2 shape), the only part of a refusal the IdP logs.
ERROR_CODE = re.compile(r"[a-z_]{1,40}")
log = logging.getLogger("idp.identity")

# Each call to a service must be answered within this many seconds.
TIMEOUT = 5.0
# A service's answer (a credential, a few questions, a JWKS) is small; bigger is nonsense.
MAX_ANSWER_BYTES = 64 * 1024
# A service's keys are kept this long (seconds of real time), and refetched at most this often
# for a key id not seen yet (a service that rotated its key).
JWKS_LIFETIME = 300.0
MIN_REFETCH_INTERVAL = 10.0
# Clock difference allowed between the IdP and a service (nbf, exp).
LEEWAY = 30
CREDENTIAL_TYPES = ("VerifiableCredential", "IdentityCheckCredential")


class EvidenceUnavailable(Exception):
    """A service could not be used: not configured, not answering, or answering nonsense."""


class CredentialRefused(Exception):
    """A credential that is not what it must be (signature, issuer, audience, subject, nonce,
    validity, type, or a different person). The message says which, for the audit record."""


@dataclass(frozen=True)
class Credential:
    """A verified credential: which check issued it, its claims, and what it says."""

    kind: str
    token: str
    claims: dict[str, Any]

    @property
    def subject(self) -> dict[str, Any]:
        """The credentialSubject: name, birthDate, and the address or document checked."""
        return self.claims["vc"]["credentialSubject"]

    @property
    def evidence(self) -> dict[str, Any]:
        """The first evidence item (scores, contra-indicators)."""
        return self.claims["vc"]["evidence"][0]


def new_nonce() -> str:
    """A fresh nonce for one request to a service."""
    return secrets.token_urlsafe(24)


def service_url(kind: str) -> str:
    """The configured base URL of one kind of service (no trailing slash)."""
    url = (current_settings().evidence_services or {}).get(kind)
    if not url:
        raise EvidenceUnavailable(f"no {kind} evidence service is configured")
    return str(url).rstrip("/")


def checks_offered() -> bool:
    """Whether the operator configured the evidence services (otherwise no check is offered)."""
    return bool(current_settings().evidence_services)


# -- Calls ------------------------------------------------------------------------------------


def _post(kind: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST JSON to a service; its JSON answer (an object), or EvidenceUnavailable."""
    url = service_url(kind) + path
    started = time.monotonic()
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as http:
            response = http.post(url, json=body, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        log.warning("the %s evidence service did not answer: %s", kind, type(exc).__name__)
        raise EvidenceUnavailable(f"the {kind} service did not answer") from None
    if time.monotonic() - started > TIMEOUT or len(response.content) > MAX_ANSWER_BYTES:
        raise EvidenceUnavailable(f"the {kind} service answered too slowly or too much")
    try:
        answer = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict):
        # The error code only: a service's error_description may quote what the citizen typed,
        # which never goes into the IdP's logs.
        described = ""
        code = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(code, str) and ERROR_CODE.fullmatch(code):
            described = ": " + code
        log.warning(
            "the %s evidence service answered HTTP %s%s", kind, response.status_code, described
        )
        raise EvidenceUnavailable(f"the {kind} service answered HTTP {response.status_code}")
    return answer


def _credential_from(kind: str, answer: dict[str, Any]) -> str:
    token = answer.get("credential")
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > MAX_ANSWER_BYTES:
        log.warning("the %s evidence service answered without a credential", kind)
        raise EvidenceUnavailable(f"the {kind} service answered without a credential")
    return token


def request_check(kind: str, reference: str, nonce: str, subject: dict[str, Any]) -> str:
    """Ask a service to check what the citizen typed; the credential (JWT) it issues."""
    body = {"sub": reference, "aud": current_settings().issuer, "nonce": nonce, "subject": subject}
    return _credential_from(kind, _post(kind, "/check", body))


def request_questions(reference: str, nonce: str, subject: dict[str, Any]) -> list[dict]:
    """The knowledge-based questions for this person: [{"id", "text", "choices"}], or
    EvidenceUnavailable when the answer is not that."""
    body = {"sub": reference, "aud": current_settings().issuer, "nonce": nonce, "subject": subject}
    answer = _post("kbv", "/questions", body)
    questions = answer.get("questions")
    well_formed = (
        isinstance(questions, list)
        and 0 < len(questions) <= 10
        and all(
            isinstance(q, dict)
            and isinstance(q.get("id"), str)
            and 0 < len(q["id"]) <= 64
            and isinstance(q.get("text"), str)
            and 0 < len(q["text"]) <= 500
            and isinstance(q.get("choices"), list)
            and 1 < len(q["choices"]) <= 10
            and all(isinstance(c, str) and 0 < len(c) <= 200 for c in q["choices"])
            for q in questions
        )
        and len({q["id"] for q in questions}) == len(questions)
    )
    if not well_formed:
        log.warning("the kbv evidence service answered questions that cannot be asked")
        raise EvidenceUnavailable("the kbv service answered questions that cannot be asked")
    return [{"id": q["id"], "text": q["text"], "choices": list(q["choices"])} for q in questions]


def request_answers_check(reference: str, nonce: str, answers: dict[str, str]) -> str:
    """Send the citizen's answers; the credential (JWT) the knowledge check issues."""
    body = {
        "sub": reference,
        "aud": current_settings().issuer,
        "nonce": nonce,
        "answers": answers,
    }
    return _credential_from("kbv", _post("kbv", "/check", body))


# -- The services' keys -----------------------------------------------------------------------


@dataclass
class _Keys:
    keys: dict[str, jwt.PyJWK]
    fetched_at: float


_keys: dict[str, _Keys] = {}
_lock = threading.Lock()


def _fetch_keys(base: str) -> dict[str, jwt.PyJWK]:
    url = base + "/.well-known/jwks.json"
    try:
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as http:
            response = http.get(url, headers={"Accept": "application/json"})
        if response.status_code != 200 or len(response.content) > MAX_ANSWER_BYTES:
            raise EvidenceUnavailable(f"{url} answered HTTP {response.status_code}")
        document = response.json()
    except (httpx.HTTPError, ValueError, RecursionError):
        raise EvidenceUnavailable(f"{url} could not be fetched") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise EvidenceUnavailable(f"{url} is not a JWKS document")
    keys: dict[str, jwt.PyJWK] = {}
    for item in document["keys"]:
        if not isinstance(item, dict) or "d" in item or not isinstance(item.get("kid"), str):
            continue  # private material or no key id: never used
        if item.get("kty") != "EC" or item.get("crv") != "P-256":
            continue
        try:
            keys[item["kid"]] = jwt.PyJWK(item, algorithm="ES256")
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue
    return keys


def _service_key(base: str, kid: str) -> jwt.PyJWK:
    """The service's public key with this key id (its JWKS, cached; refetched for a new kid)."""
    now = time.monotonic()
    with _lock:
        cached = _keys.get(base)
    if cached is not None and now - cached.fetched_at < JWKS_LIFETIME and kid in cached.keys:
        return cached.keys[kid]
    if cached is None or now - cached.fetched_at >= MIN_REFETCH_INTERVAL or kid in cached.keys:
        cached = _Keys(_fetch_keys(base), now)
        with _lock:
            _keys[base] = cached
    if kid not in cached.keys:
        raise CredentialRefused("signed by a key the service does not publish")
    return cached.keys[kid]


def forget_cached_keys() -> None:
    """Forget every service's keys (tests; a service that rotated its key)."""
    with _lock:
        _keys.clear()


# -- Verification -----------------------------------------------------------------------------


def _same_person(subject: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two credentialSubjects name the same person (name parts and birth date)."""

    def parts(s: dict[str, Any]) -> list:
        return [
            [(p.get("type"), str(p.get("value", "")).strip().upper()) for p in n.get("nameParts")]
            for n in s.get("name", [])
        ]

    def births(s: dict[str, Any]) -> list:
        return [b.get("value") for b in s.get("birthDate", [])]

    return parts(subject)[:1] == parts(other)[:1] and births(subject)[:1] == births(other)[:1]


def _well_formed_subject(subject: Any) -> bool:
    """name [{nameParts: [{type, value}...]}] and birthDate [{value}] as One Login writes them."""
    if not isinstance(subject, dict):
        return False
    names = subject.get("name")
    births = subject.get("birthDate")
    return (
        isinstance(names, list)
        and len(names) >= 1
        and all(
            isinstance(n, dict)
            and isinstance(n.get("nameParts"), list)
            and n["nameParts"]
            and all(
                isinstance(p, dict)
                and p.get("type") in {"GivenName", "FamilyName"}
                and isinstance(p.get("value"), str)
                for p in n["nameParts"]
            )
            for n in names
        )
        and isinstance(births, list)
        and len(births) >= 1
        and all(isinstance(b, dict) and isinstance(b.get("value"), str) for b in births)
    )


def verify(
    kind: str,
    token: str,
    reference: str,
    nonce: str,
    others: list[Credential] | tuple[Credential, ...] = (),
) -> Credential:
    """The credential a service of this kind issued for this check and nonce, verified;
    CredentialRefused says why not, EvidenceUnavailable when the service's keys cannot be had."""
    base = service_url(kind)
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, RecursionError):
        raise CredentialRefused("not a JWT") from None
    if header.get("alg") != "ES256":
        raise CredentialRefused(f"signed with {str(header.get('alg'))[:20]}, not ES256")
    if header.get("typ") not in (None, "JWT"):
        raise CredentialRefused("not typed JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise CredentialRefused("no key id")
    key = _service_key(base, kid)
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["ES256"],
            audience=current_settings().issuer,
            issuer=base,
            # Times are checked below against the IdP's clock (idp.clock).
            options={
                "require": ["iss", "sub", "aud", "exp", "nbf", "iat"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise CredentialRefused("the signature is not the service's") from None
    except jwt.InvalidAudienceError:
        raise CredentialRefused("issued to another audience") from None
    except jwt.InvalidIssuerError:
        raise CredentialRefused("issued by another issuer") from None
    except jwt.MissingRequiredClaimError as exc:
        raise CredentialRefused(f"no {exc.claim} claim") from None
    except (jwt.PyJWTError, RecursionError) as exc:
        raise CredentialRefused(f"cannot be read: {type(exc).__name__}") from None
    if claims["sub"] != reference:
        raise CredentialRefused("about another check (sub)")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(
        claims["nonce"], nonce
    ):
        raise CredentialRefused("not the nonce sent")
    now = clock.time()
    try:
        nbf, exp = float(claims["nbf"]), float(claims["exp"])
    except (TypeError, ValueError, OverflowError):
        raise CredentialRefused("nbf or exp is not a time") from None
    if nbf > now + LEEWAY:
        raise CredentialRefused("not valid yet (nbf)")
    if exp <= now - LEEWAY:
        raise CredentialRefused("expired (exp)")
    vc = claims.get("vc")
    if not isinstance(vc, dict) or not isinstance(vc.get("type"), list):
        raise CredentialRefused("no vc")
    if any(t not in vc["type"] for t in CREDENTIAL_TYPES):
        raise CredentialRefused("not an IdentityCheckCredential")
    evidence = vc.get("evidence")
    if (
        not isinstance(evidence, list)
        or not evidence
        or not isinstance(evidence[0], dict)
        or evidence[0].get("type") != "IdentityCheck"
    ):
        raise CredentialRefused("no IdentityCheck evidence")
    if not isinstance(evidence[0].get("ci", []), list):
        raise CredentialRefused("contra-indicators are not a list")
    subject = vc.get("credentialSubject")
    if not _well_formed_subject(subject):
        raise CredentialRefused("no name and birth date in credentialSubject")
    credential = Credential(kind=kind, token=token, claims=claims)
    for other in others:
        if not _same_person(subject, other.subject):
            raise CredentialRefused(f"about another person than the {other.kind} check")
    return credential


def decode_stored(kind: str, token: str) -> Credential:
    """A credential verified earlier in this check and stored encrypted: read again, unverified
    (its signature and claims were checked when it arrived, and it never left the IdP)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return Credential(kind=kind, token=token, claims=claims)

"""An identity check from start to end: the check in progress (an IdentityCheck row whose state
is encrypted), each credential the evidence services issue, the level they prove together,
the proved identity stored, and every step in the audit record.

The rules (as GOV.UK One Login scores its credential issuers' evidence):
- a passport passes with validityScore >= 2, strengthScore >= 4 and no contra-indicator;
  a driving licence with validityScore >= 2, strengthScore >= 3 and none;
- the address (and fraud) check passes with identityFraudScore >= 1 and no contra-indicator;
- the knowledge-based questions pass with verificationScore >= 2 and no contra-indicator.
P2 = an identity document, the address and the questions all passed, all about one person;
P1 = an identity document and the address passed. A check that fails ends there, with
One Login's return code (vocabulary.RETURN_CODES) a department can act on.

The audit record holds that a check happened, each step's outcome and contra-indicators, and
the level proved: never the document numbers, the names, the address or the answers.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from idp import audit, clock
from idp.accounts.identity import store
from idp.accounts.identity.evidence_client import Credential, decode_stored
from idp.accounts.identity.store import VerifiedIdentity
from idp.extensions import db
from idp.models import IdentityCheck, IdentityRecord
from idp.models.timestamps import utcnow
from idp.settings import current_settings

DOCUMENTS = ("passport", "driving_licence")
# What the check of each kind is called in the audit record and the return code it fails with.
FAILED_RETURN_CODE = {"passport": "D", "driving_licence": "D", "address": "F", "kbv": "K"}
FAILURE_REASONS = {
    "X": "no_document",
    "D": "document_not_confirmed",
    "F": "address_not_confirmed",
    "K": "questions_not_answered",
}
# The lowest scores that pass (One Login's credential issuers' scoring).
PASS_SCORES = {
    "passport": {"validityScore": 2, "strengthScore": 4},
    "driving_licence": {"validityScore": 2, "strengthScore": 3},
    "address": {"identityFraudScore": 1},
    "kbv": {"verificationScore": 2},
}
# A citizen whose checks failed this many times in a day (a document, the address or the
# questions not confirmed) may not start another until a day after the first of them: the
# questions and the registers must not be open to guessing.
MAX_FAILED_CHECKS = 3
# The return codes of checks that failed on the evidence (the daily limits count them).
EVIDENCE_RETURN_CODES = ("D", "F", "K")
# How long one request may hold a step of a check while its service answers (claim_step):
# longer than a service may take (evidence_client.TIMEOUT for the check and for its keys).
STEP_BUSY_SECONDS = 30.0
FAILED_CHECKS_WINDOW = timedelta(days=1)
# The details each kind of credential adds to the stored identity (One Login's shapes).
DETAILS_FROM = {"passport": "passport", "driving_licence": "drivingPermit", "address": "address"}


class CheckBusy(Exception):
    """A step of the citizen's check in progress is with its service now: no new check yet."""


@dataclass
class CheckState:
    """What a check in progress keeps between its pages (encrypted in IdentityCheck)."""

    # The department's journey that asked (None: started from the account page).
    journey: str | None
    # The level this check is for: "P1" (document and address) or "P2" (and the questions).
    target: str
    document: str | None = None
    # The credentials (JWTs) received, by kind; each verified when it arrived.
    credentials: dict[str, str] = field(default_factory=dict)
    # The knowledge-based questions asked, and the citizen's answers so far (dropped once sent).
    questions: list[dict] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    # Until when (idp.clock seconds) one request is checking a step with a service (claim_step).
    busy_until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "journey": self.journey,
            "target": self.target,
            "document": self.document,
            "credentials": self.credentials,
            "questions": self.questions,
            "answers": self.answers,
            "busy_until": self.busy_until,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckState:
        return cls(
            journey=data.get("journey"),
            target=data.get("target") or "P2",
            document=data.get("document"),
            credentials=dict(data.get("credentials") or {}),
            questions=list(data.get("questions") or []),
            answers=dict(data.get("answers") or {}),
            busy_until=float(data.get("busy_until") or 0.0),
        )

    def credential(self, kind: str) -> Credential | None:
        token = self.credentials.get(kind)
        return decode_stored(kind, token) if token else None

    def verified(self) -> list[Credential]:
        """The credentials received so far (document first)."""
        order = (*DOCUMENTS, "address", "kbv")
        return [decode_stored(k, self.credentials[k]) for k in order if k in self.credentials]

    def next_question(self) -> dict | None:
        for question in self.questions:
            if question["id"] not in self.answers:
                return question
        return None


@dataclass(frozen=True)
class Check:
    """A check in progress: its row and its state."""

    row: IdentityCheck
    state: CheckState

    @property
    def reference(self) -> str:
        return self.row.reference


# -- Checks in progress -----------------------------------------------------------------------


def start_check(
    citizen_id: int, journey: str | None, target: str, document: str, client_id: str | None
) -> Check:
    """A new check for the citizen, with the document they chose (committed). Any check of
    theirs still in progress ends now (expired): one check at a time, so that checks started
    in advance cannot each be failed in turn past the daily limit (too_many_failures).
    CheckBusy while a step of the one in progress is with its service (claim_step): its
    outcome must count before another check starts."""
    now = utcnow()
    latest = current_check(citizen_id)
    if latest is not None:
        if latest.state.busy_until > clock.time():
            raise CheckBusy
        ended = db.session.execute(
            update(IdentityCheck)
            .where(
                IdentityCheck.id == latest.row.id,
                IdentityCheck.outcome.is_(None),
                IdentityCheck.state_encrypted == latest.row.state_encrypted,
            )
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if ended != 1:
            db.session.rollback()
            raise CheckBusy  # a step was claimed (or the check ended) meanwhile
    db.session.execute(
        update(IdentityCheck)
        .where(
            IdentityCheck.citizen_id == citizen_id,
            IdentityCheck.outcome.is_(None),
            IdentityCheck.expires_at > now,
        )
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    row = IdentityCheck(
        reference=secrets.token_urlsafe(24),
        citizen_id=citizen_id,
        started_at=now,
        expires_at=now + timedelta(seconds=current_settings().identity_check_lifetime),
    )
    state = CheckState(journey=journey, target=target, document=document)
    row.state_encrypted = store.encrypt_json(state.to_json())
    db.session.add(row)
    db.session.flush()
    audit.record(
        "identity.check_started",
        citizen_id=citizen_id,
        client_id=client_id,
        reference=row.reference,
        document=document,
        identity_level_asked=target,
    )
    db.session.commit()
    return Check(row, state)


def current_check(citizen_id: int) -> Check | None:
    """The citizen's latest check still in progress, or None (none, ended or too old)."""
    row = db.session.scalar(
        select(IdentityCheck)
        .where(
            IdentityCheck.citizen_id == citizen_id,
            IdentityCheck.outcome.is_(None),
            IdentityCheck.expires_at > utcnow(),
        )
        .order_by(IdentityCheck.started_at.desc(), IdentityCheck.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    try:
        state = store.decrypt_json(row.state_encrypted)
    except store.UnreadableIdentity:
        return None  # encrypted with a key no longer configured: the citizen starts again
    return Check(row, CheckState.from_json(state))


def _checked_evidence(row: IdentityCheck) -> bool:
    """Whether a failed check reached an evidence service (a start refused by the limit did
    not: it must not push back the time the citizen was told they may try again)."""
    try:
        return bool(store.decrypt_json(row.state_encrypted).get("credentials"))
    except store.UnreadableIdentity:
        return True


def recent_failures(citizen_id: int) -> list[IdentityCheck]:
    """The citizen's checks that failed on the evidence (not for want of a document, nor
    refused by the limit) within the window, oldest first."""
    rows = list(
        db.session.scalars(
            select(IdentityCheck)
            .where(
                IdentityCheck.citizen_id == citizen_id,
                IdentityCheck.outcome == "failed",
                IdentityCheck.return_code.in_(EVIDENCE_RETURN_CODES),
                IdentityCheck.started_at > utcnow() - FAILED_CHECKS_WINDOW,
            )
            .order_by(IdentityCheck.started_at, IdentityCheck.id)
        )
    )
    return [row for row in rows if _checked_evidence(row)]


def too_many_failures(citizen_id: int) -> IdentityCheck | None:
    """The oldest of the recent failed checks when there are too many to start another."""
    failures = recent_failures(citizen_id)
    return failures[0] if len(failures) >= MAX_FAILED_CHECKS else None


def refuse_network(citizen_id: int, client_id: str | None) -> None:
    """No check starts: too many failed from this network today (audited; no check row, so
    the citizen's own limit is not used up by others' failures)."""
    audit.record(
        "identity.check_refused",
        "failure",
        reason="too_many_failed_checks_from_network",
        citizen_id=citizen_id,
        client_id=client_id,
    )


def refuse_start(
    citizen_id: int, journey: str | None, target: str, client_id: str | None, return_code: str
) -> Check:
    """Too many failed checks: this attempt is recorded as a check failed at once, with the
    code of the last failure (so a department's journey ends as the last check did)."""
    check = start_check(citizen_id, journey, target, "none", client_id)
    fail(check, return_code, client_id, reason="too_many_failed_checks")
    return check


def latest_check(citizen_id: int) -> IdentityCheck | None:
    """The citizen's latest check, whatever its outcome (for the result pages)."""
    return db.session.scalar(
        select(IdentityCheck)
        .where(IdentityCheck.citizen_id == citizen_id)
        .order_by(IdentityCheck.started_at.desc(), IdentityCheck.id.desc())
        .limit(1)
    )


def save_state(check: Check) -> None:
    """Store the check's state (encrypted) and commit; the step it was busy with is done."""
    check.state.busy_until = 0.0
    check.row.state_encrypted = store.encrypt_json(check.state.to_json())
    db.session.commit()


def claim_step(check: Check) -> bool:
    """Whether this request may send the check's current step to its service: only one at a
    time, so that the same step sent many times at once (each a guess, however many of them
    fail) cannot get past the daily limit on failed checks. A compare-and-swap on the stored
    state (its ciphertext, fresh each time it is written); the claim ends when the state is
    next saved (save_state, refuse_evidence) or the check ends, or after STEP_BUSY_SECONDS."""
    now = clock.time()
    if check.state.busy_until > now:
        return False
    before = check.row.state_encrypted
    check.state.busy_until = now + STEP_BUSY_SECONDS
    after = store.encrypt_json(check.state.to_json())
    claimed = db.session.execute(
        update(IdentityCheck)
        .where(
            IdentityCheck.id == check.row.id,
            IdentityCheck.outcome.is_(None),
            IdentityCheck.expires_at > utcnow(),  # not ended by a newer check (start_check)
            IdentityCheck.state_encrypted == before,
        )
        .values(state_encrypted=after)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return False
    check.row.state_encrypted = after
    return True


# -- Evidence ---------------------------------------------------------------------------------


def contra_indicators(credential: Credential) -> list[str]:
    """The contra-indicator codes of a credential's evidence (short strings only)."""
    return [str(c)[:8] for c in credential.evidence.get("ci") or []][:10]


def passed(credential: Credential) -> bool:
    """Whether a credential's evidence passes its kind's scores, with no contra-indicator."""
    evidence = credential.evidence
    if contra_indicators(credential):
        return False
    for score, lowest in PASS_SCORES[credential.kind].items():
        value = evidence.get(score)
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            return False
    return True


def add_evidence(check: Check, credential: Credential) -> bool:
    """Keep a verified credential in the check, record its outcome; whether it passed."""
    ok = passed(credential)
    check.state.credentials[credential.kind] = credential.token
    if credential.kind == "kbv":
        check.state.answers = {}  # sent and checked: the answers are not kept
    audit.record(
        "identity.evidence_checked",
        "success" if ok else "failure",
        reason=None if ok else "check_failed",
        citizen_id=check.row.citizen_id,
        reference=check.reference,
        kind=credential.kind,
        result="passed" if ok else "failed",
        ci=contra_indicators(credential),
    )
    save_state(check)
    return ok


def refuse_evidence(check: Check, kind: str, why: str) -> None:
    """A service could not be used, or its credential was refused: recorded, the check goes on
    (the citizen may try again)."""
    audit.record(
        "identity.evidence_refused",
        "failure",
        reason=why[:200],
        citizen_id=check.row.citizen_id,
        reference=check.reference,
        kind=kind,
    )
    save_state(check)


# -- The end of a check -----------------------------------------------------------------------


def level_proved(credentials: list[Credential]) -> str:
    """The level the passed credentials prove together: "P2", "P1" or "P0"."""
    ok = {c.kind for c in credentials if passed(c)}
    document = bool(ok.intersection(DOCUMENTS))
    if document and "address" in ok and "kbv" in ok:
        return "P2"
    if document and "address" in ok:
        return "P1"
    return "P0"


def details_of(credentials: list[Credential]) -> dict[str, Any]:
    """The verified details in One Login's shapes, from the document and address checks."""
    document = next(c for c in credentials if c.kind in DOCUMENTS)
    details: dict[str, Any] = {
        "name": document.subject["name"],
        "birthDate": document.subject["birthDate"],
    }
    for credential in credentials:
        key = DETAILS_FROM.get(credential.kind)
        if key and isinstance(credential.subject.get(key), list):
            details[key] = credential.subject[key]
    return details


def prove(check: Check, client_id: str | None = None) -> VerifiedIdentity | None:
    """End the check: the level its credentials prove, stored; None when they do not reach
    the level the check is for (the check is then failed with the code of what fell short)."""
    credentials = check.state.verified()
    level = level_proved(credentials)
    if level == "P0" or (check.state.target == "P2" and level != "P2"):
        missing = next(
            (c.kind for c in credentials if not passed(c)),
            "kbv" if level == "P1" else "address",
        )
        fail(check, FAILED_RETURN_CODE[missing], client_id)
        return None
    identity = store.save_identity(
        check.row.citizen_id, level, details_of(credentials), check.reference
    )
    check.row.outcome = "proved"
    check.row.state_encrypted = store.encrypt_json(check.state.to_json())
    audit.record(
        "identity.proved",
        citizen_id=check.row.citizen_id,
        client_id=client_id,
        reference=check.reference,
        identity_level=level,
        evidence=[c.kind for c in credentials],
    )
    db.session.commit()
    return identity


def fail(
    check: Check, return_code: str, client_id: str | None = None, reason: str | None = None
) -> None:
    """End the check as failed, with One Login's return code (committed)."""
    check.row.outcome = "failed"
    check.row.return_code = return_code
    check.state.answers = {}
    check.row.state_encrypted = store.encrypt_json(check.state.to_json())
    audit.record(
        "identity.failed",
        "failure",
        reason=reason or FAILURE_REASONS[return_code],
        citizen_id=check.row.citizen_id,
        client_id=client_id,
        reference=check.reference,
        return_code=return_code,
    )
    db.session.commit()


def no_document(citizen_id: int, journey: str | None, target: str, client_id: str | None) -> Check:
    """The citizen has neither document: a check started and failed at once ("X")."""
    check = start_check(citizen_id, journey, target, "none", client_id)
    fail(check, "X", client_id)
    return check


def forget_identity(citizen_id: int, reason: str, actor: str) -> bool:
    """Erase the citizen's proved identity, checks and disclosures (committed, audited);
    whether there was anything to erase."""
    had = (
        db.session.scalar(select(IdentityRecord.id).where(IdentityRecord.citizen_id == citizen_id))
        is not None
        or latest_check(citizen_id) is not None
    )
    store.erase_identity(citizen_id)
    audit.record(
        "identity.erased", citizen_id=citizen_id, reason=reason[:200], by=actor, existed=had
    )
    db.session.commit()
    return had

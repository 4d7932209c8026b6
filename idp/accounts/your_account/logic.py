"""Your account's logic: the departments' services that know the citizen (and forgetting one),
the citizen's proved identity and the verified details each department received, the browsers
signed in now, the recent sign-ins, and reporting something the citizen does not recognise
(signed out everywhere, and told what to do next)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp import audit
from idp.accounts.identity.vocabulary import (
    ADDRESS,
    CORE_IDENTITY_JWT,
    DRIVING_PERMIT,
    IDENTITY_CLAIMS,
    PASSPORT,
    RETURN_CODE,
)
from idp.accounts.sessions import end_every_session, sign_out_of_department
from idp.accounts.sign_in.logic import services_taking_part
from idp.dates import uk_datetime
from idp.extensions import db
from idp.mail import MailError, send_mail
from idp.models import (
    AuthorizationCode,
    BrowserSession,
    Citizen,
    Client,
    Consent,
    Department,
    IdentityDisclosure,
    IdentityRecord,
    RefreshToken,
    Token,
)
from idp.models.grant import revoke_live
from idp.models.timestamps import utcnow
from idp.settings import current_settings

HISTORY_LENGTH = 20


@dataclass(frozen=True)
class ConnectedService:
    """A department service the citizen agreed to share information with."""

    client_id: str
    name: str
    department: Department | None
    scope: str
    granted_at: datetime
    client: Client | None = None

    def name_in(self, language: str) -> str:
        """The service's name in a language (client_name#cy), for the local_name filter."""
        return self.client.name_in(language) if self.client else self.name


def connected_services(citizen: Citizen) -> list[ConnectedService]:
    """The services with a remembered consent, newest first."""
    rows = db.session.execute(
        db.select(Consent, Client)
        .join(Client, Client.client_id == Consent.client_id, isouter=True)
        .where(Consent.citizen_id == citizen.id)
        .order_by(Consent.granted_at.desc())
    ).all()
    return [
        ConnectedService(
            client_id=consent.client_id,
            name=client.client_name if client else consent.client_id,
            department=client.department if client else None,
            scope=consent.scope,
            granted_at=consent.granted_at,
            client=client,
        )
        for consent, client in rows
    ]


def revoke_service(citizen: Citizen, client_id: str) -> list[str] | None:
    """Forget the consent, end the service's live access and refresh tokens for this citizen,
    and sign the citizen out of it: it is sent a logout token for each session in which it
    received tokens. The verified identity details it was agreed to receive (One Login claim
    names) stop with the consent: those, for the page to name; None if it had no consent.

    What the service already received stays in the record of disclosures
    (IdentityDisclosure), shown as no longer shared: the service keeps its copy, and the
    citizen should go on seeing who has one."""
    consent = db.session.scalar(
        db.select(Consent).filter_by(citizen_id=citizen.id, client_id=client_id)
    )
    if consent is None:
        return None
    stopped = [claim for claim in IDENTITY_CLAIMS if claim in (consent.identity_claims or [])]
    db.session.delete(consent)
    now = utcnow()
    for model in (Token, RefreshToken):
        revoke_live(model, model.citizen_id == citizen.id, model.client_id == client_id, now=now)
    # A code issued but not yet redeemed would still give the service tokens: it expires now.
    db.session.execute(
        db.update(AuthorizationCode)
        .where(
            AuthorizationCode.citizen_id == citizen.id,
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.used_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(expires_at=now)
    )
    # The department stops showing the citizen signed in (back-channel logout).
    sign_out_of_department(citizen.id, client_id, "consent revoked")
    db.session.commit()
    audit.record(
        "consent.revoked",
        citizen_id=citizen.id,
        client_id=client_id,
        identity_claims=stopped or None,
    )
    return stopped


# -- The citizen's proved identity, and who received the verified details ----------------------

# GOV.UK One Login's levels of identity confidence, as the account page says them.
LEVEL_WORDS = {"P1": _l("low confidence"), "P2": _l("medium confidence")}
# Each verified detail (One Login's claim name) as the citizen reads it.
DETAIL_WORDS = {
    CORE_IDENTITY_JWT: _l("Your name and date of birth, as checked"),
    ADDRESS: _l("Your address, as checked"),
    PASSPORT: _l("Your passport details"),
    DRIVING_PERMIT: _l("Your driving licence details"),
    RETURN_CODE: _l("Why your identity could not be proved"),
}


def detail_words(claims: list[str]) -> list[str]:
    """Verified details in the citizen's words, in the vocabulary's order."""
    return [str(DETAIL_WORDS[claim]) for claim in IDENTITY_CLAIMS if claim in claims]


@dataclass(frozen=True)
class IdentityStatus:
    """What the account page says of the citizen's proved identity (never the details: they
    stay encrypted for the departments the citizen agrees to share them with)."""

    level: str
    checked_at: datetime
    expires_at: datetime
    expired: bool

    @property
    def level_words(self) -> str:
        """The level in words ("medium confidence")."""
        return str(LEVEL_WORDS.get(self.level, self.level))


def identity_status(citizen: Citizen) -> IdentityStatus | None:
    """The citizen's proved identity (current or expired), or None if they never proved it."""
    record = db.session.scalar(
        db.select(IdentityRecord).where(IdentityRecord.citizen_id == citizen.id)
    )
    if record is None:
        return None
    return IdentityStatus(
        level=record.level,
        checked_at=record.checked_at,
        expires_at=record.expires_at,
        expired=record.expires_at <= utcnow(),
    )


@dataclass(frozen=True)
class DetailShared:
    """One verified detail a service received: when first and last, and whether the citizen
    still shares it (their consent to that service includes it)."""

    claim: str
    first_shared_at: datetime
    last_shared_at: datetime
    still_shared: bool

    @property
    def words(self) -> str:
        """The detail in the citizen's words."""
        return str(DETAIL_WORDS.get(self.claim, self.claim))


@dataclass(frozen=True)
class DetailsReceived:
    """The verified details one service received."""

    client_id: str
    name: str
    department: Department | None
    details: list[DetailShared]
    client: Client | None = None

    def name_in(self, language: str) -> str:
        """The service's name in a language (client_name#cy), for the local_name filter."""
        return self.client.name_in(language) if self.client else self.name


def details_received(citizen: Citizen) -> list[DetailsReceived]:
    """Per service, the verified details it received (IdentityDisclosure, written when it
    collects them), the most recently shared service first."""
    rows = db.session.execute(
        db.select(IdentityDisclosure, Client, Consent)
        .join(Client, Client.client_id == IdentityDisclosure.client_id, isouter=True)
        .join(
            Consent,
            (Consent.client_id == IdentityDisclosure.client_id)
            & (Consent.citizen_id == IdentityDisclosure.citizen_id),
            isouter=True,
        )
        .where(IdentityDisclosure.citizen_id == citizen.id)
    ).all()
    services: dict[str, DetailsReceived] = {}
    for disclosure, client, consent in rows:
        service = services.setdefault(
            disclosure.client_id,
            DetailsReceived(
                client_id=disclosure.client_id,
                name=client.client_name if client else disclosure.client_id,
                department=client.department if client else None,
                details=[],
                client=client,
            ),
        )
        agreed = (consent.identity_claims or []) if consent else []
        service.details.append(
            DetailShared(
                claim=disclosure.claim,
                first_shared_at=disclosure.first_shared_at,
                last_shared_at=disclosure.last_shared_at,
                still_shared=disclosure.claim in agreed,
            )
        )
    order = {claim: i for i, claim in enumerate(IDENTITY_CLAIMS)}
    for service in services.values():
        service.details.sort(key=lambda d: order.get(d.claim, len(order)))
    return sorted(
        services.values(),
        key=lambda s: max(d.last_shared_at for d in s.details),
        reverse=True,
    )


def live_sessions(citizen: Citizen) -> list[BrowserSession]:
    """The browsers signed in now, most recently used first."""
    now = utcnow()
    return list(
        db.session.scalars(
            db.select(BrowserSession)
            .where(
                BrowserSession.citizen_id == citizen.id,
                BrowserSession.ended_at.is_(None),
                BrowserSession.expires_at > now,
            )
            .order_by(BrowserSession.last_active_at.desc())
        )
    )


def _completed_by(session: BrowserSession, successor: BrowserSession | None) -> bool:
    """The session was a step of a sign-in that its successor finished: the password step,
    replaced in the same browser by the session that added the second factor (the successor
    has every method it had, and more)."""
    if successor is None:
        return False
    methods, later = set(session.amr or []), set(successor.amr or [])
    return methods < later


def sign_in_history(citizen: Citizen) -> list[BrowserSession]:
    """Recent sign-ins (kept 30 days), newest first: one row per sign-in, so the password
    step that the second factor completed is not a row of its own (the second factor starts
    a new session, idp/accounts/second_factor/logic.py step_up). A password step nobody
    finished stays: someone knew the password."""
    sessions = list(
        db.session.scalars(
            db.select(BrowserSession)
            .where(BrowserSession.citizen_id == citizen.id)
            .order_by(BrowserSession.created_at.desc(), BrowserSession.id.desc())
            .limit(HISTORY_LENGTH * 2)
        )
    )
    by_id = {session.id: session for session in sessions}
    missing = {s.replaced_by_id for s in sessions if s.replaced_by_id not in (None, *by_id)}
    if missing:
        by_id.update(
            (row.id, row)
            for row in db.session.scalars(
                db.select(BrowserSession).where(BrowserSession.id.in_(missing))
            )
        )
    completed = [
        s
        for s in sessions
        if not _completed_by(s, by_id.get(s.replaced_by_id) if s.replaced_by_id else None)
    ]
    return completed[:HISTORY_LENGTH]


# -- Reporting something the citizen does not recognise ------------------------------------------


def report_unrecognised(session: BrowserSession, language: str) -> list[Client]:
    """The citizen saw something on their account they did not do: every browser is signed
    out, every department's token ends (each registered for back-channel logout is told), the
    report is audited and the owner is emailed what to do next. The services they were signed
    in to, for the page to name."""
    citizen = session.citizen
    live = [s.id for s in live_sessions(citizen)]
    services = services_taking_part(live)
    ended = end_every_session(citizen.id, "reported by owner")
    db.session.commit()
    audit.record(
        "citizen.reported_unrecognised",
        citizen_id=citizen.id,
        sid=session.sid,
        sessions_ended=ended,
        services=[service.client_id for service in services],
    )
    _tell_owner_of_report(citizen, language)
    return services


def _tell_owner_of_report(citizen: Citizen, language: str) -> None:
    """The email: what happened and what to do next, so the owner has it after the page."""
    settings = current_settings()
    steps = [
        _(
            "You told us you did not recognise something on your government sign in account,"
            " at %(time)s. We have signed you out of every browser and every service.",
            time=uk_datetime(utcnow(), language),
        ),
        _("What to do next:"),
        _(
            "1. Reset your password at %(url)s. Do not use a password you use anywhere else.",
            url=f"{settings.issuer}/reset-password",
        ),
        _(
            "2. Sign in and check your authenticator app, passkeys and recovery codes. Remove"
            " any you do not recognise, and make new recovery codes."
        ),
        _(
            "3. If someone may have used your account to do something with a government"
            " service, contact that service."
        ),
    ]
    if settings.support_contact:
        steps.append(_("For help, contact %(contact)s.", contact=settings.support_contact))
    try:
        send_mail(
            citizen.email, _("You reported something you did not recognise"), "\n\n".join(steps)
        )
    except MailError as exc:
        # The citizen is signed out either way; the page tells them the same steps.
        logging.getLogger("idp").warning("report email not sent: %s", exc)

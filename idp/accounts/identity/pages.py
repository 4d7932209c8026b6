"""The citizen's identity check: GOV.UK question pages, one thing per page.

/identity/start (why, and which document: a UK passport, a UK photocard driving licence, or
neither), then the document's details (/identity/passport or /identity/driving-licence), the
address (/identity/address), and for P2 the knowledge-based questions one per page
(/identity/questions). Each step's details go to its evidence service as the citizen
continues (evidence_client), and its credential is verified before the next step.

A department's journey (journey=H) asks for a level (requested_identity_level); the account
page's start (no journey) proves P2. A citizen whose current identity already meets the level
is not asked again. When the check ends (proved or failed), or the citizen has neither
document, the IdentityCheck keeps the outcome and return code and, for a department's
journey, the citizen goes on to url_for("authorize.resume", journey=H): at once when proved,
from the not-proved page's "Return to the service" button when not. Without a journey the
result pages (/identity/proved, /identity/not-proved) say what happened.

An evidence service that is down or answers nonsense, or a credential that is refused, shows
"Sorry, we cannot check your identity at the moment" (503): never an error page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from idp.accounts.guards import fully_signed_in
from idp.accounts.identity import evidence_client as evidence
from idp.accounts.identity import logic
from idp.accounts.identity.forms import (
    AddressForm,
    DocumentForm,
    DrivingLicenceForm,
    PassportForm,
    QuestionForm,
)
from idp.accounts.identity.logic import Check
from idp.accounts.identity.store import UnreadableIdentity, current_identity, identity_level
from idp.accounts.levels import meets_identity, requested_identity_level
from idp.accounts.page_helpers import journey_context, page
from idp.oidc.journey import find_interaction, interaction_params
from idp.security import throttle
from idp.settings import current_settings

bp = Blueprint("identity", __name__, url_prefix="/identity")

DOCUMENT_PAGES = {"passport": "identity.passport", "driving_licence": "identity.driving_licence"}
BUILDING_NUMBER = re.compile(r"^\d+[A-Za-z]?$")


# -- Helpers ----------------------------------------------------------------------------------


def _journey_arg() -> str | None:
    return (request.values.get("journey") or "").strip()[:64] or None


def _target_level(journey: str | None) -> str:
    """The level a department's journey asks for; P2 from the account page (or P0 asked)."""
    interaction = find_interaction(journey)
    asked = requested_identity_level(interaction_params(interaction)) if interaction else "P0"
    return asked if asked != "P0" else "P2"


def _client_id(journey: str | None) -> str | None:
    client = journey_context(journey)["client"]
    return client.client_id if client else None


def too_many_from_network(journey: str | None, retry_after: int) -> tuple:
    """No check starts from this network today: too many failed from it (429)."""
    return page(
        "identity/too_many_from_network.html",
        429,
        {"Retry-After": str(retry_after)},
        wait=throttle.wait_in_words(retry_after),
        **_service(journey),
    )


def unavailable(journey: str | None, retry: str | None = None) -> tuple:
    """The check cannot go on now: a clear page, 503, a way to try again."""
    return page(
        "identity/unavailable.html",
        503,
        {"Retry-After": "60"},
        retry=retry or url_for("identity.start", journey=journey),
        **_service(journey),
    )


def _service(journey: str | None) -> dict:
    context = journey_context(journey)
    return {"client": context["client"], "journey": context["journey"]}


def _expired_journey() -> tuple:
    message = _(
        "Your sign-in took too long or the link is no longer valid. "
        "Go back to the service you were using and start again."
    )
    return page("error.html", 400, message=message)


def _next_step(check: Check) -> Response:
    """Where a check in progress goes next."""
    state = check.state
    journey = state.journey
    if state.document in DOCUMENT_PAGES and state.document not in state.credentials:
        return redirect(url_for(DOCUMENT_PAGES[state.document], journey=journey))
    if "address" not in state.credentials:
        return redirect(url_for("identity.address", journey=journey))
    return redirect(url_for("identity.questions", journey=journey))


def _network_key() -> str:
    return f"identity:network:{request.remote_addr or ''}"


def _ended(check: Check) -> Response:
    """Where the citizen goes once the check has ended (its row holds the outcome). A check
    failed on the evidence counts against this network's daily limit too."""
    journey = check.state.journey
    if check.row.outcome == "failed" and check.row.return_code in logic.EVIDENCE_RETURN_CODES:
        throttle.use_quota(
            "identity_check", _network_key(), current_settings().identity_network_window_seconds
        )
    if check.row.outcome == "proved":
        if journey and find_interaction(journey) is not None:
            return redirect(url_for("authorize.resume", journey=journey))
        return redirect(url_for("identity.proved"))
    return redirect(url_for("identity.not_proved", journey=journey))


def _in_progress(current, step: str) -> Check | Response:
    """The citizen's check in progress when it is at this step; otherwise where to go."""
    check = logic.current_check(current.citizen_id)
    if check is None:
        return redirect(url_for("identity.start", journey=_journey_arg()))
    state = check.state
    at = (
        DOCUMENT_PAGES.get(state.document)
        if state.document not in state.credentials
        else "identity.address"
        if "address" not in state.credentials
        else "identity.questions"
    )
    if at != step:
        return _next_step(check)
    return check


def _use_credential(check: Check, kind: str, token: str, nonce: str) -> bool | None:
    """Verify a credential and add it to the check: whether it passed; None when refused."""
    try:
        credential = evidence.verify(kind, token, check.reference, nonce, check.state.verified())
    except evidence.CredentialRefused as refused:
        logic.refuse_evidence(check, kind, f"credential refused: {refused}")
        return None
    except evidence.EvidenceUnavailable as problem:
        logic.refuse_evidence(check, kind, f"service unavailable: {problem}")
        return None
    return logic.add_evidence(check, credential)


def _run_check(check: Check, kind: str, subject: dict) -> bool | None:
    """Send what the citizen typed to the service of this kind; whether it passed (None: the
    service could not be used, or its credential was refused, or another request is checking
    this step now)."""
    if not logic.claim_step(check):
        return None
    nonce = evidence.new_nonce()
    try:
        token = evidence.request_check(kind, check.reference, nonce, subject)
    except evidence.EvidenceUnavailable as problem:
        logic.refuse_evidence(check, kind, f"service unavailable: {problem}")
        return None
    return _use_credential(check, kind, token, nonce)


def _after_failure(check: Check, kind: str) -> Response:
    logic.fail(check, logic.FAILED_RETURN_CODE[kind], _client_id(check.state.journey))
    return _ended(check)


def _name(given_names: str, surname: str) -> list[dict]:
    parts = [{"type": "GivenName", "value": name} for name in given_names.split()]
    return [{"nameParts": [*parts, {"type": "FamilyName", "value": surname}]}]


# -- Start ------------------------------------------------------------------------------------


@bp.route("/start", methods=["GET", "POST"])
@fully_signed_in
def start(*, current) -> Response:
    """Why, and which document the citizen has (journey=H when a department asked)."""
    journey = _journey_arg()
    if journey and find_interaction(journey) is None:
        return _expired_journey()
    target = _target_level(journey)
    if meets_identity(identity_level(current.citizen_id), target):
        if journey:
            return redirect(url_for("authorize.resume", journey=journey))
        return redirect(url_for("identity.proved"))
    form = DocumentForm()
    if not evidence.checks_offered() and not (
        form.is_submitted() and form.document.data == "neither"
    ):
        # No evidence services are configured: no check can start, but a department's
        # journey can still go back to it (as with no document: return code X).
        form.journey.data = journey
        return page("identity/not_offered.html", 200, form=form, **_service(journey))
    if form.validate_on_submit():
        client_id = _client_id(journey)
        choice = form.document.data
        try:
            if choice == "neither":
                check = logic.no_document(current.citizen_id, journey, target, client_id)
                return _ended(check)
            network = throttle.check_quota(
                "identity_check",
                _network_key(),
                current_settings().identity_network_max_failed_checks,
            )
            if not network.allowed:
                logic.refuse_network(current.citizen_id, client_id)
                return too_many_from_network(journey, network.retry_after)
            if logic.too_many_failures(current.citizen_id) is not None:
                latest = logic.recent_failures(current.citizen_id)[-1]
                logic.refuse_start(
                    current.citizen_id, journey, target, client_id, latest.return_code
                )
                return redirect(url_for("identity.not_proved", journey=journey))
            logic.start_check(current.citizen_id, journey, target, choice, client_id)
        except logic.CheckBusy:
            # A step of the check in progress is with its service: its outcome first.
            return unavailable(journey)
        return redirect(url_for(DOCUMENT_PAGES[choice], journey=journey))
    form.journey.data = journey
    status = 400 if form.is_submitted() else 200
    return page("identity/start.html", status, form=form, target=target, **_service(journey))


# -- The document -----------------------------------------------------------------------------


def _document_page(current, kind: str, form, template: str, subject_of) -> Response:
    check = _in_progress(current, DOCUMENT_PAGES[kind])
    if not isinstance(check, Check):
        return check
    journey = check.state.journey
    if form.validate_on_submit():
        passed = _run_check(check, kind, subject_of(form))
        if passed is None:
            return unavailable(journey, url_for(DOCUMENT_PAGES[kind], journey=journey))
        if not passed:
            return _after_failure(check, kind)
        return redirect(url_for("identity.address", journey=journey))
    form.journey.data = journey
    status = 400 if form.is_submitted() else 200
    return page(template, status, form=form, **_service(journey))


@bp.route("/passport", methods=["GET", "POST"])
@fully_signed_in
def passport(*, current) -> Response:
    """The passport's details: names, date of birth, number, expiry date."""

    def subject(form: PassportForm) -> dict:
        return {
            "name": _name(form.given_names.data, form.surname.data),
            "birthDate": [{"value": form.dates["birth"].isoformat()}],
            "passport": [
                {
                    "documentNumber": form.passport_number.data,
                    "expiryDate": form.dates["expiry"].isoformat(),
                    "icaoIssuerCode": "GBR",
                }
            ],
        }

    return _document_page(current, "passport", PassportForm(), "identity/passport.html", subject)


@bp.route("/driving-licence", methods=["GET", "POST"])
@fully_signed_in
def driving_licence(*, current) -> Response:
    """The photocard driving licence's details: names, date of birth, number, dates."""

    def subject(form: DrivingLicenceForm) -> dict:
        return {
            "name": _name(form.given_names.data, form.surname.data),
            "birthDate": [{"value": form.dates["birth"].isoformat()}],
            "drivingPermit": [
                {
                    "personalNumber": form.licence_number.data,
                    "issueDate": form.dates["issue"].isoformat(),
                    "expiryDate": form.dates["expiry"].isoformat(),
                    "issuedBy": "DVLA",
                }
            ],
        }

    form = DrivingLicenceForm()
    return _document_page(
        current, "driving_licence", form, "identity/driving_licence.html", subject
    )


# -- The address ------------------------------------------------------------------------------


def _person(check: Check) -> dict:
    """The name and birth date the document check confirmed (not what was typed)."""
    document = check.state.verified()[0]
    return {"name": document.subject["name"], "birthDate": document.subject["birthDate"]}


def _ask_questions(check: Check) -> Response:
    """Fetch the knowledge-based questions for this person, then the first question."""
    journey = check.state.journey
    address = check.state.credential("address")
    subject = {**_person(check), "address": address.subject.get("address", [])}
    try:
        questions = evidence.request_questions(check.reference, evidence.new_nonce(), subject)
    except evidence.EvidenceUnavailable as problem:
        logic.refuse_evidence(check, "kbv", f"service unavailable: {problem}")
        return unavailable(journey, url_for("identity.questions", journey=journey))
    check.state.questions = questions
    check.state.answers = {}
    logic.save_state(check)
    return redirect(url_for("identity.questions", journey=journey))


@bp.route("/address", methods=["GET", "POST"])
@fully_signed_in
def address(*, current) -> Response:
    """The citizen's current address: building, street, town, postcode."""
    check = _in_progress(current, "identity.address")
    if not isinstance(check, Check):
        return check
    journey = check.state.journey
    form = AddressForm()
    if form.validate_on_submit():
        building = form.building.data
        place = (
            {"buildingNumber": building}
            if BUILDING_NUMBER.match(building)
            else {"buildingName": building}
        )
        subject = {
            **_person(check),
            "address": [
                {
                    **place,
                    "streetName": form.street.data.upper(),
                    "addressLocality": form.town.data.upper(),
                    "postalCode": form.postcode.data,
                    "addressCountry": "GB",
                }
            ],
        }
        passed = _run_check(check, "address", subject)
        if passed is None:
            return unavailable(journey, url_for("identity.address", journey=journey))
        if not passed:
            return _after_failure(check, "address")
        if check.state.target == "P1":
            logic.prove(check, _client_id(journey))
            return _ended(check)
        return _ask_questions(check)
    form.journey.data = journey
    status = 400 if form.is_submitted() else 200
    return page("identity/address.html", status, form=form, **_service(journey))


# -- Knowledge-based questions ----------------------------------------------------------------


@bp.route("/questions", methods=["GET", "POST"])
@fully_signed_in
def questions(*, current) -> Response:
    """One knowledge-based question per page; the answers are sent once all are answered."""
    check = _in_progress(current, "identity.questions")
    if not isinstance(check, Check):
        return check
    journey = check.state.journey
    if not check.state.questions:
        return _ask_questions(check)  # fetching them failed before: try again
    question = check.state.next_question()
    if question is None:
        # Every answer was kept but the answers were not checked (a request sending them
        # stopped half way): unless one is sending them now, ask the questions again.
        if not logic.claim_step(check):
            return unavailable(journey, url_for("identity.questions", journey=journey))
        check.state.answers = {}
        logic.save_state(check)
        return redirect(url_for("identity.questions", journey=journey))
    form = QuestionForm()
    form.answer.choices = [SelectChoice(choice, choice) for choice in question["choices"]]
    form.answer.label.text = question["text"]
    if form.validate_on_submit():
        if form.question.data != question["id"]:
            # An older page's form (the back button): ask the question due now.
            return redirect(url_for("identity.questions", journey=journey))
        if form.answer.data not in question["choices"]:
            form.answer.errors.append(_("Select one of the answers"))
        else:
            check.state.answers[question["id"]] = form.answer.data
            if check.state.next_question() is not None:
                logic.save_state(check)
                return redirect(url_for("identity.questions", journey=journey))
            return _send_answers(check)
    form.question.data = question["id"]
    form.journey.data = journey
    number = check.state.questions.index(question) + 1
    status = 400 if form.is_submitted() else 200
    return page(
        "identity/question.html",
        status,
        form=form,
        number=number,
        total=len(check.state.questions),
        **_service(journey),
    )


def _send_answers(check: Check) -> Response:
    journey = check.state.journey
    if not logic.claim_step(check):
        # Another request is sending the answers now.
        return unavailable(journey, url_for("identity.questions", journey=journey))
    nonce = evidence.new_nonce()
    try:
        token = evidence.request_answers_check(check.reference, nonce, check.state.answers)
    except evidence.EvidenceUnavailable as problem:
        logic.refuse_evidence(check, "kbv", f"service unavailable: {problem}")
        return _questions_again(check)
    passed = _use_credential(check, "kbv", token, nonce)
    if passed is None:
        return _questions_again(check)
    if not passed:
        return _after_failure(check, "kbv")
    logic.prove(check, _client_id(journey))
    return _ended(check)


def _questions_again(check: Check) -> tuple:
    """The answers could not be checked: the questions are asked again (fresh) next time."""
    check.state.questions = []
    check.state.answers = {}
    logic.save_state(check)
    journey = check.state.journey
    return unavailable(journey, url_for("identity.questions", journey=journey))


# -- Results ----------------------------------------------------------------------------------


@bp.get("/proved")
@fully_signed_in
def proved(*, current) -> Response:
    """The citizen's proved identity: at which level, and until when."""
    try:
        identity = current_identity(current.citizen_id)
    except UnreadableIdentity:
        message = _("Your proved identity cannot be read at the moment. Try again later.")
        return page("error.html", 503, message=message)
    if identity is None:
        return redirect(url_for("identity.start"))
    name_parts = identity.details["name"][0]["nameParts"]
    name = " ".join(p["value"] for p in name_parts)
    return render_template(
        "identity/proved.html",
        identity=identity,
        name=name,
        birth_date=_as_date(identity.details["birthDate"][0]["value"]),
    )


def _as_date(value: str) -> datetime | None:
    """An ISO date from the details, as a moment the date filters write for people."""
    try:
        return datetime.fromisoformat(value).replace(hour=12, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


@bp.get("/not-proved")
@fully_signed_in
def not_proved(*, current) -> Response:
    """Why the check did not prove the citizen's identity, and what they can do."""
    journey = _journey_arg()
    check = logic.latest_check(current.citizen_id)
    if check is None or check.outcome != "failed":
        return redirect(url_for("identity.start", journey=journey))
    context = _service(journey)
    resume = url_for("authorize.resume", journey=context["journey"]) if context["journey"] else None
    limited = logic.too_many_failures(current.citizen_id)
    again_at = limited.started_at + logic.FAILED_CHECKS_WINDOW if limited else None
    return render_template(
        "identity/not_proved.html",
        return_code=check.return_code,
        resume=resume,
        again_at=again_at,
        **context,
    )

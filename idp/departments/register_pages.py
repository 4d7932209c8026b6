"""Registering a new service, one question a page (GOV.UK Design System: "Question pages" and
"Check answers"): the name, where citizens return, what the service needs to know, how it
proves who it is, where citizens go after signing out and its logo; then a page to check the
answers, whose button registers the service through the same create_registration and
registration policy (metadata.py) as every other way of registering.

The answers are kept in Flask's signed session cookie between pages (they are all public:
names, addresses, a public key), under the member's staff ID so nobody else signing in on
the same browser sees them. Each page checks its own answer against the registration policy
as soon as it is given; a refusal the policy only finds on the final check (a name another
active service has) is shown on the page it concerns. Editing a registered service keeps
the one-page form (views.py), as does registering with the rarer settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException

from idp.accounts.identity.vocabulary import IDENTITY_CLAIMS
from idp.departments.forms import (
    INFORMATION_CHOICES,
    NO_IDENTITY,
    PROOF_CHOICES,
    IdentityForm,
    InformationForm,
    LogoForm,
    ProofForm,
    PublicKeyError,
    RegisterServiceForm,
    ReturnAddressesForm,
    ServiceNameForm,
    SignOutAddressesForm,
    identity_claim_words,
    public_key_jwks,
)
from idp.departments.metadata import ClientMetadataError, validate_client_metadata
from idp.departments.services import RegistrationError, create_registration
from idp.models import StaffMember
from idp.staff.guards import english_only, staff_required
from idp.staff.pages import staff_error

bp = english_only(Blueprint("register_service", __name__, url_prefix="/departments/services/new"))
bp.register_error_handler(HTTPException, staff_error)

ANSWERS = "register_service"
# Flask's session is a cookie, which browsers keep only up to about 4 KB: the answers stay
# well below it, with room for the CSRF token.
MAX_ANSWERS_LENGTH = 3000
# Stands in for the answers not being checked, so a page's own answer can be put to the
# registration policy on its own.
STAND_IN = {
    "redirect_uris": ["https://service.example.gov.uk/"],
    "token_endpoint_auth_method": "none",
}
# The form field each policy refusal is about (ClientMetadataError.field).
POLICY_FIELDS = {
    "client_name": "client_name",
    "client_name#cy": "client_name_cy",
    "redirect_uris": "redirect_uris",
    "sector_identifier_uri": "redirect_uris",
    "scope": "scopes",
    "identity_claims": "identity_claims",
    "token_endpoint_auth_method": "method",
    "jwks": "public_key",
    "jwks_uri": "jwks_uri",
    "post_logout_redirect_uris": "post_logout_redirect_uris",
    "logo_uri": "logo_uri",
}


class AnswerRefused(ValueError):
    """An answer cannot be used; names the form field it is about."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _lines(text: str | None) -> list[str]:
    """Non-empty lines of a text area."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _policy_check(part: dict[str, Any]) -> None:
    """Put one page's answer to the registration policy now, rather than at the end."""
    try:
        validate_client_metadata({**STAND_IN, **part})
    except ClientMetadataError as exc:
        field = POLICY_FIELDS.get(exc.field or "", "")
        raise AnswerRefused(field, exc.for_a_form() if field else str(exc)) from None


# -- Each question: what its answer is, from the form and back --------------------------------


def _read_name(form: ServiceNameForm) -> dict[str, Any]:
    answer = {
        "client_name": form.client_name.data.strip(),
        "client_name_cy": (form.client_name_cy.data or "").strip() or None,
    }
    part = {"client_name": answer["client_name"]}
    if answer["client_name_cy"]:
        part["client_name#cy"] = answer["client_name_cy"]
    _policy_check(part)
    return answer


def _fill_name(form: ServiceNameForm, answers: dict[str, Any]) -> None:
    form.client_name.data = answers.get("client_name")
    form.client_name_cy.data = answers.get("client_name_cy")


def _read_return(form: ReturnAddressesForm) -> dict[str, Any]:
    uris = _lines(form.redirect_uris.data)
    if not uris:
        raise AnswerRefused("redirect_uris", "Enter at least one address for citizens to return to")
    _policy_check({"redirect_uris": uris})
    return {"redirect_uris": uris}


def _fill_return(form: ReturnAddressesForm, answers: dict[str, Any]) -> None:
    form.redirect_uris.data = "\n".join(answers.get("redirect_uris") or [])


def _read_information(form: InformationForm) -> dict[str, Any]:
    scopes = list(form.scopes.data or [])
    _policy_check({"scope": " ".join(["openid", *scopes])})
    return {"scopes": scopes}


def _fill_information(form: InformationForm, answers: dict[str, Any]) -> None:
    form.scopes.data = answers.get("scopes") or []


def _read_identity(form: IdentityForm) -> dict[str, Any]:
    chosen = list(form.identity_claims.data or [])
    if not chosen:
        raise AnswerRefused(
            "identity_claims",
            "Select the verified details your service needs, or select 'No, it does not'",
        )
    if NO_IDENTITY in chosen:
        if len(chosen) > 1:
            raise AnswerRefused(
                "identity_claims",
                "Select the verified details your service needs, or 'No, it does not', not both",
            )
        return {"identity_claims": []}
    _policy_check({"identity_claims": chosen})
    return {"identity_claims": [claim for claim in IDENTITY_CLAIMS if claim in chosen]}


def _fill_identity(form: IdentityForm, answers: dict[str, Any]) -> None:
    if "identity_claims" in answers:
        form.identity_claims.data = answers["identity_claims"] or [NO_IDENTITY]


def _read_proof(form: ProofForm) -> dict[str, Any]:
    if form.method.data == "secret":
        return {"method": "secret", "jwks": None, "jwks_uri": None}
    pasted = (form.public_key.data or "").strip()
    jwks_uri = (form.jwks_uri.data or "").strip()
    if pasted and jwks_uri:
        raise AnswerRefused(
            "public_key", "Paste a public key or give the address of your keys, not both"
        )
    if not pasted and not jwks_uri:
        raise AnswerRefused("public_key", "Paste your public key, or give the address of your keys")
    try:
        jwks = public_key_jwks(pasted) if pasted else None
    except PublicKeyError as exc:
        message = str(exc)
        raise AnswerRefused("public_key", message[:1].upper() + message[1:]) from None
    key = {"jwks": jwks} if jwks else {"jwks_uri": jwks_uri}
    _policy_check({"token_endpoint_auth_method": "private_key_jwt", **key})
    return {"method": "key", "jwks": jwks, "jwks_uri": jwks_uri or None}


def _fill_proof(form: ProofForm, answers: dict[str, Any]) -> None:
    form.method.data = answers.get("method")
    if answers.get("jwks"):
        form.public_key.data = json.dumps(answers["jwks"], indent=2)
    form.jwks_uri.data = answers.get("jwks_uri")


def _read_sign_out(form: SignOutAddressesForm) -> dict[str, Any]:
    uris = _lines(form.post_logout_redirect_uris.data)
    if uris:
        _policy_check({"post_logout_redirect_uris": uris})
    return {"post_logout_redirect_uris": uris}


def _fill_sign_out(form: SignOutAddressesForm, answers: dict[str, Any]) -> None:
    form.post_logout_redirect_uris.data = "\n".join(answers.get("post_logout_redirect_uris") or [])


def _read_logo(form: LogoForm) -> dict[str, Any]:
    logo_uri = (form.logo_uri.data or "").strip() or None
    if logo_uri:
        _policy_check({"logo_uri": logo_uri})
    return {"logo_uri": logo_uri}


def _fill_logo(form: LogoForm, answers: dict[str, Any]) -> None:
    form.logo_uri.data = answers.get("logo_uri")


@dataclass(frozen=True)
class Question:
    """One question page: its address, its form, and how its answer is read and shown."""

    name: str
    path: str
    title: str
    form: type[FlaskForm]
    read: Callable[[Any], dict[str, Any]]
    fill: Callable[[Any, dict[str, Any]], None]
    # The answer that says the question was answered (an optional one answers with nothing).
    answered_by: str


QUESTIONS = (
    Question(
        "name",
        "",
        "What is your service called?",
        ServiceNameForm,
        _read_name,
        _fill_name,
        "client_name",
    ),
    Question(
        "return_addresses",
        "/return-addresses",
        "Where should citizens return to after signing in?",
        ReturnAddressesForm,
        _read_return,
        _fill_return,
        "redirect_uris",
    ),
    Question(
        "information",
        "/information",
        "What does your service need to know about citizens?",
        InformationForm,
        _read_information,
        _fill_information,
        "scopes",
    ),
    Question(
        "identity",
        "/identity",
        "Does the service need the citizen's verified identity?",
        IdentityForm,
        _read_identity,
        _fill_identity,
        "identity_claims",
    ),
    Question(
        "proof",
        "/proof",
        "How will your service prove who it is?",
        ProofForm,
        _read_proof,
        _fill_proof,
        "method",
    ),
    Question(
        "sign_out_addresses",
        "/sign-out-addresses",
        "Where can citizens go after signing out?",
        SignOutAddressesForm,
        _read_sign_out,
        _fill_sign_out,
        "post_logout_redirect_uris",
    ),
    Question(
        "logo",
        "/logo",
        "What is the address of your service's logo?",
        LogoForm,
        _read_logo,
        _fill_logo,
        "logo_uri",
    ),
)
BY_NAME = {question.name: question for question in QUESTIONS}
# The question whose page shows a refusal about a form field.
QUESTION_OF_FIELD = {
    "client_name": "name",
    "client_name_cy": "name",
    "redirect_uris": "return_addresses",
    "scopes": "information",
    "identity_claims": "identity",
    "method": "proof",
    "public_key": "proof",
    "jwks_uri": "proof",
    "post_logout_redirect_uris": "sign_out_addresses",
    "logo_uri": "logo",
}


# -- The answers, kept between pages -----------------------------------------------------------


def _answers(member: StaffMember) -> dict[str, Any]:
    """This member's answers so far (none if the browser holds someone else's)."""
    kept = session.get(ANSWERS)
    if not isinstance(kept, dict) or kept.get("staff") != member.id:
        return {"staff": member.id}
    return dict(kept)


def _keep(answers: dict[str, Any], field: str) -> None:
    """Keep the answers in the session cookie, unless they would make it too big to keep."""
    if len(json.dumps(answers, separators=(",", ":"))) > MAX_ANSWERS_LENGTH:
        hint = (
            "publish your keys at an address (JWKS URL) and give that instead"
            if field in ("public_key", "jwks_uri")
            else "register the service on one page with every setting instead"
        )
        raise AnswerRefused(field, f"That is too long to keep between the questions: {hint}")
    session[ANSWERS] = answers


def _first_unanswered(answers: dict[str, Any]) -> Question | None:
    """The first question not answered yet, or None when all are."""
    return next((q for q in QUESTIONS if q.answered_by not in answers), None)


def metadata_from(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers as RFC 7591 client metadata, with the one-page form's defaults for what is
    not asked: pairwise identifiers, ES256 ID tokens, PKCE required."""
    metadata: dict[str, Any] = {
        "client_name": answers["client_name"],
        "redirect_uris": answers["redirect_uris"],
        "token_endpoint_auth_method": (
            "private_key_jwt" if answers["method"] == "key" else "client_secret_basic"
        ),
        "scope": " ".join(["openid", *answers["scopes"]]),
        "subject_type": "pairwise",
        "id_token_signed_response_alg": "ES256",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }
    if answers.get("client_name_cy"):
        # RFC 7591 2.2: a human-readable value in another language, tagged with it.
        metadata["client_name#cy"] = answers["client_name_cy"]
    if answers["method"] == "key":
        if answers.get("jwks"):
            metadata["jwks"] = answers["jwks"]
        if answers.get("jwks_uri"):
            metadata["jwks_uri"] = answers["jwks_uri"]
    for name in ("post_logout_redirect_uris", "logo_uri", "identity_claims"):
        if answers.get(name):
            metadata[name] = answers[name]
    return metadata


# -- The pages ---------------------------------------------------------------------------------


def _changing() -> bool:
    """The page was opened from a Change link on the check-answers page."""
    return request.args.get("change") == "1"


def _url(question: Question, change: bool = False) -> str:
    return url_for(f"register_service.{question.name}", change=1 if change else None)


def _back(question: Question) -> str:
    """The Back link: the page before, or the check-answers page when changing an answer."""
    if _changing():
        return url_for("register_service.check")
    index = QUESTIONS.index(question)
    return _url(QUESTIONS[index - 1]) if index else url_for("departments.home")


def _onward(question: Question) -> str:
    """Where a page goes once answered: the next question, or back to check the answers."""
    index = QUESTIONS.index(question) + 1
    if _changing() or index == len(QUESTIONS):
        return url_for("register_service.check")
    return _url(QUESTIONS[index])


def _question_page(
    member: StaffMember, question: Question, form: FlaskForm, status: int, change: bool
) -> tuple[str, int]:
    return (
        render_template(
            f"staff/register/{question.name}.html",
            member=member,
            question=question,
            form=form,
            back=url_for("register_service.check") if change else _back(question),
            action=_url(question, change),
            proof_choices=PROOF_CHOICES,
        ),
        status,
    )


def _ask(member: StaffMember, question: Question) -> Response | tuple[str, int]:
    """A question page: shows the answer given so far; keeps a good answer and moves on."""
    if member.is_platform_admin:
        abort(403, "Services are registered by their department's administrators.")
    answers = _answers(member)
    form = question.form()
    if not form.is_submitted():
        question.fill(form, answers)
        return _question_page(member, question, form, 200, _changing())
    if form.validate():
        try:
            answers.update(question.read(form))
            _keep(answers, _field_of(form))
        except AnswerRefused as exc:
            _show_refusal(form, exc)
        else:
            return redirect(_onward(question))
    return _question_page(member, question, form, 400, _changing())


def _field_of(form: FlaskForm) -> str:
    """The form's main field (the first that is not the CSRF token)."""
    return next(f.name for f in form if f.type != "CSRFTokenField")


def _show_refusal(form: FlaskForm, exc: AnswerRefused) -> None:
    """Put a refusal beside the field it is about (the page's main field if it names none)."""
    field = getattr(form, exc.field, None) or getattr(form, _field_of(form))
    field.errors = [*field.errors, str(exc)]


def _register_question(question: Question) -> None:
    """Add the question's page to the blueprint."""

    @staff_required()
    def view(member: StaffMember) -> Response | tuple[str, int]:
        return _ask(member, question)

    view.__name__ = question.name
    view.__doc__ = f"The question page: {question.title}"
    bp.add_url_rule(question.path or "", question.name, view, methods=["GET", "POST"])


for _question in QUESTIONS:
    _register_question(_question)


def _summary_rows(answers: dict[str, Any]) -> list[dict[str, Any]]:
    """The answers as the rows of a summary list, each with its Change link."""
    scopes = dict(INFORMATION_CHOICES)
    proof = dict(PROOF_CHOICES)
    if answers["method"] == "key":
        key = (
            f"Keys published at {answers['jwks_uri']}"
            if answers.get("jwks_uri")
            else f"{len((answers.get('jwks') or {}).get('keys', []))} public key(s) pasted"
        )
        proof_text = [proof["key"], key]
    else:
        proof_text = [proof["secret"]]
    rows = [
        ("name", "Service name", [answers["client_name"]]),
        ("name", "Service name in Welsh", [answers.get("client_name_cy") or "None"]),
        ("return_addresses", "Return addresses", answers["redirect_uris"]),
        (
            "information",
            "What it needs to know",
            ["A reference number for each citizen", *(scopes[s] for s in answers["scopes"])],
        ),
        (
            "identity",
            "Verified identity details",
            identity_claim_words(answers["identity_claims"]) or ["None"],
        ),
        ("proof", "How it proves who it is", proof_text),
        (
            "sign_out_addresses",
            "Sign-out addresses",
            answers["post_logout_redirect_uris"] or ["None"],
        ),
        ("logo", "Logo address", [answers.get("logo_uri") or "None"]),
    ]
    return [
        {
            "key": key,
            "lines": lines,
            "lang": "cy"
            if key == "Service name in Welsh" and answers.get("client_name_cy")
            else None,
            "change": _url(BY_NAME[name], change=True),
            "change_hidden": key.lower(),
        }
        for name, key, lines in rows
    ]


@bp.route("/check", methods=["GET", "POST"])
@staff_required()
def check(member: StaffMember) -> Response | tuple[str, int]:
    """Check your answers, then register the service (pending a platform administrator's
    approval), exactly as the one-page form and the API do."""
    if member.is_platform_admin:
        abort(403, "Services are registered by their department's administrators.")
    answers = _answers(member)
    missing = _first_unanswered(answers)
    if missing is not None:
        return redirect(_url(missing))
    form = RegisterServiceForm()
    error = None
    if form.validate_on_submit():
        try:
            registered = create_registration(
                metadata_from(answers),
                department=member.department,
                approved=False,
                via="department page",
                actor=f"staff {member.id}",
            )
        except ClientMetadataError as exc:
            refused = _refused_on_its_page(member, answers, exc)
            if refused is not None:
                return refused
            error = str(exc)
        except RegistrationError as exc:
            error = str(exc)
        else:
            session.pop(ANSWERS, None)
            return render_template(
                "staff/registered.html",
                member=member,
                client=registered.client,
                client_secret=registered.client_secret,
                registration_access_token=registered.registration_access_token,
            )
    status = 400 if form.is_submitted() else 200
    return (
        render_template(
            "staff/register/check.html",
            member=member,
            form=form,
            error=error,
            rows=_summary_rows(answers),
            back=_url(QUESTIONS[-1]),
        ),
        status,
    )


def _refused_on_its_page(
    member: StaffMember, answers: dict[str, Any], exc: ClientMetadataError
) -> tuple[str, int] | None:
    """A policy refusal at registration, shown on the question it is about (answering it
    again comes back to the check-answers page); None if it is about no question."""
    field = POLICY_FIELDS.get(exc.field or "")
    question = BY_NAME.get(QUESTION_OF_FIELD.get(field or "", ""))
    if question is None:
        return None
    form = question.form(formdata=None)
    question.fill(form, answers)
    _show_refusal(form, AnswerRefused(field, exc.for_a_form()))
    return _question_page(member, question, form, 400, change=True)

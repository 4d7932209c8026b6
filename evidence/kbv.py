"""Knowledge-based verification: three multiple-choice questions about the person's credit
history, which only they should know.

Two steps. POST /questions finds the person (name, birth date, postcode) and asks their three
questions; someone the agency has no history for is asked questions that have no right answer
(a thin credit file cannot be verified this way). POST /check marks the answers: two or more
right is verificationScore 2; fewer is 0 with the contra-indicator V03. Each set of questions
is answered once."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from evidence.address import parse_address
from evidence.credentials import Evidence
from evidence.records import load, person_of
from evidence.subject import Binding, InvalidRequest, Person, compact, parse_person

DATA = "kbv.json"
PASS_MARK = 2
CI_FAILED = "V03"
# How long the questions wait for their answers, and how many sets wait at once.
QUESTIONS_LIFETIME = 1800
MAX_OUTSTANDING = 10_000


@dataclass(frozen=True)
class Question:
    """One question; answer is None when no choice is right."""

    id: str
    text: str
    choices: tuple[str, ...]
    answer: str | None

    def as_json(self) -> dict:
        """The question as the IdP shows it: never the answer."""
        return {"id": self.id, "text": self.text, "choices": list(self.choices)}


@dataclass(frozen=True)
class Asked:
    """Questions waiting for their answers, and who they were about."""

    credential_subject: dict
    questions: tuple[Question, ...]
    expires_at: float


class OutstandingQuestions:
    """The questions asked and not yet answered, by (aud, sub): held in memory, as this is one
    process serving a simulation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked: dict[tuple[str, str], Asked] = {}

    def put(self, binding: Binding, asked: Asked) -> None:
        """Remember the questions asked for this check (replacing any asked before)."""
        with self._lock:
            now = time.time()
            for key in [k for k, v in self._asked.items() if v.expires_at < now]:
                del self._asked[key]
            while len(self._asked) >= MAX_OUTSTANDING:
                del self._asked[next(iter(self._asked))]
            self._asked[(binding.aud, binding.sub)] = asked

    def take(self, binding: Binding) -> Asked | None:
        """The questions asked for this check, forgotten now (each set is answered once)."""
        with self._lock:
            asked = self._asked.pop((binding.aud, binding.sub), None)
        if asked is None or asked.expires_at < time.time():
            return None
        return asked


def ask(subject: dict, binding: Binding, outstanding: OutstandingQuestions) -> list[dict]:
    """Choose the person's questions and remember them for the answers."""
    person = parse_person(subject)
    address = parse_address(subject)
    questions = questions_for(person, address["postalCode"])
    credential_subject = {
        "name": person.name_claim(),
        "birthDate": person.birth_date_claim(),
        "address": [address],
    }
    outstanding.put(binding, Asked(credential_subject, questions, time.time() + QUESTIONS_LIFETIME))
    return [question.as_json() for question in questions]


def questions_for(person: Person, postal_code: str) -> tuple[Question, ...]:
    """The person's own questions, or the unanswerable ones for someone with no history."""
    data = load(DATA)
    for entry in data["people"]:
        if person_of(entry, DATA) == person and compact(entry["postalCode"]) == compact(
            postal_code
        ):
            chosen = [(q["text"], q["choices"], q["answer"]) for q in entry["questions"]]
            break
    else:
        chosen = [(q["text"], q["choices"], None) for q in data["noHistoryQuestions"]]
    return tuple(
        Question(f"q{number}", text, tuple(choices), answer)
        for number, (text, choices, answer) in enumerate(chosen, start=1)
    )


def mark(body: dict, binding: Binding, outstanding: OutstandingQuestions) -> tuple[dict, Evidence]:
    """The credentialSubject and evidence for the answers in body."""
    answers = body.get("answers")
    if answers is None:
        raise InvalidRequest("answers is missing: an object of question id to the chosen answer")
    if not isinstance(answers, dict):
        raise InvalidRequest("answers must be an object of question id to the chosen answer")
    asked = outstanding.take(binding)
    if asked is None:
        raise InvalidRequest(
            "no questions are waiting for answers for this sub and aud: POST /questions first "
            "(questions are answered once, within 30 minutes)"
        )
    by_id = {question.id: question for question in asked.questions}
    for question_id in answers:
        if question_id not in by_id:
            outstanding.put(binding, asked)
            raise InvalidRequest(f"answers: unknown question id {str(question_id)[:20]!r}")
    for question in asked.questions:
        answer = answers.get(question.id)
        problem = None
        if answer is None:
            problem = f"answers: no answer to {question.id}"
        elif answer not in question.choices:
            problem = f"answers.{question.id} must be one of the question's choices"
        if problem:
            # A malformed request is not an attempt: the questions wait for a proper one.
            outstanding.put(binding, asked)
            raise InvalidRequest(problem)
    right = [q for q in asked.questions if q.answer is not None and answers[q.id] == q.answer]
    wrong = [q for q in asked.questions if q not in right]
    detail = {"checkMethod": "kbv", "kbvResponseMode": "multiple_choice", "kbvQuality": 2}
    passed = len(right) >= PASS_MARK
    return asked.credential_subject, Evidence(
        scores={"verificationScore": 2 if passed else 0},
        ci=[] if passed else [CI_FAILED],
        check_details=[detail] * len(right),
        failed_check_details=[detail] * len(wrong),
    )

"""Knowledge-based questions: asked for the person, marked, answered once."""

from __future__ import annotations

import pytest

from tests.support.evidence import CLAIRE, KENNETH, MARY, OLIVIA, PAUL, PRIYA, typed


def about(identity: dict) -> dict:
    """What the IdP sends to ask the questions: name, birth date and address."""
    return typed(identity, "address")


@pytest.mark.parametrize(
    "identity",
    [KENNETH, PRIYA, MARY, PAUL, CLAIRE],
    ids=lambda i: i["name"][0]["nameParts"][0]["value"],
)
def test_the_right_answers_pass(caller, identity):
    binding, questions = caller.questions(about(identity))
    assert [q["id"] for q in questions] == ["q1", "q2", "q3"]
    claims = caller.answer(binding, identity["answers"])
    (evidence,) = claims["vc"]["evidence"]
    assert evidence["verificationScore"] == 2
    assert evidence["ci"] == []
    assert len(evidence["checkDetails"]) == 3
    assert claims["vc"]["credentialSubject"]["name"] == identity["name"]
    assert claims["vc"]["credentialSubject"]["birthDate"] == identity["birthDate"]
    assert (
        claims["vc"]["credentialSubject"]["address"][0]["postalCode"]
        == (identity["address"][0]["postalCode"])
    )


def test_the_questions_never_carry_their_answers(caller):
    _, questions = caller.questions(about(KENNETH))
    for question in questions:
        assert set(question) == {"id", "text", "choices"}
        assert question["text"].endswith("?")
        assert "None of the above" in question["choices"]
    assert KENNETH["answers"]["q1"] in questions[0]["choices"]


def wrong(question: dict, right: str) -> str:
    """A choice other than the right one."""
    return next(choice for choice in question["choices"] if choice != right)


@pytest.mark.parametrize(
    ("wrong_ones", "score", "ci"),
    [((), 2, []), (("q3",), 2, []), (("q1", "q3"), 0, ["V03"]), (("q1", "q2", "q3"), 0, ["V03"])],
)
def test_two_right_answers_pass_and_fewer_fail(caller, wrong_ones, score, ci):
    binding, questions = caller.questions(about(KENNETH))
    answers = dict(KENNETH["answers"])
    for question in questions:
        if question["id"] in wrong_ones:
            answers[question["id"]] = wrong(question, answers[question["id"]])
    (evidence,) = caller.answer(binding, answers)["vc"]["evidence"]
    assert evidence["verificationScore"] == score
    assert evidence["ci"] == ci
    assert len(evidence.get("failedCheckDetails", [])) == len(wrong_ones)


@pytest.mark.parametrize("choice", range(5))
def test_someone_with_no_credit_history_cannot_pass(caller, choice):
    binding, questions = caller.questions(about(OLIVIA))
    answers = {question["id"]: question["choices"][choice] for question in questions}
    (evidence,) = caller.answer(binding, answers)["vc"]["evidence"]
    assert evidence["verificationScore"] == 0
    assert evidence["ci"] == ["V03"]


def test_the_questions_are_for_the_person_at_that_postcode(caller):
    _, own = caller.questions(about(KENNETH))
    elsewhere = {**about(KENNETH), "address": [{"buildingNumber": "8", "postalCode": "SW1A 1AA"}]}
    binding, questions = caller.questions(elsewhere)
    assert questions != own
    answers = {question["id"]: question["choices"][0] for question in questions}
    (evidence,) = caller.answer(binding, answers)["vc"]["evidence"]
    assert evidence["verificationScore"] == 0


def test_each_set_of_questions_is_answered_once(caller):
    binding, _ = caller.questions(about(KENNETH))
    caller.answer(binding, KENNETH["answers"])
    again = caller.post("kbv", "/check", {**binding, "answers": KENNETH["answers"]})
    assert again.status_code == 400
    assert "POST /questions first" in again.json()["error_description"]


def test_answers_for_another_check_are_refused(caller):
    binding, _ = caller.questions(about(KENNETH))
    other = {**caller.binding(), "answers": KENNETH["answers"]}
    response = caller.post("kbv", "/check", other)
    assert response.status_code == 400
    assert "POST /questions first" in response.json()["error_description"]
    # The questions asked are still waiting for their own check's answers.
    assert caller.answer(binding, KENNETH["answers"])["sub"] == binding["sub"]


BAD_ANSWERS = [
    (None, "answers is missing"),
    ("NATIONWIDE", "answers must be an object"),
    ({"q1": "NATIONWIDE", "q2": "£501 TO £750"}, "no answer to q3"),
    ({**KENNETH["answers"], "q9": "O2"}, "unknown question id 'q9'"),
    ({**KENNETH["answers"], "q2": "A MILLION POUNDS"}, "answers.q2 must be one of"),
    ({**KENNETH["answers"], "q2": ["£501 TO £750"]}, "answers.q2 must be one of"),
]


@pytest.mark.parametrize(("answers", "description"), BAD_ANSWERS)
def test_malformed_answers_are_refused_and_the_questions_wait(caller, answers, description):
    binding, _ = caller.questions(about(KENNETH))
    body = {**binding} if answers is None else {**binding, "answers": answers}
    response = caller.post("kbv", "/check", body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert description in response.json()["error_description"]
    (evidence,) = caller.answer(binding, KENNETH["answers"])["vc"]["evidence"]
    assert evidence["verificationScore"] == 2

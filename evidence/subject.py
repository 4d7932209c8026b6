"""What the IdP sends: the binding (sub, aud, nonce) and the details the citizen typed, in
One Login's shapes (the shapes of a credential's credentialSubject). Every way a request can
be malformed is refused here with a message that says which field and why."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

MAX_TEXT = 255
NAME_PART_TYPES = ("GivenName", "FamilyName")
DATE_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}")


class InvalidRequest(Exception):
    """A malformed request: answered 400 invalid_request with this description."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


@dataclass(frozen=True)
class Binding:
    """What the credential is bound to: the IdP's check reference, the IdP, and its nonce."""

    sub: str
    aud: str
    nonce: str


@dataclass(frozen=True)
class Person:
    """A name and a birth date, normalised for comparison (upper case, single spaces)."""

    given_names: tuple[str, ...]
    family_names: tuple[str, ...]
    birth_date: str

    def same_as(self, other: Person) -> bool:
        """Whether the two are the same name and birth date."""
        return self == other

    def name_claim(self) -> list[dict]:
        """The name in One Login's shape."""
        parts = [{"type": "GivenName", "value": value} for value in self.given_names]
        parts += [{"type": "FamilyName", "value": value} for value in self.family_names]
        return [{"nameParts": parts}]

    def birth_date_claim(self) -> list[dict]:
        """The birth date in One Login's shape."""
        return [{"value": self.birth_date}]


def parse_body(body: object) -> dict:
    """The request body, which must be a JSON object."""
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object (Content-Type: application/json)")
    return body


def parse_binding(body: dict) -> Binding:
    """sub, aud and nonce: each a non-empty string."""
    sub = text(body, "sub", "sub")
    aud = text(body, "aud", "aud")
    if not aud.startswith(("https://", "http://")):
        raise InvalidRequest("aud must be the IdP's issuer, an http(s) URL")
    return Binding(sub=sub, aud=aud, nonce=text(body, "nonce", "nonce"))


def parse_subject(body: dict) -> dict:
    """The subject member: a JSON object."""
    subject = body.get("subject")
    if subject is None:
        raise InvalidRequest("subject is missing: the details the citizen typed")
    if not isinstance(subject, dict):
        raise InvalidRequest("subject must be a JSON object")
    return subject


def parse_person(subject: dict) -> Person:
    """subject.name and subject.birthDate."""
    name = only_item(subject, "name", "subject.name")
    parts = name.get("nameParts")
    if not isinstance(parts, list) or not parts:
        raise InvalidRequest("subject.name[0].nameParts must be a non-empty list")
    given: list[str] = []
    family: list[str] = []
    for index, part in enumerate(parts):
        where = f"subject.name[0].nameParts[{index}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"{where} must be an object with type and value")
        kind = part.get("type")
        if kind not in NAME_PART_TYPES:
            raise InvalidRequest(f"{where}.type must be GivenName or FamilyName")
        value = normalise(text(part, "value", f"{where}.value"))
        (given if kind == "GivenName" else family).append(value)
    if not given or not family:
        raise InvalidRequest(
            "subject.name[0].nameParts needs at least one GivenName and one FamilyName"
        )
    birth = only_item(subject, "birthDate", "subject.birthDate")
    birth_date = date(birth, "value", "subject.birthDate[0].value")
    if datetime.date.fromisoformat(birth_date) > datetime.date.today():
        raise InvalidRequest("subject.birthDate[0].value is in the future")
    return Person(tuple(given), tuple(family), birth_date)


def only_item(container: dict, key: str, where: str) -> dict:
    """container[key]: a list of exactly one object, as One Login's claims are sent here."""
    value = container.get(key)
    if value is None:
        raise InvalidRequest(f"{where} is missing")
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], dict):
        raise InvalidRequest(f"{where} must be a list of one object")
    return value[0]


def text(container: dict, key: str, where: str, *, required: bool = True) -> str:
    """container[key]: a non-empty string of at most MAX_TEXT characters ("" when optional and
    absent)."""
    value = container.get(key)
    if value is None and not required:
        return ""
    if value is None:
        raise InvalidRequest(f"{where} is missing")
    if not isinstance(value, str):
        raise InvalidRequest(f"{where} must be a string")
    if not value.strip():
        raise InvalidRequest(f"{where} must not be empty")
    if len(value) > MAX_TEXT:
        raise InvalidRequest(f"{where} is longer than {MAX_TEXT} characters")
    return value.strip()


def date(container: dict, key: str, where: str, *, required: bool = True) -> str:
    """container[key]: a calendar date written YYYY-MM-DD."""
    value = text(container, key, where, required=required)
    if not value and not required:
        return ""
    if not DATE_FORMAT.fullmatch(value):
        raise InvalidRequest(f"{where} must be a date written YYYY-MM-DD, not {value[:20]!r}")
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{where} is not a real date: {value}") from None
    return value


def normalise(value: str) -> str:
    """Upper case with single spaces: how the registers compare names and numbers."""
    return " ".join(value.upper().split())


def compact(value: str) -> str:
    """Upper case without spaces: how postcodes and document numbers compare."""
    return "".join(value.upper().split())

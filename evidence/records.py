"""The simulated registers: the test identities shipped in evidence/data/ (see README.md)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from evidence.subject import InvalidRequest, Person, parse_person

DATA_FOLDER = Path(__file__).parent / "data"


@functools.cache
def load(file_name: str) -> dict:
    """One data file, parsed once."""
    return json.loads((DATA_FOLDER / file_name).read_text(encoding="utf-8"))


def person_of(record: dict, file_name: str) -> Person:
    """The name and birth date of a register entry (a broken data file says where)."""
    try:
        return parse_person(record)
    except InvalidRequest as exc:
        raise ValueError(f"evidence/data/{file_name}: {exc.description}") from None

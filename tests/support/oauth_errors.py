"""What a department checks in an OAuth error response."""

from __future__ import annotations

import re

import httpx

# RFC 6749 4.1.2.1 and 5.2: error_description uses %x20-21 / %x23-5B / %x5D-7E only.
ERROR_DESCRIPTION_CHARSET = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> dict:
    """An RFC 6749 5.2 JSON error with this status and code, never cached."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error, body
    description = body.get("error_description", "")
    assert ERROR_DESCRIPTION_CHARSET.match(description), description
    return body

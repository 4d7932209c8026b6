"""Departments' logos, fetched once by the IdP and served from the IdP itself.

A logo_uri shown directly on the sign-in page would make every citizen's browser ask the
department's server for it, telling the department (or whoever runs that server) who opens
the sign-in page and when. Instead the IdP fetches the logo when a platform administrator
approves the service (through the outbound fetch rules: timeout, size cap, no private
addresses), checks it is a raster image of an allowed type whose bytes match that type, and
keeps it in the database; pages link to the IdP's copy. SVG is refused: it can carry script.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from idp.security.outbound import FetchError, fetch_bytes
from idp.settings import current_settings

# The allowed image types and how their files begin (PNG 12.12 signature, JPEG SOI marker,
# GIF87a/89a header, WebP's RIFF container with the WEBP form type).
ALLOWED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _looks_like(media_type: str, data: bytes) -> bool:
    """Whether the bytes really are an image of this type (by their signature)."""
    if media_type == "image/png":
        return data.startswith(b"\x89PNG\r\n\x1a\n")
    if media_type == "image/jpeg":
        return data.startswith(b"\xff\xd8\xff")
    if media_type == "image/gif":
        return data.startswith((b"GIF87a", b"GIF89a"))
    if media_type == "image/webp":
        return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return False


@dataclass(frozen=True)
class Logo:
    """A checked logo: its type, bytes and SHA-256 (the name it is served under)."""

    content_type: str
    image: bytes
    sha256: str


class LogoRefused(ValueError):
    """The logo cannot be shown; the message says why, for the administrator."""


def check_logo(media_type: str, data: bytes) -> Logo:
    """A Logo from what the department's server sent, or LogoRefused saying what is wrong."""
    if media_type == "image/svg+xml":
        raise LogoRefused(
            "logo_uri is an SVG image, which can carry script; give a PNG, JPEG, GIF or WebP"
        )
    if media_type not in ALLOWED_TYPES:
        raise LogoRefused(
            f"logo_uri answered with content type {media_type or 'none'}; "
            "the IdP shows only PNG, JPEG, GIF or WebP images"
        )
    if not _looks_like(media_type, data):
        raise LogoRefused(f"logo_uri said {media_type} but the bytes are not a {media_type} image")
    return Logo(media_type, data, hashlib.sha256(data).hexdigest())


def fetch_logo(uri: str) -> Logo:
    """Fetch and check a department's logo; LogoRefused says why there is none."""
    limit = current_settings().logo_max_bytes
    try:
        media_type, data = fetch_bytes(uri, "logo_uri", limit, accept=", ".join(ALLOWED_TYPES))
    except (FetchError, TimeoutError) as exc:
        raise LogoRefused(str(exc)) from None
    return check_logo(media_type, data)

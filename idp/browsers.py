"""What a browser calls itself (its User-Agent header) in words a citizen recognises:
"Chrome" on "Windows", "Safari" on "iPhone". The header is parsed with ua-parser, the Python
port of the maintained uap-core rules (the rules ship in ua-parser-builtins), never by hand.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import ua_parser

# ua-parser names some browsers after the platform's build of them; the citizen knows them
# by the browser's own name ("Mobile Safari" is Safari, "Chrome Mobile iOS" is Chrome).
BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}

# Operating systems by the name on the box ("Mac OS X" is a Mac). iOS is named after the
# device (iPhone, iPad), which is what people call it.
SYSTEM_NAMES = {"Mac OS X": "Mac", "Chrome OS": "Chromebook"}
APPLE_DEVICES = ("iPhone", "iPad", "iPod")

# A header longer than this is not a browser's; it is not worth parsing.
MAX_LENGTH = 500


@dataclass(frozen=True)
class Browser:
    """A browser's name and the system it runs on; None for what could not be told."""

    name: str | None
    system: str | None


def _system(os_family: str | None, device_family: str | None) -> str | None:
    if os_family == "iOS" and device_family in APPLE_DEVICES:
        return device_family
    if os_family in (None, "Other"):
        return None
    return SYSTEM_NAMES.get(os_family, os_family)


@functools.lru_cache(maxsize=512)
def parse_browser(user_agent: str | None) -> Browser:
    """The browser and system a User-Agent header names; Browser(None, None) when it names
    neither (an empty header, a script, a made-up string). Cached: an account page shows the
    same few browsers again and again."""
    if not user_agent or len(user_agent) > MAX_LENGTH:
        return Browser(None, None)
    result = ua_parser.parse(user_agent)
    family = result.user_agent.family if result.user_agent else None
    name = None if family in (None, "Other") else BROWSER_NAMES.get(family, family)
    system = _system(
        result.os.family if result.os else None,
        result.device.family if result.device else None,
    )
    return Browser(name, system)

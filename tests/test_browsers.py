"""Browsers named as people know them (idp/browsers.py, with ua-parser)."""

from __future__ import annotations

import pytest

from idp.browsers import Browser, parse_browser

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/120.0.2210.91"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        (CHROME_WINDOWS, Browser("Chrome", "Windows")),
        (SAFARI_IPHONE, Browser("Safari", "iPhone")),
        (FIREFOX_LINUX, Browser("Firefox", "Linux")),
        (EDGE_WINDOWS, Browser("Edge", "Windows")),
        (SAFARI_MAC, Browser("Safari", "Mac")),
        (CHROME_ANDROID, Browser("Chrome", "Android")),
        ("python-httpx/0.28.1", Browser(None, None)),
        ("", Browser(None, None)),
        (None, Browser(None, None)),
        ("Mozilla/5.0 " + "x" * 600, Browser(None, None)),
    ],
)
def test_user_agents_are_named_as_people_know_them(user_agent, expected):
    assert parse_browser(user_agent) == expected

"""Filling in forms over HTTP as a browser would, for setting up the benchmark's users (on our
IdP and on the node-oidc-provider peer alike)."""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import httpx

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
JOURNEY = re.compile(r'name="journey"[^>]*value="([^"]*)"')
FORM_TAG = re.compile(r"<form\b[^>]*>")
ACTION = re.compile(r'action="([^"]+)"')


def submit(http: httpx.Client, page: httpx.Response, fields: dict) -> httpx.Response:
    """Post the page's first form with these fields, its CSRF token and journey if it has any."""
    data = dict(fields)
    if token := CSRF.search(page.text):
        data["csrf_token"] = html.unescape(token.group(1))
    if journey := JOURNEY.search(page.text):
        data.setdefault("journey", html.unescape(journey.group(1)))
    tag = FORM_TAG.search(page.text)  # the page's first form: its own action or the page
    action = ACTION.search(tag.group(0)) if tag else None
    target = html.unescape(action.group(1)) if action else str(page.url)
    # As a browser does: the IdP refuses a form post without its own Origin.
    origin = f"{page.url.scheme}://{page.url.netloc.decode()}"
    return http.post(urljoin(str(page.url), target), data=data, headers={"Origin": origin})


def follow(http: httpx.Client, response: httpx.Response, base: str) -> httpx.Response:
    """Follow redirects while they stay on base; the first that leaves it is returned."""
    while response.is_redirect:
        location = urljoin(str(response.url), response.headers["location"])
        if not location.startswith(base):
            return response
        response = http.get(location)
    return response

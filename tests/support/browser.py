"""A citizen's browser over plain HTTP: cookies, redirects and forms with CSRF tokens."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pyotp

from idp import clock

CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
JOURNEY_PATTERN = re.compile(r'name="journey"[^>]*value="([^"]*)"')
FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
# GOV.UK Frontend's error message beside a field: <p id="FIELD-error" ...>Error: message</p>.
FIELD_ERROR = re.compile(
    r'<p id="(?P<field>[\w-]+)-error" class="govuk-error-message">\s*'
    r'<span class="govuk-visually-hidden">[^<]*</span>\s*(?P<message>.*?)\s*</p>',
    re.S,
)


def error_beside(page_html: str, field_id: str) -> str | None:
    """The error message shown beside a field (as text), or None."""
    for match in FIELD_ERROR.finditer(page_html):
        if match.group("field") == field_id:
            return html.unescape(match.group("message"))
    return None


@dataclass
class SecondFactor:
    """What a test citizen keeps on their phone and on paper."""

    secret: str
    recovery_codes: list[str]
    last_step: int = 0

    def next_code(self) -> str:
        """A code the IdP has not seen yet: the app's, or (if used up this step) a recovery code."""
        now = int(clock.time() // 30)
        step = max(now - 1, self.last_step + 1)
        if step <= now + 1:
            self.last_step = step
            return pyotp.TOTP(self.secret).at(step * 30)
        return self.recovery_codes.pop()


# Test citizens' second factors by email, registered by the make_citizen fixture.
SECOND_FACTORS: dict[str, SecondFactor] = {}
SECOND_FACTOR_HEADING = "Enter the code from your authenticator app"
# The first sign-in page's form (the email address); the password has a page of its own.
SIGN_IN_FORM = 'action="/sign-in"'


@dataclass
class Callback:
    """The redirect back to the department."""

    url: str
    params: dict[str, str]


def send_origin_as_a_browser_does(request: httpx.Request) -> None:
    """A browser sends Origin on every POST (and other non-GET) request; a form on the IdP's
    pages posts to the IdP, so the origin is the request's own (unless a test set another)."""
    if request.method not in {"GET", "HEAD"} and "origin" not in request.headers:
        url = request.url
        port = f":{url.port}" if url.port else ""
        request.headers["Origin"] = f"{url.scheme}://{url.host}{port}"


def browser_http(**kwargs) -> httpx.Client:
    """An HTTP client that sends the headers a browser sends (Origin on POST)."""
    hooks = kwargs.pop("event_hooks", {})
    hooks = {**hooks, "request": [send_origin_as_a_browser_does, *hooks.get("request", [])]}
    return httpx.Client(event_hooks=hooks, **kwargs)


class CitizenBrowser:
    """Follows the IdP's pages the way a person in a browser would."""

    def __init__(self, idp_issuer: str):
        self.issuer = idp_issuer
        self.http = browser_http(timeout=15, follow_redirects=False)
        self.last: httpx.Response | None = None

    def get(self, url: str) -> httpx.Response:
        """Load a page."""
        self.last = self.http.get(url)
        return self.last

    def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow redirects within the IdP; stop at a redirect that leaves it."""
        while response.status_code in (301, 302, 303, 307, 308):
            location = urljoin(str(response.url), response.headers["location"])
            if not location.startswith(self.issuer):
                return response
            response = self.http.get(location)
        self.last = response
        return response

    def submit(
        self,
        page: httpx.Response,
        fields: dict[str, str],
        button: str | None = None,
        action: str | None = None,
    ) -> httpx.Response:
        """Submit the page's form with its CSRF token and hidden journey."""
        text = page.text
        data = dict(fields)
        token = CSRF_PATTERN.search(text)
        if token:
            data["csrf_token"] = html.unescape(token.group(1))
        journey = JOURNEY_PATTERN.search(text)
        if journey and "journey" not in data:
            data["journey"] = html.unescape(journey.group(1))
        if button:
            data[button] = button
        target = action or html.unescape(FORM_ACTION.search(text).group(1))
        self.last = self.http.post(urljoin(str(page.url), target), data=data)
        return self.last

    def sign_up(self, idp, page: httpx.Response, fields: dict[str, str]) -> httpx.Response:
        """Create an account from the sign-up page: the email, the code it receives, the names
        (given_name, family_name), then the rest of fields (password, confirm) on the password
        page. The answer to the password page."""
        from tests.support.mail import code_in, mails_to, wait_for_mail

        email = fields["email"]
        before = len(mails_to(idp, email))
        check = self.follow(self.submit(page, {"email": email}))
        assert check.url.path == "/sign-up/check-email", check.text[:800]
        code = code_in(wait_for_mail(idp, email, count=before + 1))
        details = self.follow(self.submit(check, {"code": code}))
        assert details.url.path == "/sign-up/your-details", details.text[:800]
        return self.submit_details(details, {k: v for k, v in fields.items() if k != "email"})

    def submit_details(self, details: httpx.Response, fields: dict[str, str]) -> httpx.Response:
        """The two pages after the email code: the names (given_name, family_name), then the
        rest (password, confirm) on the password page. The password page's answer (not
        followed), or the names page's when it did not go on to the password."""
        names = {k: v for k, v in fields.items() if k in {"given_name", "family_name"}}
        answer = self.submit(details, names)
        if not answer.headers.get("location", "").startswith("/sign-up/password"):
            return answer
        password_page = self.follow(answer)
        rest = {k: v for k, v in fields.items() if k not in names}
        return self.submit(password_page, rest)

    def submit_sign_in(self, page: httpx.Response, email: str, password: str) -> httpx.Response:
        """The two sign-in pages from the first: the email address, then the password on its
        own page. The answer to the password (not followed, like submit), or the email page's
        answer when it did not go on to the password."""
        password_page = self.follow(self.submit(page, {"email": email}))
        if password_page.url.path != "/sign-in/password":
            return password_page
        return self.submit(password_page, {"password": password})

    def sign_in(self, page: httpx.Response, email: str, password: str) -> httpx.Response:
        """Fill in the sign-in pages, and the second factor when the IdP asks for it."""
        assert "Sign in" in page.text, page.text[:500]
        response = self.follow(self.submit_sign_in(page, email, password))
        if response.status_code == 200 and SECOND_FACTOR_HEADING in response.text:
            response = self.second_factor(response, email)
        return response

    def second_factor(self, page: httpx.Response, email: str) -> httpx.Response:
        """Type the code from the citizen's authenticator app (or a recovery code)."""
        factor = SECOND_FACTORS[email.strip().lower()]
        code = factor.next_code()
        if "-" in code:  # a recovery code: it has its own page
            page = self.follow(self.get(page.url.copy_with(path="/sign-in/recovery-code")))
        return self.follow(self.submit(page, {"code": code}))

    def consent(self, page: httpx.Response, allow: bool = True) -> httpx.Response:
        """Answer the consent page."""
        assert "wants to know who you are" in page.text, page.text[:500]
        return self.follow(self.submit(page, {}, button="allow" if allow else "deny"))

    def authorize(
        self, url: str, email: str | None = None, password: str | None = None, allow: bool = True
    ) -> Callback:
        """Run a whole authorization: sign in if asked, consent if asked, return the callback."""
        response = self.follow(self.get(url))
        if response.status_code == 200 and response.url.path == "/sign-in":
            assert email and password, "the IdP asked for a password"
            response = self.sign_in(response, email, password)
        elif response.status_code == 200 and SECOND_FACTOR_HEADING in response.text:
            assert email, "the IdP asked for the second factor"
            response = self.second_factor(response, email)
        if response.status_code == 200 and "wants to know who you are" in response.text:
            response = self.consent(response, allow)
        return callback(response)


def callback(response: httpx.Response) -> Callback:
    """The redirect to the department, parsed."""
    assert response.status_code in (302, 303), (response.status_code, response.text[:800])
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    return Callback(url=location, params={k: v[0] for k, v in query.items()})

"""Staff pages as staff use them: a browser over HTTP that reads and submits the pages' forms,
and types the code from the staff member's authenticator app after the password."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pyotp

from idp import clock
from idp.departments.services import create_registration, ensure_department
from idp.extensions import db
from idp.models import Client
from idp.models.timestamps import utcnow
from idp.staff.accounts import begin_staff_totp_enrolment, create_staff
from tests.support.browser import browser_http

STAFF_PASSWORD = "a staff passphrase that is long enough"
PASSPORTS = "HM Passport Office"
DVLA = "Driver and Vehicle Licensing Agency"
REDIRECT_URI = "https://passport.example.gov.uk/callback"
# GOV.UK Frontend's error summary (govukErrorSummary): its list of problems.
ERROR_SUMMARY = re.compile(r'<div class="govuk-error-summary".*?</ul>', re.S)
TAG = re.compile(r"<[^>]+>")
SECOND_FACTOR_PATH = "/staff/sign-in/second-factor"
SETUP_PATH = "/staff/second-factor/setup"


@dataclass
class StaffApp:
    """A test staff member's authenticator app: its key, and the last time step typed."""

    secret: str
    last_step: int = 0

    def code_at(self, step: int) -> str:
        """The code the app shows at a time step."""
        return pyotp.TOTP(self.secret).at(step * 30)

    def next_code(self) -> str:
        """A code the IdP has not accepted yet: now's or the next step's (the IdP allows one
        step of drift), moving the clock on to the next step when both are used."""
        now = int(clock.time() // 30)
        step = max(now, self.last_step + 1)
        if step > now + 1:
            clock.advance(max(0.0, (step - 1) * 30 - clock.time()) + 0.05)
        self.last_step = step
        return self.code_at(step)


# Test staff members' apps by email, registered by make_staff.
STAFF_APPS: dict[str, StaffApp] = {}


@dataclass
class Form:
    """One <form> on a page: where it posts, its fields as a browser would send them."""

    action: str | None
    fields: list[tuple[str, str]] = field(default_factory=list)
    submits: list[tuple[str, str]] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    """Collect every form and what a browser would submit from it unchanged."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._textarea: str | None = None
        self._text: list[str] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(action=a.get("action"))
            self.forms.append(self._form)
        if self._form is None:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind == "submit":
                self._form.submits.append((a["name"], a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._form.fields.append((a["name"], a.get("value", "on")))
            else:
                self._form.fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name", ""), []
        elif tag == "select":
            self._select, self._options = a.get("name", ""), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "button":
            self._button = []
            if a.get("name") and a.get("type", "submit") == "submit":
                # A browser sends a named submit button's name and value (GOV.UK Frontend's
                # buttons are <button> elements).
                self._form.submits.append((a["name"], a.get("value", "")))

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)
        if self._button is not None:
            self._button.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._form is None:
            return
        if tag == "textarea" and self._textarea is not None:
            # A browser drops the newline that follows <textarea>.
            text = "".join(self._text)
            text = text[2:] if text.startswith("\r\n") else text.removeprefix("\n")
            self._form.fields.append((self._textarea, text))
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, s in self._options if s] or [v for v, _ in self._options[:1]]
            self._form.fields.extend((self._select, v) for v in chosen)
            self._select = None
        elif tag == "button" and self._button is not None:
            self._form.buttons.append(" ".join("".join(self._button).split()))
            self._button = None
        elif tag == "form":
            self._form = None


def forms(page: httpx.Response) -> list[Form]:
    """Every form on the page."""
    parser = _FormParser()
    parser.feed(page.text)
    return parser.forms


def error_summary(page: httpx.Response) -> list[str]:
    """The items of the page's error summary (empty when there is none)."""
    summaries = ERROR_SUMMARY.findall(page.text)
    items = [re.findall(r"<li>(.*?)</li>", summary, re.S) for summary in summaries]
    return [unescape(TAG.sub("", item)).strip() for group in items for item in group]


def visible_text(page: httpx.Response) -> str:
    """The page's text with tags removed and spaces collapsed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", page.text, flags=re.S)
    return " ".join(unescape(TAG.sub(" ", body)).split())


class StaffBrowser:
    """A member of staff's browser: cookies, and the forms on the pages it loads."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self.http = browser_http(base_url=issuer, timeout=15, follow_redirects=False)

    def get(self, path: str, follow: bool = False) -> httpx.Response:
        """Load a page (following redirects within the IdP when asked)."""
        response = self.http.get(path)
        return self.follow(response) if follow else response

    def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow redirects within the IdP."""
        while response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            assert location.startswith(self.issuer + "/"), location
            response = self.http.get(location)
        return response

    def form(
        self, page: httpx.Response, action: str | None = None, button: str | None = None
    ) -> Form:
        """The form that posts to action (a path; None: to the page itself), with this button."""
        for candidate in forms(page):
            target = candidate.action and urljoin(str(page.url), candidate.action)
            if (urlsplit(target).path if target else None) != action:
                continue
            labels = candidate.buttons + [value for _, value in candidate.submits]
            if button is None or button in labels:
                return candidate
        raise AssertionError(f"no form to {action or 'the page'} with {button!r} on {page.url}")

    def submit(
        self,
        page: httpx.Response,
        fields: dict[str, str | list[str]] | None = None,
        *,
        action: str | None = None,
        button: str | None = None,
        drop: tuple[str, ...] = (),
    ) -> httpx.Response:
        """Fill in and submit a form on the page, as clicking its submit button would."""
        form = self.form(page, action, button)
        changed = fields or {}
        data: list[tuple[str, str]] = [
            (k, v) for k, v in form.fields if k not in changed and k not in drop
        ]
        for name, value in changed.items():
            values = value if isinstance(value, list) else [value]
            data.extend((name, v) for v in values)
        data.extend(form.submits[:1])
        body: dict[str, list[str]] = {}
        for name, value in data:
            body.setdefault(name, []).append(value)
        target = urljoin(str(page.url), form.action) if form.action else str(page.url)
        return self.http.post(target, data=body)

    def password_step(
        self, email: str, password: str = STAFF_PASSWORD, next_path: str | None = None
    ) -> httpx.Response:
        """The first step at /staff/sign-in; returns the response to the form."""
        page = self.get("/staff/sign-in" + (f"?next={next_path}" if next_path else ""))
        assert page.status_code == 200, page.text[:500]
        return self.submit(page, {"email": email, "password": password})

    def sign_in(self, email: str, password: str = STAFF_PASSWORD, next_path: str | None = None):
        """Sign in at /staff/sign-in, typing the app's code when asked; the last response."""
        response = self.password_step(email, password, next_path)
        if response.is_redirect and redirects_to(response) == SECOND_FACTOR_PATH:
            response = self.second_factor(self.follow(response), email)
        return response

    def second_factor(self, page: httpx.Response, email: str) -> httpx.Response:
        """Type the code the staff member's app shows into the code page."""
        assert page.status_code == 200 and "code" in page.text, page.text[:500]
        return self.submit(page, {"code": STAFF_APPS[email.strip().lower()].next_code()})

    def signed_in(self, email: str, password: str = STAFF_PASSWORD) -> StaffBrowser:
        """Sign in (both steps) and check that it worked."""
        response = self.sign_in(email, password)
        assert response.status_code == 303, error_summary(response)
        assert redirects_to(response) not in (SECOND_FACTOR_PATH, SETUP_PATH), response.headers
        return self


def confirmed(browser: StaffBrowser, response: httpx.Response) -> httpx.Response:
    """A platform administrator's status change (approve, suspend, reinstate) shows a page
    to confirm it first: press its "Yes, ..." button there; any other response as it is."""
    if response.status_code != 200 or 'name="action-confirmed"' not in response.text:
        return response
    page = response
    form = next(f for f in forms(page) if ("action-confirmed", "yes") in f.fields)
    return browser.submit(page, action=urlsplit(form.action).path, button=form.buttons[0])


def redirects_to(response: httpx.Response) -> str:
    """The path a redirect points at."""
    return urlsplit(response.headers["location"]).path


def make_staff(
    app, email: str, *, department: str | None = None, second_factor: bool = True
) -> str:
    """A platform administrator (no department) or a department's administrator, with an
    authenticator app (confirmed as the demo staff's are, so no code is used up) unless not."""
    with app.app_context():
        dept = ensure_department(department) if department else None
        role = "department_admin" if department else "platform_admin"
        member = create_staff(email, STAFF_PASSWORD, role, dept)
        if second_factor:
            secret = begin_staff_totp_enrolment(member)
            member.totp_confirmed_at = utcnow()
            db.session.commit()
            STAFF_APPS[member.email] = StaffApp(secret)
        else:
            STAFF_APPS.pop(member.email, None)
    return email


def make_service(
    app,
    department: str | None,
    name: str = "Renew your passport",
    *,
    approved: bool = False,
    redirect_uri: str = "https://passport.example.gov.uk/callback",
    **metadata,
) -> tuple[str, str | None]:
    """A service registered as a department's page would; returns client ID and secret."""
    with app.app_context():
        dept = ensure_department(department) if department else None
        registered = create_registration(
            {
                "client_name": name,
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": "openid email",
                **metadata,
            },
            department=dept,
            approved=approved,
            via="test",
        )
        return registered.client.client_id, registered.client_secret


def stored_client(app, client_id: str) -> Client | None:
    """The client as stored now (detached copy of its columns)."""
    with app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        if client is not None:
            db.session.expunge(client)
        return client


def count_clients(app) -> int:
    """How many services are registered."""
    with app.app_context():
        return db.session.scalar(db.select(db.func.count(Client.id)))

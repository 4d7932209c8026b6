"""Email: the local outbox a developer reads at /dev/outbox, and SMTP when configured."""

from __future__ import annotations

import re
import stat
import uuid

import httpx
import pytest

from idp import create_app
from idp.mail import MailError, outbox_path, read_outbox, send_in_background, send_mail
from idp.settings import SettingsError, load_settings


def _app(tmp_path, **settings):
    return create_app(load_settings(instance_path=str(tmp_path), departments_file="", **settings))


def test_without_smtp_mail_goes_to_the_outbox_newest_first(tmp_path):
    app = _app(tmp_path)
    with app.app_context():
        send_mail("ada@example.com", "First", "Hello Ada")
        send_mail("ada@example.com", "Second", "Your code is 123456\nIt expires soon.")
        messages = read_outbox(app.config["IDP_SETTINGS"])
    assert [m.subject for m in messages] == ["Second", "First"]
    assert messages[0].to == "ada@example.com"
    assert messages[0].body == "Your code is 123456\nIt expires soon."
    path = outbox_path(app.config["IDP_SETTINGS"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds one-time codes


def test_the_outbox_page_shows_mail_when_the_dev_pages_are_on(idp, dev_idp):
    with idp.app.app_context():
        send_mail("grace@example.com", "Check your email", "Your code is <b>654321</b>")
    page = httpx.get(dev_idp.url("/dev/outbox"))  # the same instance folder, IDP_DEV_PAGES
    assert page.status_code == 200
    assert "grace@example.com" in page.text
    assert "Your code is &lt;b&gt;654321&lt;/b&gt;" in page.text  # escaped, never HTML


def test_the_outbox_page_does_not_exist_on_a_real_deployment(tmp_path):
    app = _app(tmp_path, issuer="https://sign-in.example.gov.uk")
    response = app.test_client().get("/dev/outbox")
    assert response.status_code == 404


class FakeSMTP:
    """Records what the IdP hands to a mail server."""

    sent: list = []
    fail = False

    def __init__(self, host, port, timeout=None, **kwargs):
        self.host, self.port = host, port
        if FakeSMTP.fail:
            raise ConnectionRefusedError("no server")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def has_extn(self, name):
        return name == "starttls"

    def starttls(self, context=None):
        self.tls = True

    def login(self, user, password):
        self.login_as = (user, password)

    def send_message(self, message):
        FakeSMTP.sent.append(
            (self.host, self.port, getattr(self, "tls", False), self.login_as, message)
        )


def test_with_smtp_mail_is_sent_with_starttls_and_login(tmp_path, monkeypatch):
    monkeypatch.setattr("smtplib.SMTP", FakeSMTP)
    FakeSMTP.sent, FakeSMTP.fail = [], False
    app = _app(tmp_path, smtp_url="smtp://idp%40gov:p%40ss@mail.example.gov.uk:2525")
    with app.app_context():
        send_mail("ada@example.com", "Check your email", "Your code is 123456")
    [(host, port, tls, login, message)] = FakeSMTP.sent
    assert (host, port, tls, login) == ("mail.example.gov.uk", 2525, True, ("idp@gov", "p@ss"))
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Check your email"
    assert "no-reply@" in message["From"]
    assert not outbox_path(app.config["IDP_SETTINGS"]).exists()


def test_a_mail_server_that_fails_is_named_without_the_content(tmp_path, monkeypatch):
    monkeypatch.setattr("smtplib.SMTP", FakeSMTP)
    FakeSMTP.fail = True
    app = _app(tmp_path, smtp_url="smtp://mail.example.gov.uk")
    with app.app_context(), pytest.raises(MailError) as raised:
        send_mail("ada@example.com", "Check your email", "Your code is 123456")
    assert "mail.example.gov.uk" in str(raised.value)
    assert "123456" not in str(raised.value)


@pytest.mark.parametrize("url", ["http://mail.example", "smtp://", "mail.example:25"])
def test_an_unusable_smtp_url_is_named(tmp_path, url):
    with pytest.raises(SettingsError, match="smtp_url"):
        load_settings(instance_path=str(tmp_path), smtp_url=url)


# -- No code or secret in a subject (it shows on lock screens and in notifications) ----------

CODE_LETTERS = [
    ("idp.accounts.sign_up.logic", "sign_up_letter"),
    ("idp.accounts.sign_up.logic", "already_registered_letter"),
    ("idp.accounts.recovery.logic", "reset_letter"),
    ("idp.accounts.manage.logic", "new_address_letter"),
    ("idp.accounts.manage.logic", "reverify_letter"),
]


@pytest.mark.parametrize("lang", ["en", "cy"])
@pytest.mark.parametrize(("module", "name"), CODE_LETTERS, ids=[n for _, n in CODE_LETTERS])
def test_every_letter_with_a_code_keeps_the_code_out_of_its_subject(tmp_path, module, name, lang):
    import importlib

    letter = getattr(importlib.import_module(module), name)
    app = _app(tmp_path)
    with app.test_request_context(f"/?lang={lang}"):
        message = letter("402917")
    if message is None:
        return
    subject, body = message
    assert "402917" not in subject
    assert not re.search(r"\d", subject), subject


def test_a_subject_with_a_code_is_refused_before_anything_is_sent(tmp_path):
    app = _app(tmp_path)
    with app.app_context():
        for subject in ("Your code: 123456", "Recovery code abcde-23456"):
            with pytest.raises(ValueError, match="subject"):
                send_mail("ada@example.com", subject, "body")
        with app.test_request_context("/"), pytest.raises(ValueError, match="subject"):
            send_in_background("ada@example.com", "Your code: 123456", "body")
        assert read_outbox(app.config["IDP_SETTINGS"]) == []


def test_no_email_the_idp_sends_has_a_code_in_its_subject(idp, make_citizen, make_client):
    """Every journey that emails a code, and the notices after them, over HTTP: whatever code
    a body carries, no subject carries it (nor any run of digits)."""
    from tests.support.browser import SECOND_FACTORS, CitizenBrowser
    from tests.support.mail import code_in, mails_to, wait_for_mail

    email = f"subjects.{uuid.uuid4().hex[:8]}@example.com"
    # Sign-up: the code, then the "you already have an account" letter.
    browser = CitizenBrowser(idp.issuer)
    browser.follow(browser.submit(browser.get(idp.url("/sign-up")), {"email": email}))
    wait_for_mail(idp, email)
    citizen = make_citizen(f"other.{email}")
    other = citizen["email"]
    browser.follow(browser.submit(browser.get(idp.url("/sign-up")), {"email": other}))
    # A reset: the code.
    page = browser.follow(browser.submit(browser.get(idp.url("/reset-password")), {"email": other}))
    wait_for_mail(idp, other, count=2)
    # Signed in: a new address (the code goes there), a new app (a code), new recovery codes.
    signed_in = CitizenBrowser(idp.issuer)
    signed_in.sign_in(signed_in.get(idp.url("/sign-in")), other, citizen["password"])
    new_address = f"moved.{email}"
    page = signed_in.get(idp.url("/account/email"))
    signed_in.follow(
        signed_in.submit(page, {"current_password": citizen["password"], "email": new_address})
    )
    page = signed_in.get(idp.url("/account/authenticator-app"))
    signed_in.follow(signed_in.submit(page, {"current_password": citizen["password"]}))
    page = signed_in.get(idp.url("/account/recovery-codes"))
    signed_in.follow(signed_in.submit(page, {"current_password": citizen["password"]}))
    wait_for_mail(idp, new_address)
    wait_for_mail(idp, other, count=4)
    assert SECOND_FACTORS  # the citizen signed in with the app's code

    mails = mails_to(idp, email) + mails_to(idp, other) + mails_to(idp, new_address)
    with_codes = [m for m in mails if re.search(r"\b\d{6}\b", m.body)]
    assert len(with_codes) >= 4, [m.subject for m in mails]
    for mail in mails:
        assert not re.search(r"\d", mail.subject), mail.subject
        if mail in with_codes:
            assert code_in(mail) not in mail.subject

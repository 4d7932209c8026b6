"""Email: the local outbox a developer reads at /dev/outbox, and SMTP when configured."""

from __future__ import annotations

import stat

import httpx
import pytest

from idp import create_app
from idp.mail import MailError, outbox_path, read_outbox, send_mail
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

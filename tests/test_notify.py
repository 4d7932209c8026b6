"""GOV.UK Notify: with IDP_NOTIFY_API_KEY set, email and text messages go through Notify's API
(here a local stand-in that checks the client's signed token as Notify does), never into the
outbox; a Notify failure is logged without the message; the settings say what is missing."""

from __future__ import annotations

import json
import os
import random
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from idp.extensions import db
from idp.mail import read_outbox, send_mail
from idp.models import PhoneNumber
from idp.settings import SettingsError, load_settings
from tests.conftest import LiveIdP, new_citizen, new_client, serve_idp
from tests.support.audit import captured_log
from tests.support.browser import CitizenBrowser, callback

SERVICE_ID = str(uuid.uuid4())
SECRET = str(uuid.uuid4())
API_KEY = f"idp_test-{SERVICE_ID}-{SECRET}"
EMAIL_TEMPLATE = str(uuid.uuid4())
SMS_TEMPLATE = str(uuid.uuid4())


class FakeNotify:
    """Notify's API on a loopback port: it checks each request's token (HS256 with the key's
    secret, iss the service id, as Notify does), keeps what it was sent, and answers 201 (or
    the status a test sets)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.status = 201
        self.arrived = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                try:
                    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
                    status = owner.status if claims.get("iss") == SERVICE_ID else 403
                except jwt.PyJWTError:
                    status = 403
                answer = {"id": str(uuid.uuid4())} if status == 201 else {"errors": ["no"]}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                with owner.arrived:
                    if status == 201:
                        owner.received.append((self.path, body))
                    owner.arrived.notify_all()

            def log_message(self, format: str, *args) -> None:
                """Keep test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> dict:
        """The newest message posted to path, once there are count of them."""
        with self.arrived:
            ok = self.arrived.wait_for(
                lambda: len([p for p, _ in self.received if p == path]) >= count, timeout
            )
        assert ok, f"Notify got no message number {count} at {path}"
        return [body for p, body in self.received if p == path][-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def notify() -> Iterator[FakeNotify]:
    server = FakeNotify()
    yield server
    server.close()


@pytest.fixture(scope="module")
def notify_idp(database_url, tmp_path_factory, notify, live_idp) -> Iterator[LiveIdP]:
    """The IdP with Notify configured (its own outbox folder, to show nothing lands there)."""
    served = serve_idp(
        database_url,
        str(tmp_path_factory.mktemp("notify-instance")),
        background_worker=False,
        notify_api_key=API_KEY,
        notify_base_url=notify.url,
        notify_email_template_id=EMAIL_TEMPLATE,
        notify_sms_template_id=SMS_TEMPLATE,
    )
    yield served
    served.close()


def test_a_text_message_code_goes_through_notify(idp, notify_idp, notify):
    citizen = new_citizen(notify_idp, f"n.{uuid.uuid4().hex[:8]}@example.com", second_factor=False)
    number = f"+447911{random.randrange(10**6):06d}"  # noqa: S311 (test data)
    with notify_idp.app.app_context():
        db.session.add(PhoneNumber(citizen_id=citizen["id"], number=number))
        db.session.commit()
    client = new_client(notify_idp)
    browser = CitizenBrowser(notify_idp.issuer)
    before = len([p for p, _ in notify.received if p == "/v2/notifications/sms"])
    attempt = client.authorization()
    page = browser.follow(browser.get(attempt.url))
    with captured_log("notifications_python_client", 10) as client_log:
        page = browser.follow(browser.submit_sign_in(page, citizen["email"], citizen["password"]))
        sent = notify.wait_for("/v2/notifications/sms", count=before + 1)
    assert "Check your phone" in page.text
    assert sent["phone_number"] == number
    assert sent["template_id"] == SMS_TEMPLATE
    code = next(word for word in sent["personalisation"]["body"].split() if word.isdigit())
    assert len(code) == 6
    assert code not in client_log.getvalue()
    # Nothing went to the outbox.
    outbox = read_outbox(notify_idp.app.config["IDP_SETTINGS"], limit=5000)
    assert [m for m in outbox if m.to == number] == []

    response = browser.follow(browser.submit(page, {"code": code}))
    if "wants to know who you are" in response.text:
        response = browser.consent(response)
    assert "code" in callback(response).params


def test_email_goes_through_notify_with_the_subject_as_personalisation(notify_idp, notify):
    before = len([p for p, _ in notify.received if p == "/v2/notifications/email"])
    with notify_idp.app.app_context():
        send_mail("someone@example.com", "Your code to sign up", "Your code is 123456.")
    sent = notify.wait_for("/v2/notifications/email", count=before + 1)
    assert sent["email_address"] == "someone@example.com"
    assert sent["template_id"] == EMAIL_TEMPLATE
    assert sent["personalisation"] == {
        "subject": "Your code to sign up",
        "body": "Your code is 123456.",
    }
    # A code in the subject is still refused before anything is sent.
    with notify_idp.app.app_context(), pytest.raises(ValueError, match="subject"):
        send_mail("someone@example.com", "Your code is 123456", "body")


def test_a_notify_refusal_is_a_clear_error_without_the_message(notify_idp, notify):
    from idp.mail import MailError

    notify.status = 400
    try:
        refused = pytest.raises(MailError, match=r"GOV.UK Notify refused an email \(HTTP 400\)")
        with notify_idp.app.app_context(), captured_log("", 10) as logged, refused:
            send_mail("someone@example.com", "A notice", "Your code is 654321.")
    finally:
        notify.status = 201
    assert "654321" not in logged.getvalue()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"notify_api_key": "too-short"}, "is not a GOV.UK Notify API key"),
        ({"notify_api_key": API_KEY}, "'notify_email_template_id' and 'notify_sms_template_id'"),
        (
            {"notify_api_key": API_KEY, "notify_email_template_id": EMAIL_TEMPLATE},
            "needs 'notify_sms_template_id'",
        ),
        (
            {
                "notify_api_key": API_KEY,
                "notify_email_template_id": EMAIL_TEMPLATE,
                "notify_sms_template_id": SMS_TEMPLATE,
                "notify_base_url": "http://notify.example.com",
            },
            "must use https",
        ),
    ],
)
def test_incomplete_notify_settings_are_refused(settings, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(config_file=os.devnull, **settings)

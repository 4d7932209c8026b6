"""What a browser meets on every page: __Host- session cookies and HSTS on an https issuer,
the origin check on state-changing requests, 303 after a POST, the CSP, and the development
pages only when a setting asks for them."""

from __future__ import annotations

import re

import httpx
import pytest

from idp.extensions import db
from idp.models import AuditEntry
from idp.operations.production import ProductionStack, StackError
from tests.conftest import new_citizen, new_client, serve_idp
from tests.support.browser import CitizenBrowser, browser_http

HTTPS_ISSUER = "https://sign-in.test.gov.uk"
HSTS = "max-age=31536000; includeSubDomains"


class TLSTerminator(httpx.BaseTransport):
    """Stands in for the TLS terminator in front of the IdP: the browser uses the https
    issuer's URLs (so its cookie jar treats them as https), each request reaches the IdP over
    plain HTTP on its port, Host header unchanged (the IdP's server is told the scheme is
    https, as a deployment's proxy headers would tell it)."""

    def __init__(self, port: int):
        self.port = port
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        direct = httpx.Request(request.method, url, headers=request.headers, content=request.read())
        return self.inner.handle_request(direct)


@pytest.fixture
def https_idp(database_url, tmp_path):
    """An IdP whose issuer is https, behind (a stand-in for) its TLS terminator."""
    served = serve_idp(
        database_url,
        str(tmp_path),
        issuer=HTTPS_ISSUER,
        url_scheme="https",
        background_worker=False,
    )
    served.port = served.app.config["IDP_SETTINGS"].port
    yield served
    served.close()


def https_browser(idp) -> tuple[CitizenBrowser, list[httpx.Response]]:
    """A citizen's browser on the https issuer, and every response it receives."""
    seen: list[httpx.Response] = []
    browser = CitizenBrowser(idp.issuer)
    browser.http = browser_http(
        timeout=15,
        follow_redirects=False,
        transport=TLSTerminator(idp.port),
        event_hooks={"response": [seen.append]},
    )
    return browser, seen


def set_cookies(responses: list[httpx.Response]) -> dict[str, str]:
    """Every Set-Cookie header the browser received, by cookie name (the last one wins)."""
    found = {}
    for response in responses:
        for header in response.headers.get_list("set-cookie"):
            found[header.split("=", 1)[0]] = header
    return found


# -- Item: cookies and HSTS on an https issuer ---------------------------------------------------


def test_an_https_issuers_session_cookies_are_host_prefixed_secure_and_forgotten_on_close(
    https_idp, tmp_path
):
    citizen = new_citizen(https_idp, "https-citizen@example.com")
    client = new_client(https_idp, "https-dept")
    client.http = httpx.Client(timeout=15, transport=TLSTerminator(https_idp.port))
    browser, seen = https_browser(https_idp)

    attempt = client.authorization()
    callback = browser.authorize(attempt.url, citizen["email"], citizen["password"])

    assert "code" in callback.params  # the prefixed cookies were sent back and accepted
    cookies = set_cookies(seen)
    assert {"__Host-idp_session", "__Host-idp_browser", "__Host-idp_csrf"} <= set(cookies)
    for name, header in cookies.items():
        attributes = [part.strip().lower() for part in header.split(";")[1:]]
        assert name.startswith("__Host-"), header
        assert "secure" in attributes and "path=/" in attributes, header
        assert not any(a.startswith("domain=") for a in attributes), header
        # A language preference and the device cookie (sign-in throttling trusts a browser
        # that signed in before) outlive the browser; the sessions do not.
        if name not in {"__Host-idp_lang", "__Host-idp_device"}:
            assert not any(a.startswith(("max-age=", "expires=")) for a in attributes), header
    # Signed in: the session is recognised on the next page (the account home page).
    account = browser.follow(browser.get(HTTPS_ISSUER + "/"))
    assert "https-citizen@example.com" in account.text


def test_the_staff_cookie_on_an_https_issuer_is_host_prefixed_and_not_persistent(https_idp):
    from tests.departments import StaffBrowser, make_staff

    email = make_staff(https_idp.app, "https-admin@example.gov.uk")
    staff = StaffBrowser(https_idp.issuer)
    seen: list[httpx.Response] = []
    staff.http = browser_http(
        base_url=https_idp.issuer,
        timeout=15,
        follow_redirects=False,
        transport=TLSTerminator(https_idp.port),
        event_hooks={"response": [seen.append]},
    )
    staff.signed_in(email)

    header = set_cookies(seen)["__Host-idp_staff"]
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "secure" in attributes and "path=/" in attributes and "samesite=strict" in attributes
    assert not any(a.startswith(("max-age=", "expires=", "domain=")) for a in attributes)


def test_the_language_cookie_on_an_https_issuer_is_host_prefixed_and_a_planted_one_ignored(
    https_idp,
):
    browser, seen = https_browser(https_idp)
    assert '<html lang="cy" ' in browser.get(HTTPS_ISSUER + "/sign-in?lang=cy").text

    header = set_cookies(seen)["__Host-idp_lang"]
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    assert "secure" in attributes and "path=/" in attributes and "httponly" in attributes
    assert not any(a.startswith("domain=") for a in attributes)
    # The choice is remembered on the next page.
    assert '<html lang="cy" ' in browser.get(HTTPS_ISSUER + "/sign-in").text

    # A cookie without the prefix (which another host of the domain, or anyone on plain HTTP,
    # could set) chooses nothing.
    planted, _ = https_browser(https_idp)
    planted.http.cookies.set("idp_lang", "cy", domain="sign-in.test.gov.uk")
    assert '<html lang="en" ' in planted.get(HTTPS_ISSUER + "/sign-in").text


def test_every_response_of_an_https_issuer_carries_hsts(https_idp):
    browser, seen = https_browser(https_idp)
    browser.get(HTTPS_ISSUER + "/sign-in")
    browser.get(HTTPS_ISSUER + "/.well-known/openid-configuration")
    browser.get(HTTPS_ISSUER + "/no-such-page")
    browser.http.post(HTTPS_ISSUER + "/token", data={"grant_type": "nonsense"})
    browser.http.post(HTTPS_ISSUER + "/sign-in", data={}, headers={"Origin": "https://evil.test"})

    assert [r.status_code for r in seen] == [200, 200, 404, 400, 403]
    assert all(r.headers.get("strict-transport-security") == HSTS for r in seen)


def test_an_http_issuer_on_a_developers_machine_sends_no_hsts_and_plain_cookie_names(idp):
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    assert "strict-transport-security" not in page.headers
    assert "idp_csrf" in browser.http.cookies


def test_the_load_balancer_adds_hsts_only_for_an_https_issuer(tmp_path):
    def conf(issuer: str) -> str:
        return ProductionStack(
            database_url="postgresql://x@127.0.0.1/x",
            redis_url="redis://127.0.0.1:6379/0",
            run_dir=tmp_path,
            issuer=issuer,
        ).nginx_conf()

    assert f'add_header Strict-Transport-Security "{HSTS}" always;' in conf(HTTPS_ISSUER)
    assert "Strict-Transport-Security" not in conf("http://127.0.0.1:8080")


# -- Item: CSP and the origin check --------------------------------------------------------------


def test_pages_forbid_plugins_and_a_changed_base_url(idp):
    policy = httpx.get(idp.url("/sign-in")).headers["content-security-policy"]
    directives = {d.strip() for d in policy.split(";")}
    assert "object-src 'none'" in directives and "base-uri 'none'" in directives


def sign_in_form(idp) -> tuple[CitizenBrowser, dict[str, str]]:
    """A browser on the sign-in page, and the form it would send (with its CSRF token)."""
    browser = CitizenBrowser(idp.issuer)
    page = browser.get(idp.url("/sign-in"))
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    return browser, {"csrf_token": token, "email": "nobody@example.com"}


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({"Origin": "{issuer}"}, True),
        ({"Referer": "{issuer}/sign-in"}, True),  # no Origin: the Referer decides
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),  # a sandboxed frame or a privacy-stripped origin
        ({"Origin": "{issuer}.evil.example"}, False),
        ({"Referer": "https://evil.example/{issuer}/sign-in"}, False),
        ({}, False),  # neither header: every browser sends Origin on a POST
    ],
    ids=["same-origin", "referer", "other-site", "null", "lookalike", "other-referer", "none"],
)
def test_a_form_from_another_site_is_refused_even_with_a_valid_csrf_token(idp, headers, accepted):
    browser, form = sign_in_form(idp)
    sent = {k: v.format(issuer=idp.issuer) for k, v in headers.items()}
    raw = httpx.Client(cookies=browser.http.cookies, timeout=15)  # sends only these headers

    response = raw.post(idp.url("/sign-in"), data=form, headers=sent)

    if accepted:  # on to the password page, as for every address
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in/password")
        assert "not sent from this site" not in response.text
    else:
        assert response.status_code == 403
        assert "This form was not sent from this site" in response.text
        with idp.app.app_context():
            refused = db.session.scalars(
                db.select(AuditEntry).filter_by(event="request.cross_origin_refused")
            ).all()
        assert [e.details["path"] for e in refused] == ["/sign-in"]


def test_the_logout_confirmation_is_checked_but_a_departments_logout_post_is_not(idp):
    foreign = {"Origin": "https://dept-a.example.gov.uk"}
    request = httpx.post(idp.url("/logout"), data={}, headers=foreign)
    assert request.status_code != 403  # not the origin check's refusal
    assert "so it has not been accepted" not in request.text
    confirmation = httpx.post(idp.url("/logout"), data={"confirm": "yes"}, headers=foreign)
    assert confirmation.status_code == 403


def test_a_departments_form_post_authorization_request_is_accepted_from_its_site(idp, make_client):
    client = make_client("posting-dept")
    attempt = client.authorization()
    params = dict(httpx.URL(attempt.url).params)
    browser = CitizenBrowser(idp.issuer)

    response = browser.http.post(
        idp.url("/authorize"), data=params, headers={"Origin": "https://dept-a.example.gov.uk"}
    )

    assert response.status_code == 303
    assert "/sign-in" in response.headers["location"]


# -- Item: 303 after a POST ----------------------------------------------------------------------


def test_every_redirect_answering_a_post_is_303_including_the_one_to_the_department(
    idp, make_citizen, make_client
):
    citizen = make_citizen("see-other@example.com")
    client = make_client()
    posted: list[httpx.Response] = []
    browser = CitizenBrowser(idp.issuer)
    browser.http.event_hooks["response"] = [
        lambda r: posted.append(r) if r.request.method == "POST" else None
    ]

    attempt = client.authorization()
    callback = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    # A second request from the department, now as a form post: the session answers at once.
    again = client.authorization()
    answered = browser.http.post(idp.url("/authorize"), data=dict(httpx.URL(again.url).params))

    assert "code" in callback.params
    redirects = [r for r in posted if r.is_redirect]
    assert redirects and all(r.status_code == 303 for r in redirects), [
        (r.request.url.path, r.status_code) for r in redirects
    ]
    assert answered.status_code == 303
    assert answered.headers["location"].startswith(client.redirect_uri)


# -- Item: the development pages ------------------------------------------------------------------


def test_dev_pages_need_the_setting_even_on_a_loopback_issuer(idp):
    for path in ("/dev/totp", "/dev/outbox"):
        response = httpx.get(idp.url(path))
        assert response.status_code == 404, path


def test_dev_pages_are_served_when_the_setting_says_so(dev_idp):
    assert httpx.get(dev_idp.url("/dev/totp")).status_code == 200
    assert httpx.get(dev_idp.url("/dev/outbox")).status_code == 200


def test_run_prod_refuses_the_dev_pages_and_never_passes_them_on(tmp_path, monkeypatch):
    stack = ProductionStack(
        database_url="postgresql://x@127.0.0.1/x",
        redis_url="redis://127.0.0.1:6379/0",
        run_dir=tmp_path,
        settings_env={"IDP_DEV_PAGES": "true"},
    )
    monkeypatch.setattr(
        "idp.operations.production.NGINX", "/bin/sh"
    )  # get past "nginx is not installed"
    with pytest.raises(StackError, match="IDP_DEV_PAGES=true asks for the development pages"):
        stack.start()
    assert stack.environment(stack.instances[0])["IDP_DEV_PAGES"] == "false"

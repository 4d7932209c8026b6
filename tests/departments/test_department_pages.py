"""Staff sign-in, and a department administrator registering and running their services."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from idp.departments.services import change_client_status
from idp.extensions import db
from idp.models import Client
from tests.departments import (
    DVLA,
    PASSPORTS,
    REDIRECT_URI,
    STAFF_PASSWORD,
    StaffBrowser,
    count_clients,
    error_summary,
    make_service,
    make_staff,
    stored_client,
    visible_text,
)
from tests.support.browser import CitizenBrowser
from tests.support.oidc_client import DepartmentClient


@pytest.fixture
def admin(idp) -> str:
    """HM Passport Office's administrator."""
    return make_staff(idp.app, "admin@passports.example.gov.uk", department=PASSPORTS)


@pytest.fixture
def staff(idp) -> StaffBrowser:
    """A browser nobody has signed in with yet."""
    return StaffBrowser(idp.issuer)


@pytest.fixture
def signed_in(staff, admin) -> StaffBrowser:
    """The passport administrator's browser, signed in."""
    return staff.signed_in(admin)


# The question pages of "Register a service", in order, and the fields each one asks.
QUESTIONS = (
    ("/departments/services/new", ("client_name", "client_name_cy")),
    ("/departments/services/new/return-addresses", ("redirect_uris",)),
    ("/departments/services/new/information", ("scopes",)),
    ("/departments/services/new/identity", ("identity_claims",)),
    ("/departments/services/new/proof", ("method", "public_key", "jwks_uri")),
    ("/departments/services/new/sign-out-addresses", ("post_logout_redirect_uris",)),
    ("/departments/services/new/logo", ("logo_uri",)),
)
CHECK_ANSWERS = "/departments/services/new/check"
# The one-page form, with every setting.
ONE_PAGE = "/departments/services/new/all-settings"
METHODS = {"client_secret_basic": "secret", "private_key_jwt": "key"}


def answer_questions(browser: StaffBrowser, **answers) -> httpx.Response:
    """Answer the question pages in turn, as a department administrator would; the first
    page that refuses an answer, else the check-answers page."""
    # The identity question has no empty answer: "No, it does not" unless the test says.
    answers.setdefault("identity_claims", ["none"])
    page = browser.get(QUESTIONS[0][0])
    for path, names in QUESTIONS:
        assert page.status_code == 200 and urlsplit(str(page.url)).path == path, page.url
        response = browser.submit(page, {n: answers[n] for n in names if n in answers}, action=path)
        if not response.is_redirect:
            return response
        page = browser.follow(response)
    assert urlsplit(str(page.url)).path == CHECK_ANSWERS, page.url
    return page


def register_through_form(browser: StaffBrowser, **fields) -> httpx.Response:
    """Register a service through the question pages and "Register this service" (a client
    secret service unless fields say otherwise); the page that refused an answer, if any."""
    answers = {
        "client_name": "Renew your passport",
        "redirect_uris": REDIRECT_URI,
        "method": METHODS[fields.pop("token_endpoint_auth_method", "client_secret_basic")],
        "scopes": ["email"],
        **fields,
    }
    asked = {name for _, names in QUESTIONS for name in names}
    assert set(answers) <= asked, f"not asked on the question pages: {set(answers) - asked}"
    page = answer_questions(browser, **answers)
    if urlsplit(str(page.url)).path != CHECK_ANSWERS or page.status_code != 200:
        return page
    return browser.submit(page, action=CHECK_ANSWERS, button="Register this service")


def register_on_one_page(browser: StaffBrowser, **fields) -> httpx.Response:
    """Fill in the one-page form with every setting (a client secret service unless fields
    say otherwise)."""
    page = browser.get(ONE_PAGE)
    assert page.status_code == 200
    values = {
        "client_name": "Renew your passport",
        "redirect_uris": REDIRECT_URI,
        "token_endpoint_auth_method": "client_secret_basic",
        "scopes": ["email"],
        **fields,
    }
    return browser.submit(page, values)


def shown_code(page: httpx.Response, element_id: str) -> str:
    """The value in <code id=...> on a page."""
    marker = f'<code id="{element_id}">'
    assert marker in page.text, page.text[:2000]
    return page.text.split(marker, 1)[1].split("</code>", 1)[0]


def pem_public_key(private_key) -> str:
    """A PEM SubjectPublicKeyInfo, as `openssl pkey -pubout` writes it."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def pem_private_key(private_key) -> str:
    """A PEM PKCS#8 private key."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def b64url_int(value: str) -> int:
    """A JWK integer member (base64url without padding)."""
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def token_with_bogus_code(idp, client_id: str, secret: str) -> httpx.Response:
    """A token request authenticated with client_secret_basic (the code itself is made up)."""
    return httpx.post(
        idp.url("/token"),
        data={"grant_type": "authorization_code", "code": "made-up", "redirect_uri": REDIRECT_URI},
        auth=(client_id, secret),
    )


def citizen_opens(idp, client_id: str) -> httpx.Response:
    """A citizen following a department's sign-in link (PKCE S256) to the IdP."""
    client = DepartmentClient(issuer=idp.issuer, client_id=client_id, redirect_uri=REDIRECT_URI)
    browser = CitizenBrowser(idp.issuer)
    return browser.follow(browser.get(client.authorization().url))


# Staff sign-in.


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("admin@passports.example.gov.uk", "not the right passphrase at all"),
        ("nobody@passports.example.gov.uk", STAFF_PASSWORD),
    ],
    ids=["wrong password", "unknown email"],
)
def test_wrong_credentials_get_one_error_and_no_session(idp, admin, staff, email, password):
    response = staff.sign_in(email, password)

    assert response.status_code == 400
    assert error_summary(response) == ["The email address or password is not right"]
    assert "idp_staff" not in response.cookies
    assert staff.get("/departments/").headers["location"].startswith("/staff/sign-in")


@pytest.mark.parametrize(
    "path",
    [
        "/departments/",
        "/departments/services/new",
        "/departments/services/anything",
        "/admin/services",
        "/admin/initial-access-tokens",
    ],
)
def test_staff_pages_send_signed_out_visitors_to_sign_in(idp, staff, path):
    response = staff.get(path)

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/staff/sign-in"
    assert parse_qs(location.query) == {"next": [path]}


def test_signing_in_returns_staff_to_the_page_they_asked_for(idp, admin, staff):
    sign_in_page = staff.get("/departments/services/new", follow=True)
    assert "Staff sign in" in visible_text(sign_in_page)

    password_step = staff.submit(sign_in_page, {"email": admin, "password": STAFF_PASSWORD})
    code_page = staff.follow(password_step)
    assert "Enter the code from your authenticator app" in visible_text(code_page)
    response = staff.second_factor(code_page, admin)

    assert response.headers["location"] == "/departments/services/new"
    assert "Register a service" in visible_text(staff.follow(response))


def test_a_citizens_session_grants_nothing_on_staff_pages(idp, make_citizen, admin):
    citizen = make_citizen(admin)  # even with the same email address as a member of staff
    browser = CitizenBrowser(idp.issuer)
    account = browser.sign_in(
        browser.get(idp.url("/sign-in")), citizen["email"], citizen["password"]
    )
    assert account.status_code == 200 and citizen["email"] in account.text

    for path in ("/departments/", "/admin/services"):
        response = browser.get(idp.url(path))
        assert response.status_code == 302
        assert response.headers["location"].startswith("/staff/sign-in")


def test_signing_out_ends_the_session_for_good(idp, signed_in):
    cookie = signed_in.http.cookies["idp_staff"]
    home = signed_in.get("/departments/")
    assert home.status_code == 200

    signed_out = signed_in.submit(home, action="/staff/sign-out")

    assert signed_out.headers["location"] == "/staff/sign-in"
    assert signed_in.get("/departments/").status_code == 302
    stolen = httpx.Client(base_url=idp.issuer, cookies={"idp_staff": cookie})
    assert stolen.get("/departments/").headers["location"].startswith("/staff/sign-in")


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "/%09/evil.example",  # a browser drops the tab: //evil.example
        "/%0d%0a/evil.example",
    ],
)
def test_sign_in_never_redirects_off_site(idp, admin, staff, next_path):
    response = staff.sign_in(admin, next_path=next_path)

    assert response.status_code == 303
    assert response.headers["location"] == "/departments/"


# Registering a service.


def test_registering_a_service_shows_its_client_id_and_its_secret_once(idp, signed_in):
    registered = register_through_form(signed_in)

    assert registered.status_code == 200, error_summary(registered)
    client_id = shown_code(registered, "client-id")
    secret = shown_code(registered, "client-secret")
    assert "Waiting for approval" in visible_text(registered)
    assert "shown only this once" in visible_text(registered)
    client = stored_client(idp.app, client_id)
    assert client.status == "pending"
    assert client.department.name == PASSPORTS
    assert client.check_client_secret(secret)
    assert client.client_metadata["scope"] == "openid email"
    assert client.token_endpoint_auth_method == "client_secret_basic"

    home = visible_text(signed_in.get("/departments/"))
    assert "Renew your passport" in home and client_id in home
    assert "Waiting for approval" in home
    service_page = signed_in.get(f"/departments/services/{client_id}")
    assert service_page.status_code == 200
    assert secret not in service_page.text
    # Until it is approved, citizens are told it is not open yet.
    refused = citizen_opens(idp, client_id)
    assert refused.status_code == 403
    assert "waiting for approval" in visible_text(refused)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"redirect_uris": "http://passport.example.gov.uk/callback"},
            "redirect_uris",
            "must use https",
        ),
        (
            {"redirect_uris": "https://passport.example.gov.uk/callback#top"},
            "redirect_uris",
            "must not have a fragment",
        ),
        ({"client_name": ""}, "client_name", "Enter the service name"),
        (
            {"token_endpoint_auth_method": "private_key_jwt"},
            "public_key",
            "Paste your public key, or give the address of your keys",
        ),
    ],
    ids=["http redirect", "fragment", "no name", "private_key_jwt without keys"],
)
def test_registration_is_refused_as_the_api_would_and_nothing_is_stored(
    idp, signed_in, fields, field, message
):
    response = register_through_form(signed_in, **fields)

    assert response.status_code == 400
    summary = error_summary(response)
    assert len(summary) == 1, summary
    assert message in summary[0]
    if field is not None:
        assert f'href="#{field}"' in response.text
        assert "form-group--error" in response.text
    assert count_clients(idp.app) == 0


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_a_pasted_pem_public_key_registers_a_private_key_jwt_service(idp, signed_in, key):
    private = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if key == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )

    registered = register_through_form(
        signed_in, token_endpoint_auth_method="private_key_jwt", public_key=pem_public_key(private)
    )

    assert registered.status_code == 200, error_summary(registered)
    assert 'id="client-secret"' not in registered.text
    client = stored_client(idp.app, shown_code(registered, "client-id"))
    assert client.token_endpoint_auth_method == "private_key_jwt"
    assert client.client_secret_hash is None
    (jwk,) = client.jwks["keys"]
    numbers = private.public_key().public_numbers()
    if key == "rsa":
        assert (jwk["kty"], b64url_int(jwk["n"])) == ("RSA", numbers.n)
    else:
        assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
        assert (b64url_int(jwk["x"]), b64url_int(jwk["y"])) == (numbers.x, numbers.y)
    assert "with 1 registered public key(s)" in visible_text(
        signed_in.get(f"/departments/services/{client.client_id}")
    )


def test_a_pasted_private_key_is_refused_and_not_stored(idp, signed_in):
    private = ec.generate_private_key(ec.SECP256R1())

    response = register_through_form(
        signed_in, token_endpoint_auth_method="private_key_jwt", public_key=pem_private_key(private)
    )

    assert response.status_code == 400
    (message,) = error_summary(response)
    assert "That is a private key: paste the public key only" in message
    assert 'href="#public_key"' in response.text
    assert count_clients(idp.app) == 0


def test_a_public_key_on_another_curve_is_refused_rather_than_mislabelled(idp, signed_in):
    # ES256 is P-256 only: a P-384 key labelled ES256 could never verify an assertion.
    private = ec.generate_private_key(ec.SECP384R1())

    response = register_through_form(
        signed_in, token_endpoint_auth_method="private_key_jwt", public_key=pem_public_key(private)
    )

    assert response.status_code == 400
    (message,) = error_summary(response)
    assert "P-384" in message and "P-256" in message
    assert count_clients(idp.app) == 0


# Only their own department's services.


@pytest.fixture
def dvla_service(idp) -> tuple[str, str]:
    """Another department's service, active, with a client secret."""
    return make_service(idp.app, DVLA, "View your driving licence", approved=True)


def test_a_department_sees_only_its_own_services(idp, signed_in, dvla_service):
    own, _ = make_service(idp.app, PASSPORTS, "Renew your passport")

    home = visible_text(signed_in.get("/departments/"))

    assert "Renew your passport" in home and own in home
    assert "View your driving licence" not in home and dvla_service[0] not in home
    other = signed_in.get(f"/departments/services/{dvla_service[0]}")
    assert other.status_code == 404
    assert "View your driving licence" not in other.text


@pytest.mark.parametrize(
    ("suffix", "fields"),
    [
        ("", {"edit-client_name": "Hijacked", "edit-redirect_uris": "https://evil.example/cb"}),
        ("/keys", {"keys-jwks_uri": "https://evil.example/jwks.json"}),
        ("/secret", {"action-action": "rotate"}),
        ("/status", {"action-action": "disable"}),
    ],
    ids=["settings", "keys", "secret", "status"],
)
def test_another_departments_service_cannot_be_changed(
    idp, signed_in, dvla_service, suffix, fields
):
    client_id, secret = dvla_service
    own, _ = make_service(idp.app, PASSPORTS)
    own_page = signed_in.get(f"/departments/services/{own}")
    token = signed_in.form(own_page, f"/departments/services/{own}/status").fields[0][1]
    before = stored_client(idp.app, client_id)

    response = signed_in.http.post(
        f"/departments/services/{client_id}{suffix}", data={"csrf_token": token, **fields}
    )

    assert response.status_code == 404
    after = stored_client(idp.app, client_id)
    assert after.status == "active"
    assert after.client_metadata == before.client_metadata
    assert after.check_client_secret(secret)


# Running a service.


@pytest.fixture
def active_service(idp, signed_in) -> tuple[str, str]:
    """A passport service registered through the form and approved."""
    registered = register_through_form(signed_in)
    client_id = shown_code(registered, "client-id")
    with idp.app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        change_client_status(client, "approve", actor="test", platform_admin=True)
    return client_id, shown_code(registered, "client-secret")


def test_rotating_the_secret_shows_a_new_one_and_the_old_one_stops_working(
    idp, signed_in, active_service
):
    client_id, old_secret = active_service
    assert token_with_bogus_code(idp, client_id, old_secret).json()["error"] == "invalid_grant"
    page = signed_in.get(f"/departments/services/{client_id}")

    rotated = signed_in.submit(page, action=f"/departments/services/{client_id}/secret")

    assert rotated.status_code == 200
    new_secret = shown_code(rotated, "client-secret")
    assert new_secret != old_secret
    refused = token_with_bogus_code(idp, client_id, old_secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    accepted = token_with_bogus_code(idp, client_id, new_secret)
    assert accepted.status_code == 400 and accepted.json()["error"] == "invalid_grant"


def test_giving_a_jwks_url_switches_the_service_to_private_key_jwt(
    idp, signed_in, active_service, jwks_server
):
    client_id, old_secret = active_service
    page = signed_in.get(f"/departments/services/{client_id}")

    response = signed_in.submit(
        page, {"keys-jwks_uri": jwks_server.url}, action=f"/departments/services/{client_id}/keys"
    )

    assert response.status_code == 303
    saved = visible_text(signed_in.follow(response))
    assert "Your changes are saved" in saved
    assert f"private_key_jwt with keys at {jwks_server.url}" in saved
    assert "Rotate the client secret" not in saved
    client = stored_client(idp.app, client_id)
    assert client.token_endpoint_auth_method == "private_key_jwt"
    assert client.jwks_uri == jwks_server.url
    refused = token_with_bogus_code(idp, client_id, old_secret)
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Give either a JWKS URL or a public key"),
        ({"keys-jwks_uri": "http://keys.example.gov.uk/jwks.json"}, "must use https"),
        ("private", "that is a private key"),
    ],
    ids=["neither", "http url", "private key"],
)
def test_bad_keys_are_refused_and_the_service_keeps_its_secret(
    idp, signed_in, active_service, fields, message
):
    client_id, secret = active_service
    if fields == "private":
        fields = {"keys-public_key": pem_private_key(ec.generate_private_key(ec.SECP256R1()))}
    page = signed_in.get(f"/departments/services/{client_id}")

    response = signed_in.submit(page, fields, action=f"/departments/services/{client_id}/keys")

    assert response.status_code == 400
    assert any(message in item for item in error_summary(response)), error_summary(response)
    client = stored_client(idp.app, client_id)
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.check_client_secret(secret)


@pytest.mark.parametrize("method", ["client_secret_basic", "private_key_jwt"])
def test_saving_the_settings_changes_only_what_was_edited(idp, signed_in, method):
    key = pem_public_key(ec.generate_private_key(ec.SECP256R1()))
    # The one-page form, which has every setting (a public subject is not asked otherwise).
    registered = register_on_one_page(
        signed_in, token_endpoint_auth_method=method, public_key=key, subject_type="public"
    )
    client_id = shown_code(registered, "client-id")
    before = stored_client(idp.app, client_id)
    assert before.client_metadata["subject_type"] == "public"
    page = signed_in.get(f"/departments/services/{client_id}")

    response = signed_in.submit(
        page,
        {"edit-client_name": "Renew or replace your passport"},
        action=f"/departments/services/{client_id}",
    )

    assert response.status_code == 303, error_summary(response)
    shown = visible_text(signed_in.follow(response))
    assert "Your changes are saved" in shown
    assert "Renew or replace your passport" in shown
    after = stored_client(idp.app, client_id)
    assert after.client_name == "Renew or replace your passport"
    assert after.client_metadata == {**before.client_metadata, "client_name": after.client_name}
    assert after.client_secret_hash == before.client_secret_hash
    assert after.status == "pending"


def test_switching_a_service_off_and_on_again(idp, signed_in, active_service):
    client_id, _ = active_service
    page = signed_in.get(f"/departments/services/{client_id}")

    off = signed_in.submit(
        page,
        {"action-reason": "maintenance"},
        action=f"/departments/services/{client_id}/status",
        button="Switch this service off",
    )

    # One press for the department's own switch (no confirmation page), then a success banner.
    assert off.status_code == 303
    page = signed_in.follow(off)
    assert "Success The service is switched off: citizens cannot sign in to it." in visible_text(
        page
    )
    assert "Switched off" in visible_text(page)
    refused = citizen_opens(idp, client_id)
    assert refused.status_code == 403
    assert f"{PASSPORTS} has switched this service off" in visible_text(refused)

    on = signed_in.submit(
        page,
        action=f"/departments/services/{client_id}/status",
        button="Switch this service back on",
    )

    assert on.status_code == 303
    back_on = visible_text(signed_in.follow(on))
    assert "Active" in back_on and "The service is switched back on." in back_on
    welcomed = citizen_opens(idp, client_id)
    assert welcomed.status_code == 200
    assert "Sign in to continue to Renew your passport" in visible_text(welcomed)


@pytest.mark.parametrize("action", ["approve", "suspend", "reinstate"])
def test_a_department_cannot_approve_or_suspend_its_services(idp, signed_in, action):
    registered = register_through_form(signed_in)
    client_id = shown_code(registered, "client-id")
    page = signed_in.get(f"/departments/services/{client_id}")
    assert "Approve this service" not in page.text

    response = signed_in.submit(
        page, {"action-action": action}, action=f"/departments/services/{client_id}/status"
    )

    assert response.status_code == 403
    assert stored_client(idp.app, client_id).status == "pending"


def test_a_platform_administrator_cannot_register_for_a_department(idp, staff):
    staff.signed_in(make_staff(idp.app, "platform@sign-in.example.gov.uk"))

    assert staff.get("/departments/services/new").status_code == 403


@pytest.mark.parametrize("form", ["register", "settings", "keys", "secret", "status"])
def test_posts_without_the_csrf_token_are_refused_and_change_nothing(
    idp, signed_in, active_service, form
):
    client_id, secret = active_service
    before = stored_client(idp.app, client_id)
    service = f"/departments/services/{client_id}"
    if form == "register":
        page = signed_in.get("/departments/services/new")
        action, fields = "/departments/services/new", {"client_name": "Sneaky"}
    else:
        page = signed_in.get(service)
        action, fields = {
            "settings": (service, {"edit-client_name": "Sneaky"}),
            "keys": (f"{service}/keys", {"keys-jwks_uri": "https://evil.example/jwks.json"}),
            "secret": (f"{service}/secret", {}),
            "status": (f"{service}/status", {"action-reason": "sneaky"}),
        }[form]
    tokens = ("csrf_token", "edit-csrf_token", "keys-csrf_token", "action-csrf_token")

    response = signed_in.submit(page, fields, action=action, drop=tokens)

    assert response.status_code == 400
    assert "This form has expired or was not sent from this site" in visible_text(response)
    assert count_clients(idp.app) == 1
    after = stored_client(idp.app, client_id)
    assert (after.status, after.client_metadata) == (before.status, before.client_metadata)
    assert after.check_client_secret(secret)

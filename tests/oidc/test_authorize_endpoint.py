"""The authorization endpoint (RFC 6749 4.1, OIDC Core 3.1.2, RFC 9207): bad requests."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.support.browser import callback
from tests.support.oauth_errors import ERROR_DESCRIPTION_CHARSET
from tests.support.oidc_client import DepartmentClient, s256

REDIRECT_URI = "https://dept-a.example.gov.uk/callback"
# A state a department might really use: spaces, reserved and non-ASCII characters.
AWKWARD_STATE = "st ate/+?&=%41#é~"


@pytest.fixture
def department(make_client) -> DepartmentClient:
    """A department registered with one redirect URI."""
    return make_client("dept-a", redirect_uri=REDIRECT_URI)


def request_params(client: DepartmentClient, *, omit: tuple[str, ...] = (), **overrides) -> list:
    """A good authorization request's parameters (list of pairs), changed as asked."""
    params = dict(client.authorization(state=AWKWARD_STATE).params)
    for name in omit:
        params.pop(name, None)
    pairs = list(params.items())
    for name, value in overrides.items():
        if isinstance(value, list):
            pairs = [(k, v) for k, v in pairs if k != name] + [(name, v) for v in value]
        else:
            pairs = [(k, v) for k, v in pairs if k != name] + [(name, value)]
    return pairs


def send(idp, pairs: list, method: str, cookies: httpx.Cookies | None = None) -> httpx.Response:
    """The browser arrives at /authorize by GET (query) or POST (form)."""
    url = idp.url("/authorize")
    with httpx.Client(cookies=cookies) as http:
        if method == "GET":
            return http.get(f"{url}?{urlencode(pairs)}")
        return http.post(url, content=urlencode(pairs), headers=FORM)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def assert_error_page(response: httpx.Response, explanation: str) -> None:
    """An HTML page that explains, with no redirect to the untrusted address."""
    assert response.status_code == 400, (response.status_code, response.headers)
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert explanation in response.text, response.text


def redirected_error(response: httpx.Response, error: str, state: str | None = AWKWARD_STATE):
    """A redirect to the registered URI with error, the exact state and iss; no code."""
    # RFC 9700 4.12: 303 answers a POSTed request, so the browser does not post it on.
    expected = 303 if response.request.method == "POST" else 302
    assert response.status_code == expected, (response.status_code, response.text[:500])
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    params = {k: v[0] for k, v in query.items()}
    assert params["error"] == error, params
    assert ERROR_DESCRIPTION_CHARSET.match(params.get("error_description", ""))
    if state is not None:
        assert params["state"] == state
    assert "code" not in params
    return params


METHODS = ["GET", "POST"]

UNTRUSTED = {
    "unknown-client": ({"client_id": "no-such-dept"}, (), "not registered"),
    "client-id-with-nul": ({"client_id": "dept-a\x00"}, (), "not registered"),
    "client-id-very-long": ({"client_id": "d" * 5000}, (), "not registered"),
    "missing-client-id": ({}, ("client_id",), "client_id is missing"),
    "repeated-client-id": ({"client_id": ["dept-a", "dept-a"]}, (), "repeats"),
    "missing-redirect-uri": ({}, ("redirect_uri",), "redirect_uri is missing"),
    "repeated-redirect-uri": ({"redirect_uri": [REDIRECT_URI, REDIRECT_URI]}, (), "repeats"),
    "other-redirect-uri": (
        {"redirect_uri": "https://evil.example/callback"},
        (),
        "not one it registered",
    ),
    "trailing-slash": ({"redirect_uri": REDIRECT_URI + "/"}, (), "not one it registered"),
    "upper-case-host": (
        {"redirect_uri": "https://DEPT-A.example.gov.uk/callback"},
        (),
        "not one it registered",
    ),
    "upper-case-path": (
        {"redirect_uri": "https://dept-a.example.gov.uk/Callback"},
        (),
        "not one it registered",
    ),
    "added-query": ({"redirect_uri": REDIRECT_URI + "?next=/"}, (), "not one it registered"),
    "added-fragment": ({"redirect_uri": REDIRECT_URI + "#x"}, (), "not one it registered"),
    "http-not-https": (
        {"redirect_uri": "http://dept-a.example.gov.uk/callback"},
        (),
        "not one it registered",
    ),
    "explicit-port": (
        {"redirect_uri": "https://dept-a.example.gov.uk:443/callback"},
        (),
        "not one it registered",
    ),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("overrides", "omit", "explanation"), UNTRUSTED.values(), ids=UNTRUSTED.keys()
)
@pytest.mark.both_databases
def test_untrusted_client_or_redirect_uri_gets_an_error_page(
    idp, department, method, overrides, omit, explanation
):
    response = send(idp, request_params(department, omit=omit, **overrides), method)
    assert_error_page(response, explanation)


def test_the_error_page_does_not_reflect_markup(idp, department):
    pairs = request_params(department, redirect_uri="https://x.example/<script>alert(1)</script>")
    response = send(idp, pairs, "GET")
    assert_error_page(response, "not one it registered")
    assert "<script>alert(1)" not in response.text


REDIRECTED = {
    "response-type-missing": ({}, ("response_type",), "unsupported_response_type"),
    "response-type-token": ({"response_type": "token"}, (), "unsupported_response_type"),
    "response-type-id-token": ({"response_type": "id_token"}, (), "unsupported_response_type"),
    "response-type-code-id-token": (
        {"response_type": "code id_token"},
        (),
        "unsupported_response_type",
    ),
    "response-type-with-quote": ({"response_type": 'co"de'}, (), "unsupported_response_type"),
    "response-type-with-backslash": ({"response_type": "co\\de"}, (), "unsupported_response_type"),
    "response-type-non-ascii": ({"response_type": "códe"}, (), "unsupported_response_type"),
    "scope-without-openid": ({"scope": "email"}, (), "invalid_scope"),
    "scope-missing": ({}, ("scope",), "invalid_scope"),
    "pkce-missing": ({}, ("code_challenge", "code_challenge_method"), "invalid_request"),
    "pkce-plain": (
        {"code_challenge_method": "plain", "code_challenge": "p" * 43},
        (),
        "invalid_request",
    ),
    "pkce-challenge-without-method": ({}, ("code_challenge_method",), "invalid_request"),
    "pkce-method-without-challenge": ({}, ("code_challenge",), "invalid_request"),
    "pkce-unknown-method": ({"code_challenge_method": "S512"}, (), "invalid_request"),
    "pkce-challenge-too-short": ({"code_challenge": "short"}, (), "invalid_request"),
    "request-object": ({"request": "eyJhbGciOiJub25lIn0.e30."}, (), "request_not_supported"),
    "request-uri": (
        {"request_uri": "https://dept-a.example.gov.uk/request.jwt"},
        (),
        "request_uri_not_supported",
    ),
    "prompt-none-without-session": ({"prompt": "none"}, (), "login_required"),
    "prompt-none-with-login": ({"prompt": "none login"}, (), "invalid_request"),
    "prompt-unknown": ({"prompt": "bogus"}, (), "invalid_request"),
    "max-age-negative": ({"max_age": "-1"}, (), "invalid_request"),
    "max-age-word": ({"max_age": "soon"}, (), "invalid_request"),
    "max-age-fraction": ({"max_age": "1.5"}, (), "invalid_request"),
    "max-age-superscript-digit": ({"max_age": "\u00b2"}, (), "invalid_request"),
    "max-age-arabic-indic-digits": ({"max_age": "\u0661\u0662"}, (), "invalid_request"),
    "max-age-huge": ({"max_age": "9" * 40}, (), "invalid_request"),
    "max-age-empty": ({"max_age": ""}, (), "invalid_request"),
    "response-mode-fragment": ({"response_mode": "fragment"}, (), "invalid_request"),
    "response-mode-form-post": ({"response_mode": "form_post"}, (), "invalid_request"),
    "nonce-too-long": ({"nonce": "n" * 513}, (), "invalid_request"),
    "nonce-with-nul": ({"nonce": "nonce\x00"}, (), "invalid_request"),
    "repeated-scope": ({"scope": ["openid", "openid email"]}, (), "invalid_request"),
    "repeated-response-type": ({"response_type": ["code", "code"]}, (), "invalid_request"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("overrides", "omit", "error"), REDIRECTED.values(), ids=REDIRECTED.keys())
@pytest.mark.both_databases
def test_bad_request_is_redirected_with_error_state_and_iss(
    idp, department, method, overrides, omit, error
):
    response = send(idp, request_params(department, omit=omit, **overrides), method)
    params = redirected_error(response, error)
    assert params["iss"] == idp.issuer


def test_a_redirected_error_without_state_has_no_state(idp, department):
    response = send(idp, request_params(department, omit=("state",), prompt="none"), "GET")
    params = redirected_error(response, "login_required", state=None)
    assert "state" not in params
    assert params["iss"] == idp.issuer


def test_repeated_state_is_invalid_request(idp, department):
    response = send(idp, request_params(department, state=["one", "two"]), "GET")
    redirected_error(response, "invalid_request", state=None)


def test_an_overlong_state_is_invalid_request(idp, department):
    state = "s" * 2049
    response = send(idp, request_params(department, state=state), "GET")
    redirected_error(response, "invalid_request", state=state)


# With a signed-in citizen.


def signed_in_cookies(browser, department, citizen) -> httpx.Cookies:
    """Sign the citizen in and agree to dept-a once; return the browser's cookies."""
    attempt = department.authorization()
    browser.authorize(attempt.url, citizen["email"], citizen["password"])
    return browser.http.cookies


def test_prompt_none_without_consent_is_consent_required(
    idp, department, make_client, browser, citizen
):
    cookies = signed_in_cookies(browser, department, citizen)
    other = make_client("dept-b", redirect_uri=REDIRECT_URI)
    pairs = request_params(other, prompt="none")
    response = send(idp, pairs, "GET", cookies=cookies)
    params = redirected_error(response, "consent_required")
    assert params["iss"] == idp.issuer


def test_prompt_none_with_session_and_consent_issues_a_code(idp, department, browser, citizen):
    cookies = signed_in_cookies(browser, department, citizen)
    response = send(idp, request_params(department, prompt="none"), "GET", cookies=cookies)
    params = callback(response).params
    assert params["code"]
    assert params["state"] == AWKWARD_STATE
    assert params["iss"] == idp.issuer


@pytest.mark.parametrize("method", METHODS)
def test_a_good_request_by_get_or_post_issues_a_code(idp, department, browser, citizen, method):
    attempt = department.authorization(state=AWKWARD_STATE)
    if method == "GET":
        response = browser.get(attempt.url)
    else:
        response = browser.http.post(idp.url("/authorize"), data=attempt.params)
    response = browser.follow(response)
    response = browser.sign_in(response, citizen["email"], citizen["password"])
    response = browser.consent(response)
    params = callback(response).params
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == AWKWARD_STATE
    assert params["iss"] == idp.issuer
    token = department.token_request(params["code"], attempt.code_verifier)
    assert token.status_code == 200, token.text


def test_unknown_parameters_are_ignored(idp, department, browser, citizen):
    attempt = department.authorization(
        state=AWKWARD_STATE, foo="bar", claims_locales="en", display="page", x_custom="é"
    )
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    assert cb.params["state"] == AWKWARD_STATE
    token = department.token_request(cb.params["code"], attempt.code_verifier)
    assert token.status_code == 200, token.text


@pytest.mark.both_databases
def test_nonce_with_nul_after_sign_in_is_not_a_server_error(idp, department, browser, citizen):
    """The check must not wait until the code is stored (PostgreSQL text refuses NUL)."""
    signed_in_cookies(browser, department, citizen)
    attempt = department.authorization(state=AWKWARD_STATE, nonce="nonce\x00")
    response = browser.follow(browser.get(attempt.url))
    redirected_error(response, "invalid_request")


# A confidential client registered with require_pkce: false (OIDC Core 3.1.2.1 nonce binding).


@pytest.fixture
def no_pkce_department(make_client) -> DepartmentClient:
    """A confidential department that registered PKCE as optional."""
    return make_client("dept-a", redirect_uri=REDIRECT_URI, require_pkce=False)


def test_without_pkce_a_nonce_is_required(idp, no_pkce_department):
    pairs = request_params(
        no_pkce_department, omit=("code_challenge", "code_challenge_method", "nonce")
    )
    redirected_error(send(idp, pairs, "GET"), "invalid_request")


def test_without_pkce_a_nonce_is_enough(idp, no_pkce_department, browser, citizen):
    attempt = no_pkce_department.authorization(
        omit=("code_challenge", "code_challenge_method"), state=AWKWARD_STATE
    )
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    token = no_pkce_department.token_request(cb.params["code"], None)
    assert token.status_code == 200, token.text
    claims = no_pkce_department.validate_id_token(token.json()["id_token"], attempt.nonce)
    assert claims["nonce"] == attempt.nonce


def test_pkce_sent_by_an_optional_pkce_client_is_still_checked(
    idp, no_pkce_department, browser, citizen
):
    attempt = no_pkce_department.authorization(state=AWKWARD_STATE)
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    token = no_pkce_department.token_request(cb.params["code"], None)
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_request"


def test_optional_pkce_still_refuses_plain(idp, no_pkce_department):
    pairs = request_params(
        no_pkce_department, code_challenge_method="plain", code_challenge=s256("v" * 43)
    )
    redirected_error(send(idp, pairs, "GET"), "invalid_request")

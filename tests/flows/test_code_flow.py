"""The whole authorization code flow over HTTP, as a department and a citizen see it."""

from __future__ import annotations

from tests.support.browser import SIGN_IN_FORM, CitizenBrowser, callback


def test_citizen_signs_in_once_and_a_second_department_recognises_them(
    idp, make_citizen, make_client
):
    citizen = make_citizen()
    tax = make_client("tax", redirect_uri="https://tax.example.gov.uk/callback")
    driving = make_client(
        "driving",
        auth_method="private_key_jwt",
        redirect_uri="https://driving.example.gov.uk/callback",
        id_token_signed_response_alg="RS256",
    )
    browser = CitizenBrowser(idp.issuer)

    attempt = tax.authorization(state="tax state with spaces & symbols é/+")
    cb = browser.authorize(attempt.url, citizen["email"], citizen["password"])
    assert cb.url.startswith("https://tax.example.gov.uk/callback?")
    assert cb.params["state"] == attempt.state
    assert cb.params["iss"] == idp.issuer
    token = tax.token_request(cb.params["code"], attempt.code_verifier)
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"].lower() == "bearer"
    claims = tax.validate_id_token(body["id_token"], attempt.nonce)
    assert claims["sub"] == citizen["subject"]
    assert claims["amr"] == ["pwd", "otp"]
    assert claims["vot"] == "Cl.Cm"
    assert {"auth_time", "sid", "at_hash", "iat"} <= set(claims)

    # The second department: no password prompt, only its own consent.
    attempt2 = driving.authorization(scope="openid email profile")
    response = browser.follow(browser.get(attempt2.url))
    assert SIGN_IN_FORM not in response.text
    response = browser.consent(response)
    cb2 = callback(response)
    token2 = driving.token_request(cb2.params["code"], attempt2.code_verifier)
    assert token2.status_code == 200, token2.text
    claims2 = driving.validate_id_token(token2.json()["id_token"], attempt2.nonce)
    assert claims2["sid"] == claims["sid"]
    assert claims2["auth_time"] == claims["auth_time"]
    userinfo = driving.http.get(
        f"{idp.issuer}/userinfo",
        headers={"Authorization": f"Bearer {token2.json()['access_token']}"},
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["email"] == citizen["email"]

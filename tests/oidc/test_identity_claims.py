"""Verified identity details over HTTP, asked for the GOV.UK One Login way: an identity
confidence in vtr (["Cl.Cm.P2"]), the claims in the OIDC claims parameter (userinfo member)
or by registration, the consent page listing each detail, userinfo giving them (the
coreIdentityJWT signed by the identity-signing key, verified here with the published DID
document), and a citizen who could not prove their identity sent back with returnCode or
access_denied."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import select, update

from idp.accounts.identity.store import save_identity
from idp.extensions import db
from idp.models import Client, Consent, IdentityCheck, IdentityDisclosure, IdentityRecord
from idp.models.timestamps import utcnow
from tests.support.audit import stored_entries
from tests.support.browser import SECOND_FACTOR_HEADING, CitizenBrowser, callback
from tests.support.oauth_errors import ERROR_DESCRIPTION_CHARSET
from tests.support.oidc_client import AuthorizationAttempt, DepartmentClient

VOCAB = "https://vocab.account.gov.uk/v1/"
CORE = VOCAB + "coreIdentityJWT"
ADDRESS = VOCAB + "address"
PASSPORT = VOCAB + "passport"
DRIVING = VOCAB + "drivingPermit"
RETURN_CODE = VOCAB + "returnCode"
ALL_CLAIMS = [CORE, ADDRESS, PASSPORT, DRIVING, RETURN_CODE]
CONSENT_HEADING = "wants to know who you are"

KENNETH = {
    "name": [
        {
            "nameParts": [
                {"type": "GivenName", "value": "KENNETH"},
                {"type": "FamilyName", "value": "DECERQUEIRA"},
            ]
        }
    ],
    "birthDate": [{"value": "1965-07-08"}],
    "address": [
        {
            "uprn": "100120012077",
            "buildingNumber": "8",
            "streetName": "HADLEY ROAD",
            "addressLocality": "BATH",
            "postalCode": "BA2 5AA",
            "addressCountry": "GB",
            "validFrom": "2000-01-01",
        }
    ],
    "passport": [
        {"documentNumber": "321654987", "icaoIssuerCode": "GBR", "expiryDate": "2030-01-01"}
    ],
}


# -- Helpers -----------------------------------------------------------------------------------


def prove(idp, citizen: dict, level: str = "P2", details: dict | None = None) -> None:
    """The citizen proved their identity (as the identity check stores it)."""
    with idp.app.app_context():
        save_identity(citizen["id"], level, details or KENNETH, f"check-{level}")
        db.session.commit()


def register_for(idp, client: DepartmentClient, claims: list[str]) -> None:
    """The department registered for these identity claims and the platform approved them."""
    with idp.app.app_context():
        row = db.session.scalar(select(Client).filter_by(client_id=client.client_id))
        row.client_metadata = {**row.client_metadata, "identity_claims": claims}
        row.approved_metadata = {**(row.approved_metadata or {}), "identity_claims": claims}
        db.session.commit()


def claims_param(*names: str, member: str = "userinfo") -> str:
    return json.dumps({member: {name: None for name in names}})


@pytest.fixture
def department(idp, make_client) -> DepartmentClient:
    """A department registered for every identity claim."""
    client = make_client("dept-id", redirect_uri="https://dept-id.example.gov.uk/callback")
    register_for(idp, client, ALL_CLAIMS)
    return client


def sign_in(browser: CitizenBrowser, url: str, citizen: dict) -> httpx.Response:
    """Start an authorization and sign in (password and app); the page that follows."""
    page = browser.follow(browser.get(url))
    if page.status_code == 200 and page.url.path == "/sign-in":
        page = browser.sign_in(page, citizen["email"], citizen["password"])
    elif page.status_code == 200 and SECOND_FACTOR_HEADING in page.text:
        page = browser.second_factor(page, citizen["email"])
    return page


def journey_of(page: httpx.Response) -> str:
    (handle,) = parse_qs(urlsplit(str(page.url)).query)["journey"]
    return handle


def redeem(client: DepartmentClient, attempt: AuthorizationAttempt, code: str) -> dict:
    """The token response, with the validated ID token's claims as "claims"."""
    response = client.token_request(code, attempt.code_verifier)
    assert response.status_code == 200, response.text
    tokens = response.json()
    tokens["claims"] = client.validate_id_token(tokens["id_token"], attempt.nonce)
    return tokens


def userinfo(idp, access_token: str) -> dict:
    response = httpx.get(idp.url("/userinfo"), headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return response.json()


def verify_core_identity(idp, token: str, client_id: str) -> dict:
    """Validate a coreIdentityJWT as a department must: the key named by kid in the IdP's DID
    document (did:web), ES256, iss, aud, exp, nbf."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256"
    document = httpx.get(idp.url("/.well-known/did.json")).json()
    did, _, _ = header["kid"].partition("#")
    assert did == document["id"]
    (method,) = [m for m in document["assertionMethod"] if m["id"] == header["kid"]]
    return jwt.decode(
        token,
        jwt.PyJWK(method["publicKeyJwk"], algorithm="ES256"),
        algorithms=["ES256"],
        audience=client_id,
        issuer=idp.issuer,
        options={"require": ["iss", "sub", "aud", "exp", "nbf", "iat"]},
    )


def authorize_to_code(
    browser: CitizenBrowser, client: DepartmentClient, citizen: dict, **params: str
) -> tuple[AuthorizationAttempt, httpx.Response, dict]:
    """Sign in and agree: the attempt, the consent page (or None) and the callback params."""
    attempt = client.authorization(**params)
    page = sign_in(browser, attempt.url, citizen)
    consent_page = None
    if page.status_code == 200 and CONSENT_HEADING in page.text:
        consent_page = page
        page = browser.consent(page)
    return attempt, consent_page, callback(page).params


P2 = json.dumps(["Cl.Cm.P2"])
P1 = json.dumps(["Cl.Cm.P1"])


# -- A proved identity, asked for and given ----------------------------------------------------


def test_a_p2_citizen_gives_the_asked_details_and_a_core_identity_jwt_the_did_key_verifies(
    idp, browser, citizen, department
):
    prove(idp, citizen)
    attempt, consent_page, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(CORE, ADDRESS, PASSPORT)
    )
    # The consent page lists each verified detail in plain words, and only those asked.
    assert consent_page is not None
    assert "your name and date of birth, as checked" in consent_page.text
    assert "your address, as checked" in consent_page.text
    assert "your passport details" in consent_page.text
    assert "driving licence" not in consent_page.text

    tokens = redeem(department, attempt, params["code"])
    # As One Login: the ID token's vot is the credential level; vtm names the trustmark.
    assert tokens["claims"]["vot"] == "Cl.Cm"
    assert tokens["claims"]["vtm"] == f"{idp.issuer}/trustmark"

    info = userinfo(idp, tokens["access_token"])
    assert info[ADDRESS] == KENNETH["address"]
    assert info[PASSPORT] == KENNETH["passport"]
    assert DRIVING not in info and RETURN_CODE not in info
    core = verify_core_identity(idp, info[CORE], department.client_id)
    assert core["sub"] == tokens["claims"]["sub"] == info["sub"]
    assert core["vot"] == "P2"
    assert core["vtm"] == f"{idp.issuer}/trustmark"
    assert core["vc"] == {
        "type": ["VerifiableCredential", "IdentityCheckCredential"],
        "credentialSubject": {"name": KENNETH["name"], "birthDate": KENNETH["birthDate"]},
    }
    assert core["exp"] > core["nbf"]

    # What was shared is recorded by claim name, never by value.
    with idp.app.app_context():
        shared = db.session.scalars(
            select(IdentityDisclosure.claim).filter_by(
                citizen_id=citizen["id"], client_id=department.client_id
            )
        ).all()
    assert sorted(shared) == sorted([CORE, ADDRESS, PASSPORT])
    (entry,) = stored_entries(idp, event="identity.shared")
    assert sorted(entry["claims"]) == sorted([CORE, ADDRESS, PASSPORT])
    assert entry["level"] == "P2"
    assert "KENNETH" not in json.dumps(entry, default=str)
    assert "321654987" not in json.dumps(entry, default=str)


def test_the_core_identity_jwt_is_refused_with_a_wrong_key_audience_or_after_expiry(
    idp, browser, citizen, department, clock
):
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(CORE)
    )
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    token = info[CORE]
    verify_core_identity(idp, token, department.client_id)
    with pytest.raises(jwt.InvalidAudienceError):
        verify_core_identity(idp, token, "another-department")
    # The ID-token keys do not verify it: it is signed by the identity key alone.
    id_token_keys = httpx.get(idp.url("/jwks.json")).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    assert all(k["kid"] != kid and f"#{k['kid']}" not in kid for k in id_token_keys)
    for key in (k for k in id_token_keys if k["kty"] == "EC"):
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, jwt.PyJWK(key), algorithms=["ES256"], audience=department.client_id)
    claims = jwt.decode(token, options={"verify_signature": False})
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(
            token,
            jwt.PyJWK(
                next(
                    m["publicKeyJwk"]
                    for m in httpx.get(idp.url("/.well-known/did.json")).json()["assertionMethod"]
                    if m["id"] == kid
                ),
                algorithm="ES256",
            ),
            algorithms=["ES256"],
            audience=department.client_id,
            # A department checking it after its lifetime (plus a second).
            leeway=-(claims["exp"] - claims["nbf"] + 1),
            options={"verify_iat": False, "verify_nbf": False},
        )


def test_the_core_identity_jwt_sub_is_the_pairwise_subject_of_a_pairwise_department(
    idp, browser, citizen, make_client
):
    client = make_client(
        "dept-pairwise",
        redirect_uri="https://dept-pairwise.example.gov.uk/callback",
        subject_type="pairwise",
    )
    register_for(idp, client, [CORE])
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(browser, client, citizen, vtr=P2)
    tokens = redeem(client, attempt, params["code"])
    core = verify_core_identity(idp, userinfo(idp, tokens["access_token"])[CORE], client.client_id)
    assert core["sub"] == tokens["claims"]["sub"]
    assert core["sub"] != citizen["subject"]


def test_the_identity_jwks_publishes_the_identity_key_and_the_id_token_jwks_does_not(idp):
    identity = httpx.get(idp.url("/.well-known/identity-jwks.json"))
    assert identity.status_code == 200
    assert "public" in identity.headers["cache-control"]
    keys = identity.json()["keys"]
    assert keys and all(k["kty"] == "EC" and k["alg"] == "ES256" for k in keys)
    assert all("d" not in k for k in keys)
    document = httpx.get(idp.url("/.well-known/did.json")).json()
    port = urlsplit(idp.issuer).port
    assert document["id"] == f"did:web:127.0.0.1%3A{port}"
    assert document["@context"][0] == "https://www.w3.org/ns/did/v1"
    assert [m["id"] for m in document["assertionMethod"]] == [k["kid"] for k in keys]
    for method in document["assertionMethod"]:
        assert method["type"] == "JsonWebKey"
        assert method["controller"] == document["id"]
        assert "d" not in method["publicKeyJwk"]
    id_token_kids = {k["kid"] for k in httpx.get(idp.url("/jwks.json")).json()["keys"]}
    identity_thumbprints = {k["kid"].partition("#")[2] for k in keys}
    assert not id_token_kids & identity_thumbprints


def test_the_trustmark_and_discovery_say_what_is_offered(idp):
    trustmark = httpx.get(idp.url("/trustmark"))
    assert trustmark.status_code == 200
    assert trustmark.json() == {
        "idp": f"{idp.issuer}/",
        "trustmark_provider": f"{idp.issuer}/",
        "C": ["Cl", "Cl.Cm"],
        "P": ["P0", "P1", "P2"],
    }
    meta = httpx.get(idp.url("/.well-known/openid-configuration")).json()
    assert meta["claims_parameter_supported"] is True
    assert set(ALL_CLAIMS) <= set(meta["claims_supported"])
    assert {"Cl.Cm.P1", "Cl.Cm.P2"} <= set(meta["vtr_values_supported"])
    assert meta["trustmarks"] == f"{idp.issuer}/trustmark"


# -- Levels: asked and held --------------------------------------------------------------------


def test_without_a_claims_parameter_a_p2_request_gets_the_registered_claims(
    idp, browser, citizen, make_client
):
    """govuk-onelogin-django cannot send claims: the registration says which."""
    client = make_client("dept-reg", redirect_uri="https://dept-reg.example.gov.uk/callback")
    register_for(idp, client, [CORE, ADDRESS])
    prove(idp, citizen)
    attempt, consent_page, params = authorize_to_code(browser, client, citizen, vtr=P2)
    assert "your address, as checked" in consent_page.text
    info = userinfo(idp, redeem(client, attempt, params["code"])["access_token"])
    assert set(info) >= {CORE, ADDRESS}
    assert PASSPORT not in info


@pytest.mark.parametrize(("held", "asked", "vot"), [("P1", P1, "P1"), ("P2", P1, "P1")])
def test_a_held_level_at_or_above_the_asked_one_is_enough(
    idp, browser, citizen, department, held, asked, vot
):
    prove(idp, citizen, level=held)
    attempt, _, params = authorize_to_code(
        browser, department, citizen, vtr=asked, claims=claims_param(CORE)
    )
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert verify_core_identity(idp, info[CORE], department.client_id)["vot"] == vot


def test_either_level_accepted_gives_the_strongest_held(idp, browser, citizen, department):
    prove(idp, citizen, level="P2")
    attempt, _, params = authorize_to_code(
        browser,
        department,
        citizen,
        vtr=json.dumps(["Cl.Cm.P1", "Cl.Cm.P2"]),
        claims=claims_param(CORE),
    )
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert verify_core_identity(idp, info[CORE], department.client_id)["vot"] == "P2"


@pytest.mark.parametrize("held", [None, "P1"])
def test_a_citizen_short_of_the_asked_level_is_sent_to_the_identity_check(
    idp, browser, citizen, department, held
):
    if held:
        prove(idp, citizen, level=held)
    attempt = department.authorization(vtr=P2, claims=claims_param(CORE))
    page = sign_in(browser, attempt.url, citizen)
    # The check's first page (the journey's, whatever it answers without evidence services).
    assert page.url.path == "/identity/start"
    assert journey_of(page)


def test_a_p0_request_gets_no_verified_details_even_from_a_proved_citizen(
    idp, browser, citizen, department
):
    prove(idp, citizen)
    attempt, consent_page, params = authorize_to_code(
        browser, department, citizen, vtr=json.dumps(["Cl.Cm.P0"])
    )
    assert "verified details" not in consent_page.text
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert not set(info) & set(ALL_CLAIMS)
    assert info["email"] == citizen["email"]


def test_coming_back_from_a_proved_check_finishes_with_the_details(
    idp, browser, citizen, department
):
    attempt = department.authorization(vtr=P2, claims=claims_param(CORE))
    page = sign_in(browser, attempt.url, citizen)
    assert page.url.path == "/identity/start"
    journey = journey_of(page)
    prove(idp, citizen)  # the check proved P2 and sends the citizen back
    page = browser.follow(browser.get(idp.url(f"/authorize/resume?journey={journey}")))
    assert "your name and date of birth, as checked" in page.text
    params = callback(browser.consent(page)).params
    assert params["state"] == attempt.state
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert verify_core_identity(idp, info[CORE], department.client_id)["vot"] == "P2"


# -- A citizen who could not prove their identity ----------------------------------------------


def failed_check(idp, citizen: dict, return_code: str) -> None:
    """The identity check ended without proving (as the journey stores it)."""
    now = utcnow()
    with idp.app.app_context():
        db.session.add(
            IdentityCheck(
                reference=f"failed-{return_code}-{now.timestamp()}",
                citizen_id=citizen["id"],
                started_at=now,
                expires_at=now + timedelta(hours=1),
                state_encrypted="",
                outcome="failed",
                return_code=return_code,
            )
        )
        db.session.commit()


def test_a_failed_check_returns_a_code_whose_userinfo_says_why_when_return_code_was_asked(
    idp, browser, citizen, department
):
    attempt = department.authorization(vtr=P2, claims=claims_param(CORE, RETURN_CODE))
    page = sign_in(browser, attempt.url, citizen)
    journey = journey_of(page)
    failed_check(idp, citizen, "D")
    page = browser.follow(browser.get(idp.url(f"/authorize/resume?journey={journey}")))
    if CONSENT_HEADING in page.text:
        # First visit: the ordinary consent, with no verified details to list.
        assert "verified details" not in page.text
        page = browser.consent(page)
    params = callback(page).params
    assert params["state"] == attempt.state and "code" in params
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert info[RETURN_CODE] == [{"code": "D"}]
    assert CORE not in info
    (entry,) = stored_entries(idp, event="identity.not_proved_returned")
    assert (entry["return_code"], entry["told"]) == ("D", True)


def test_a_failed_check_is_access_denied_when_return_code_was_not_asked(
    idp, browser, citizen, department
):
    attempt = department.authorization(vtr=P2, claims=claims_param(CORE))
    page = sign_in(browser, attempt.url, citizen)
    journey = journey_of(page)
    failed_check(idp, citizen, "K")
    result = callback(browser.follow(browser.get(idp.url(f"/authorize/resume?journey={journey}"))))
    assert result.url.startswith(department.redirect_uri)
    assert result.params["error"] == "access_denied"
    assert result.params["state"] == attempt.state
    assert result.params["iss"] == idp.issuer
    assert "code" not in result.params
    (entry,) = stored_entries(idp, event="identity.not_proved_returned")
    assert (entry["return_code"], entry["told"]) == ("K", False)
    # The journey is over: the same link does not answer twice.
    again = browser.follow(browser.get(idp.url(f"/authorize/resume?journey={journey}")))
    assert again.status_code == 400


def test_prompt_none_with_identity_short_is_interaction_required(
    idp, browser, citizen, department, make_client
):
    # Signed in already, at another department.
    other = make_client("dept-other", redirect_uri="https://dept-other.example.gov.uk/cb")
    browser.authorize(other.authorization().url, citizen["email"], citizen["password"])
    attempt = department.authorization(vtr=P2, prompt="none", claims=claims_param(CORE))
    result = callback(browser.follow(browser.get(attempt.url)))
    assert result.params["error"] == "interaction_required"
    assert result.params["state"] == attempt.state


# -- The claims parameter: bad inputs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ("not json", "claims must be a JSON object"),
        ("[1, 2]", "claims must be a JSON object"),
        ('{"userinfo": ["a"]}', "userinfo member must be a JSON object"),
        (json.dumps({"userinfo": {CORE: True}}), "must be null or a JSON object"),
        (json.dumps({"userinfo": {VOCAB + "socialSecurityRecord": None}}), "is not a known claim"),
        (claims_param(CORE, member="id_token"), "ask for it in the userinfo member"),
        ("{" * 3000, "too long"),
    ],
)
def test_a_bad_claims_parameter_is_invalid_request_saying_why(
    idp, browser, department, claims, named
):
    attempt = department.authorization(vtr=P2, claims=claims)
    result = callback(browser.get(attempt.url))
    assert result.params["error"] == "invalid_request"
    assert named in result.params["error_description"]
    assert ERROR_DESCRIPTION_CHARSET.match(result.params["error_description"])
    assert result.params["state"] == attempt.state


def test_a_claim_the_department_did_not_register_for_is_refused_naming_it(
    idp, browser, make_client
):
    client = make_client("dept-addr", redirect_uri="https://dept-addr.example.gov.uk/callback")
    register_for(idp, client, [ADDRESS])
    result = callback(
        browser.get(client.authorization(vtr=P2, claims=claims_param(ADDRESS, PASSPORT)).url)
    )
    assert result.params["error"] == "invalid_request"
    assert PASSPORT in result.params["error_description"]
    assert "not registered" in result.params["error_description"]


def test_a_department_not_registered_for_identity_cannot_ask_p2(idp, browser, make_client):
    client = make_client()
    result = callback(browser.get(client.authorization(vtr=P2).url))
    assert result.params["error"] == "invalid_request"
    assert "not registered for any verified identity claims" in result.params["error_description"]


def test_identity_claims_without_an_identity_level_are_refused(idp, browser, department):
    result = callback(browser.get(department.authorization(claims=claims_param(CORE)).url))
    assert result.params["error"] == "invalid_request"
    assert "Cl.Cm.P2" in result.params["error_description"]


def test_standard_claims_in_the_claims_parameter_are_ignored(idp, browser, citizen, department):
    """OIDC Core 5.5: a claim the IdP does not give this way is ignored, not an error."""
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(
        browser,
        department,
        citizen,
        vtr=P2,
        claims=json.dumps({"userinfo": {"email": {"essential": True}, CORE: None}}),
    )
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert CORE in info and ADDRESS not in info


# -- Consent per detail, and expiry ------------------------------------------------------------


def test_new_identity_claims_are_asked_again_and_the_agreed_ones_are_not(
    idp, browser, citizen, department
):
    prove(idp, citizen)
    _, consent_page, _ = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(ADDRESS)
    )
    assert consent_page is not None
    _, consent_page, _ = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(ADDRESS)
    )
    assert consent_page is None  # agreed already
    _, consent_page, _ = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(ADDRESS, CORE)
    )
    assert consent_page is not None  # a new detail: asked again
    assert "your name and date of birth, as checked" in consent_page.text
    with idp.app.app_context():
        agreed = db.session.scalar(
            select(Consent.identity_claims).filter_by(
                citizen_id=citizen["id"], client_id=department.client_id
            )
        )
    assert sorted(agreed) == sorted([ADDRESS, CORE])


def test_details_not_agreed_to_are_not_given(idp, browser, citizen, department):
    """A consent row without the detail (for example, the citizen stopped sharing it)."""
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(ADDRESS, CORE)
    )
    with idp.app.app_context():
        db.session.execute(
            update(Consent)
            .where(Consent.citizen_id == citizen["id"])
            .values(identity_claims=[ADDRESS])
        )
        db.session.commit()
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert ADDRESS in info and CORE not in info


def test_an_expired_identity_is_checked_again_and_no_longer_given(
    idp, browser, citizen, department
):
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(CORE)
    )
    tokens = redeem(department, attempt, params["code"])
    with idp.app.app_context():
        db.session.execute(
            update(IdentityRecord)
            .where(IdentityRecord.citizen_id == citizen["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    # A token issued before: the expired identity is no longer given.
    assert CORE not in userinfo(idp, tokens["access_token"])
    # A new sign-in: the identity check again.
    page = sign_in(
        browser, department.authorization(vtr=P2, claims=claims_param(CORE)).url, citizen
    )
    assert page.url.path == "/identity/start"


def test_a_refreshed_access_token_keeps_what_the_sign_in_released(
    idp, browser, citizen, make_client
):
    client = make_client(
        "dept-refresh",
        redirect_uri="https://dept-refresh.example.gov.uk/callback",
        grant_types=["authorization_code", "refresh_token"],
    )
    register_for(idp, client, [CORE])
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(browser, client, citizen, vtr=P2)
    tokens = redeem(client, attempt, params["code"])
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    auth = client._authenticate(data)
    refreshed = client.http.post(idp.url("/token"), data=data, auth=auth)
    assert refreshed.status_code == 200, refreshed.text
    id_token = client.validate_id_token(refreshed.json()["id_token"], None)
    assert id_token["vtm"] == f"{idp.issuer}/trustmark"
    info = userinfo(idp, refreshed.json()["access_token"])
    assert verify_core_identity(idp, info[CORE], client.client_id)["vot"] == "P2"


def test_the_consent_page_lists_the_verified_details_in_welsh(idp, browser, citizen, department):
    prove(idp, citizen)
    authorize_to_code(browser, department, citizen)  # signed in, in English, no details asked
    attempt = department.authorization(vtr=P2, claims=claims_param(CORE, ADDRESS), ui_locales="cy")
    page = browser.follow(browser.get(attempt.url))
    assert '<html lang="cy"' in page.text
    assert "Eich manylion wedi" in page.text
    assert (
        "eich enw a&#39;ch dyddiad geni" in page.text or "eich enw a'ch dyddiad geni" in page.text
    )
    assert "eich cyfeiriad" in page.text


def test_the_consent_page_lists_only_the_details_the_identity_holds(
    idp, browser, citizen, department
):
    """Asked for a driving licence and a passport, a citizen who proved with a passport is
    told of the passport only: that is all the department will get."""
    prove(idp, citizen)
    attempt, consent_page, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(PASSPORT, DRIVING)
    )
    assert "your passport details" in consent_page.text
    assert "driving licence" not in consent_page.text
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert PASSPORT in info and DRIVING not in info


def test_return_code_asked_by_a_citizen_who_proved_is_an_empty_list(
    idp, browser, citizen, department
):
    """As One Login's simulator: asked for and nothing to report."""
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(CORE, RETURN_CODE)
    )
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert info[RETURN_CODE] == []
    assert CORE in info


def test_a_claim_no_longer_approved_is_not_given(idp, browser, citizen, department):
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(CORE, ADDRESS)
    )
    register_for(idp, department, [ADDRESS])  # the platform withdrew coreIdentityJWT
    info = userinfo(idp, redeem(department, attempt, params["code"])["access_token"])
    assert ADDRESS in info and CORE not in info


def test_prompt_none_with_details_not_yet_agreed_is_consent_required(
    idp, browser, citizen, department
):
    prove(idp, citizen)
    authorize_to_code(browser, department, citizen, vtr=P2, claims=claims_param(ADDRESS))
    attempt = department.authorization(vtr=P2, prompt="none", claims=claims_param(PASSPORT))
    result = callback(browser.follow(browser.get(attempt.url)))
    assert result.params["error"] == "consent_required"
    # The details already agreed need no page.
    attempt = department.authorization(vtr=P2, prompt="none", claims=claims_param(ADDRESS))
    assert "code" in callback(browser.follow(browser.get(attempt.url))).params


def test_details_that_cannot_be_decrypted_are_not_given_and_not_a_server_error(
    idp, browser, citizen, department
):
    """The identity encryption key changed (an operator's mistake): the department is told
    nothing of the details rather than the citizen or the department meeting a 500."""
    from cryptography.fernet import Fernet

    prove(idp, citizen)
    attempt, _, params = authorize_to_code(
        browser, department, citizen, vtr=P2, claims=claims_param(CORE)
    )
    tokens = redeem(department, attempt, params["code"])
    before = idp.app.config["IDP_IDENTITY_FERNET"]
    idp.app.config["IDP_IDENTITY_FERNET"] = Fernet(Fernet.generate_key())
    try:
        info = userinfo(idp, tokens["access_token"])
        assert CORE not in info and "sub" in info
        page = browser.follow(
            browser.get(department.authorization(vtr=P2, claims=claims_param(ADDRESS)).url)
        )
        assert page.status_code < 500, page.text[:500]
    finally:
        idp.app.config["IDP_IDENTITY_FERNET"] = before


def test_after_stop_sharing_a_refresh_token_gets_no_more_details(
    idp, browser, citizen, make_client
):
    """Stop sharing on the account page ends the refresh token that carried the grant: the
    department can neither refresh nor read the details with what it holds."""
    from tests.accounts.test_your_account import account_page, post_button

    client = make_client(
        "dept-stop",
        redirect_uri="https://dept-stop.example.gov.uk/callback",
        grant_types=["authorization_code", "refresh_token"],
    )
    register_for(idp, client, [CORE, ADDRESS])
    prove(idp, citizen)
    attempt, _, params = authorize_to_code(browser, client, citizen, vtr=P2)
    tokens = redeem(client, attempt, params["code"])
    assert CORE in userinfo(idp, tokens["access_token"])

    stopped = post_button(
        browser, account_page(idp, browser), r"/account/services/dept-stop/revoke"
    )
    assert stopped.status_code == 303

    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = client.http.post(idp.url("/token"), data=data, auth=client._authenticate(data))
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
    gone = httpx.get(
        idp.url("/userinfo"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert gone.status_code == 401

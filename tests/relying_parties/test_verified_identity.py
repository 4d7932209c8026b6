"""A sample department's own check of the verified identity (relying_parties/identity.py): the
core identity JWT must be signed by a key of the IdP's DID document, for this service, about the
citizen signed in, unexpired, at the level the service needs; anything else is refused."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from relying_parties import identity
from relying_parties.errors import IdentityProviderUnavailable, SignInError
from relying_parties.settings import DepartmentSettings
from tests.support.registration import DocumentServer

VOCAB = "https://vocab.account.gov.uk/v1/"
KID = "did:web:localhost#identity-key-1"
SUB = "citizen-sub"


@pytest.fixture
def idp_documents():
    server = DocumentServer()
    yield server
    server.close()
    identity._did_cache.clear()


@pytest.fixture
def signing_key(idp_documents):
    key = ec.generate_private_key(ec.SECP256R1())
    public = ECKey.import_key(key.public_key()).as_dict(private=False)
    idp_documents.serve(
        "/.well-known/did.json",
        {
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": "did:web:localhost",
            "assertionMethod": [
                {
                    "type": "JsonWebKey2020",
                    "id": KID,
                    "controller": "did:web:localhost",
                    "publicKeyJwk": public,
                }
            ],
        },
    )
    return key


def settings_for(server: DocumentServer, level: str | None = "P2") -> DepartmentSettings:
    return DepartmentSettings(
        name="Check your benefits",
        department="DWP",
        client_id="dwp-check-benefits",
        base_url="http://localhost:9999",
        issuer=server.base,
        token_endpoint_auth_method="none",
        identity_level=level,
    )


def core_identity(server, key, **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": server.base,
        "aud": "dwp-check-benefits",
        "sub": SUB,
        "nbf": now,
        "iat": now,
        "exp": now + 180,
        "vot": "P2",
        "vtm": server.base + "/trustmark",
        "vc": {
            "type": ["VerifiableCredential", "IdentityCheckCredential"],
            "credentialSubject": {
                "name": [
                    {
                        "nameParts": [
                            {"type": "GivenName", "value": "KENNETH"},
                            {"type": "FamilyName", "value": "DECERQUEIRA"},
                        ]
                    }
                ],
                "birthDate": [{"value": "1965-07-08"}],
            },
        },
        **changes,
    }
    return pyjwt.encode(claims, key, algorithm="ES256", headers={"kid": KID})


ADDRESS = [{"buildingNumber": "8", "streetName": "HADLEY ROAD", "postalCode": "BA2 5AA"}]


def test_a_valid_core_identity_gives_the_name_birth_date_and_address(idp_documents, signing_key):
    userinfo = {
        "sub": SUB,
        VOCAB + "coreIdentityJWT": core_identity(idp_documents, signing_key),
        VOCAB + "address": ADDRESS,
    }
    found = identity.verified_identity(settings_for(idp_documents), userinfo, SUB)
    assert found == {
        "level": "P2",
        "given_names": "KENNETH",
        "family_name": "DECERQUEIRA",
        "birth_date": "1965-07-08",
        "address": ADDRESS[0],
    }


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"aud": "another-service"}, "aud"),
        ({"sub": "someone-else"}, "sub"),
        ({"iss": "https://elsewhere.example"}, "iss"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"vot": "P1"}, "vot"),
    ],
)
def test_a_core_identity_for_another_service_person_or_time_is_refused(
    idp_documents, signing_key, changes, named
):
    userinfo = {VOCAB + "coreIdentityJWT": core_identity(idp_documents, signing_key, **changes)}
    with pytest.raises(SignInError) as refused:
        identity.verified_identity(settings_for(idp_documents), userinfo, SUB)
    assert refused.value.error == "invalid_identity"
    assert named in refused.value.description


def test_a_core_identity_signed_by_another_key_is_refused(idp_documents, signing_key):
    stranger = ec.generate_private_key(ec.SECP256R1())
    userinfo = {VOCAB + "coreIdentityJWT": core_identity(idp_documents, stranger)}
    with pytest.raises(SignInError) as refused:
        identity.verified_identity(settings_for(idp_documents), userinfo, SUB)
    assert "did not pass this service's checks" in refused.value.description
    assert "signature" in refused.value.description


def test_no_core_identity_for_a_service_that_needs_one_is_refused(idp_documents, signing_key):
    with pytest.raises(SignInError) as refused:
        identity.verified_identity(settings_for(idp_documents), {"sub": SUB}, SUB)
    assert "did not send the verified identity" in refused.value.description


def test_a_return_code_is_kept_for_the_service_to_explain(idp_documents):
    userinfo = {VOCAB + "returnCode": [{"code": "D"}]}
    assert identity.verified_identity(settings_for(idp_documents), userinfo, SUB) == {
        "return_code": "D"
    }


def test_a_service_that_asks_for_no_identity_ignores_the_claims(idp_documents):
    settings = settings_for(idp_documents, level=None)
    assert (
        identity.verified_identity(settings, {VOCAB + "returnCode": [{"code": "D"}]}, SUB) is None
    )


def test_no_did_document_is_the_idp_being_unavailable(idp_documents):
    userinfo = {VOCAB + "coreIdentityJWT": "a.b.c"}
    with pytest.raises(IdentityProviderUnavailable, match="DID document"):
        identity.verified_identity(settings_for(idp_documents), userinfo, SUB)


def test_an_unknown_identity_level_is_refused_at_start():
    with pytest.raises(ValueError, match="identity_level must be P1 or P2"):
        DepartmentSettings(
            name="x",
            department="x",
            client_id="x",
            base_url="http://localhost:1",
            issuer="http://localhost:2",
            token_endpoint_auth_method="none",
            identity_level="P9",
        )


# -- The account page: what the service shows of the identity ----------------------------------


def _account_page(department_app, kind: str, identity: dict):
    import time as _time

    from relying_parties.account import SESSION_KEY

    client = department_app(kind).test_client()
    with client.session_transaction() as session:
        session[SESSION_KEY] = {
            "id_token": "header.payload.signature",
            "claims": {"iss": "http://127.0.0.1:9", "sub": "citizen-1"},
            "userinfo": {"sub": "citizen-1", "email": "ada@example.com"},
            "identity": identity,
            "signed_in_at": _time.time(),
        }
    return client.get("/account")


def test_the_verified_identity_is_shown_as_markup_not_as_tags(department_app):
    page = _account_page(
        department_app,
        "driving",
        {
            "level": "P2",
            "given_names": "KENNETH",
            "family_name": "DECERQUEIRA",
            "birth_date": "1965-07-08",
            "address": None,
        },
    )
    assert page.status_code == 200
    assert "<code>P2</code>" in page.text
    assert "&lt;code&gt;" not in page.text and "&lt;strong" not in page.text
    assert "KENNETH DECERQUEIRA" in page.text and "8 July 1965" in page.text
    assert "Identity confidence" in page.text


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("D", "passport or driving licence details could not be confirmed"),
        ("X", "do not have a passport or photocard driving licence"),
        ("Q", "could not confirm your identity"),
    ],
)
def test_a_return_code_is_explained_in_words(department_app, code, words):
    page = _account_page(department_app, "benefits", {"return_code": code})
    assert page.status_code == 200
    assert words in page.text
    assert "&lt;p" not in page.text

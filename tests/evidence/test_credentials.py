"""What every service's credential and keys promise the IdP: signed with the service's own
published key, bound to the check (sub), the IdP (aud) and its nonce, short-lived."""

from __future__ import annotations

import json
import os
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import evidence
from tests.evidence.conftest import IDP_ISSUER
from tests.support.evidence import KENNETH, typed, verified_credential

CHECKED = {
    "passport": typed(KENNETH, "passport"),
    "driving_licence": typed(KENNETH, "drivingPermit"),
    "address": typed(KENNETH, "address"),
}


def issue(caller, kind: str) -> tuple[dict, str]:
    """A credential from kind's service: the binding sent and the credential."""
    if kind == "kbv":
        binding, _ = caller.questions(typed(KENNETH, "address"))
        body = {**binding, "answers": KENNETH["answers"]}
    else:
        binding = caller.binding()
        body = {**binding, "subject": CHECKED[kind]}
    response = caller.post(kind, "/check", body)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return binding, response.json()["credential"]


@pytest.mark.parametrize("kind", evidence.KINDS)
def test_the_credential_is_bound_to_the_check_and_short_lived(caller, evidence_services, kind):
    before = int(time.time())
    binding, credential = issue(caller, kind)
    header = jwt.get_unverified_header(credential)
    assert header["alg"] == "ES256"
    assert header["typ"] == "JWT"
    claims = verified_credential(evidence_services[kind], credential, IDP_ISSUER)
    assert claims["iss"] == evidence_services[kind]
    assert claims["sub"] == binding["sub"]
    assert claims["aud"] == IDP_ISSUER
    assert claims["nonce"] == binding["nonce"]
    assert before - 1 <= claims["nbf"] <= time.time() + 1
    assert claims["iat"] == claims["nbf"]
    assert claims["exp"] - claims["nbf"] == 300
    assert claims["jti"].startswith("urn:uuid:")
    assert claims["vc"]["type"] == ["VerifiableCredential", "IdentityCheckCredential"]
    (item,) = claims["vc"]["evidence"]
    assert item["type"] == "IdentityCheck" and item["txn"]


@pytest.mark.parametrize("kind", evidence.KINDS)
def test_each_credential_has_its_own_ids(caller, kind):
    _, first = issue(caller, kind)
    _, second = issue(caller, kind)
    first_claims = jwt.decode(first, options={"verify_signature": False})
    second_claims = jwt.decode(second, options={"verify_signature": False})
    assert first_claims["jti"] != second_claims["jti"]
    assert first_claims["vc"]["evidence"][0]["txn"] != second_claims["vc"]["evidence"][0]["txn"]


def test_each_service_signs_with_its_own_key(caller, evidence_services):
    kids = {
        kind: httpx.get(f"{url}/.well-known/jwks.json").json()["keys"][0]["kid"]
        for kind, url in evidence_services.items()
    }
    assert len(set(kids.values())) == 4
    _, credential = issue(caller, "passport")
    # Presented as the address service's: no key of the address service signed it.
    with pytest.raises(jwt.InvalidTokenError, match="publishes no key"):
        verified_credential(evidence_services["address"], credential, IDP_ISSUER)
    address_key = httpx.get(f"{evidence_services['address']}/.well-known/jwks.json").json()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            credential,
            jwt.PyJWK(address_key["keys"][0]).key,
            algorithms=["ES256"],
            audience=IDP_ISSUER,
        )


def test_a_credential_for_another_idp_or_tampered_with_is_refused(caller, evidence_services):
    _, credential = issue(caller, "passport")
    with pytest.raises(jwt.InvalidAudienceError):
        verified_credential(evidence_services["passport"], credential, "https://other.example")
    header, payload, signature = credential.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    claims["sub"] = "another check"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verified_credential(
            evidence_services["passport"], f"{header}.{forged}.{signature}", IDP_ISSUER
        )


@pytest.mark.parametrize("kind", evidence.KINDS)
def test_the_jwks_publishes_the_public_key_only(evidence_services, kind):
    response = httpx.get(f"{evidence_services[kind]}/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256"
    assert key["alg"] == "ES256" and key["use"] == "sig"
    assert "d" not in key


@pytest.mark.parametrize("kind", evidence.KINDS)
def test_the_home_page_says_it_is_a_simulation(evidence_services, kind):
    response = httpx.get(evidence_services[kind])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "This is a simulation." in response.text
    assert "/.well-known/jwks.json" in response.text


def test_the_key_is_made_once_in_the_instance_folder(tmp_path):
    first = evidence.create_app("passport", str(tmp_path)).test_client()
    key_file = tmp_path / "passport-signing-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = evidence.create_app("passport", str(tmp_path)).test_client()
    jwks = first.get("/.well-known/jwks.json").get_json()
    assert again.get("/.well-known/jwks.json").get_json() == jwks


def pem(private_key) -> str:
    """A private key as an unencrypted PEM."""
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_the_key_may_come_from_the_environment(tmp_path, monkeypatch):
    private_key = ec.generate_private_key(ec.SECP256R1())
    monkeypatch.setenv("EVIDENCE_DRIVING_LICENCE_SIGNING_KEY", pem(private_key))
    client = evidence.create_app("driving_licence", str(tmp_path)).test_client()
    (published,) = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert jwt.PyJWK(published).key.public_numbers() == private_key.public_key().public_numbers()
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not a key", "EVIDENCE_KBV_SIGNING_KEY: not an unencrypted PEM private key"),
        (
            pem(ec.generate_private_key(ec.SECP384R1())),
            "EVIDENCE_KBV_SIGNING_KEY: the key must be an EC P-256 private key",
        ),
        (
            pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "EVIDENCE_KBV_SIGNING_KEY: the key must be an EC P-256 private key",
        ),
    ],
)
def test_a_key_in_the_environment_that_cannot_sign_es256_is_refused(
    tmp_path, monkeypatch, value, message
):
    monkeypatch.setenv("EVIDENCE_KBV_SIGNING_KEY", value)
    with pytest.raises(ValueError, match=message):
        evidence.create_app("kbv", str(tmp_path))


def test_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown evidence service 'bank'"):
        evidence.create_app("bank", str(tmp_path))

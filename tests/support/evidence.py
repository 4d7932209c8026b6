"""The simulated evidence services (evidence/), served on free loopback ports for tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import jwt
from waitress import create_server

import evidence


@contextlib.contextmanager
def serve_evidence_services(instance_path: str) -> Iterator[dict[str, str]]:
    """Serve all four services, each with its own key in instance_path, and yield their base
    URLs by kind: the same dict as IDP_EVIDENCE_SERVICES."""
    servers = []
    urls: dict[str, str] = {}
    try:
        for kind in evidence.KINDS:
            listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind(("127.0.0.1", 0))
            listening.listen(64)
            url = f"http://127.0.0.1:{listening.getsockname()[1]}"
            app = evidence.create_app(kind, f"{instance_path}/{kind}", base_url=url)
            server = create_server(app, sockets=[listening], threads=2)
            servers.append(server)
            threading.Thread(target=_serve_until_closed, args=(server,), daemon=True).start()
            urls[kind] = url
        yield urls
    finally:
        for server in servers:
            server.close()


def _serve_until_closed(server) -> None:
    """Run waitress's loop until close() (which ends a poll under way with an OSError)."""
    try:
        server.run()
    except OSError:
        if server.accepting:
            raise


def person(given: str, family: str, birth_date: str) -> dict:
    """A name and birth date in One Login's shapes, as the IdP sends what a citizen typed."""
    parts = [{"type": "GivenName", "value": value} for value in given.split()]
    parts.append({"type": "FamilyName", "value": family})
    return {"name": [{"nameParts": parts}], "birthDate": [{"value": birth_date}]}


def verified_credential(service_url: str, credential: str, aud: str) -> dict:
    """The claims of a credential, its signature checked with the service's published JWKS
    and its iss and aud checked; raises jwt.InvalidTokenError if anything is wrong."""
    header = jwt.get_unverified_header(credential)
    jwks = httpx.get(f"{service_url}/.well-known/jwks.json").json()
    keys = [jwk for jwk in jwks["keys"] if jwk["kid"] == header.get("kid")]
    if len(keys) != 1:
        raise jwt.InvalidTokenError(f"{service_url} publishes no key with kid {header.get('kid')}")
    (key,) = keys
    return jwt.decode(
        credential,
        jwt.PyJWK(key).key,
        algorithms=["ES256"],
        audience=aud,
        issuer=service_url,
        options={"require": ["iss", "sub", "aud", "nbf", "iat", "exp", "jti"]},
    )


# The test identities of evidence/README.md, as a citizen types them. Answers are by question
# id, in the order the knowledge-based questions service asks them.
KENNETH = {
    **person("KENNETH", "DECERQUEIRA", "1965-07-08"),
    "passport": [{"documentNumber": "321654987", "expiryDate": "2030-01-01"}],
    "drivingPermit": [{"personalNumber": "DECER607085K99AE", "expiryDate": "2032-02-02"}],
    "address": [{"buildingNumber": "8", "streetName": "HADLEY ROAD", "postalCode": "BA2 5AA"}],
    "answers": {"q1": "NATIONWIDE", "q2": "£501 TO £750", "q3": "O2"},
}
PRIYA = {
    **person("PRIYA", "SHARMA", "1990-05-17"),
    "drivingPermit": [{"personalNumber": "SHARM955170P99XX", "expiryDate": "2034-05-16"}],
    "address": [{"buildingNumber": "27", "streetName": "KINGS AVENUE", "postalCode": "LS6 1QS"}],
    "answers": {"q1": "LLOYDS", "q2": "AMERICAN EXPRESS", "q3": "EE"},
}
MARY = {
    **person("MARY", "WATSON", "1932-02-25"),
    "passport": [{"documentNumber": "824159121", "expiryDate": "2031-03-14"}],
    "address": [{"buildingNumber": "12", "streetName": "CHURCH LANE", "postalCode": "YO1 7HH"}],
    "answers": {"q1": "LLOYDS", "q2": "BARCLAYCARD", "q3": "None of the above"},
}
PAUL = {
    **person("PAUL", "BUTTON", "1979-11-03"),
    "passport": [{"documentNumber": "987654321", "expiryDate": "2021-06-30"}],
    "drivingPermit": [{"personalNumber": "BUTTO711039P99LK", "expiryDate": "2020-11-02"}],
    "address": [{"buildingNumber": "41", "streetName": "MILL STREET", "postalCode": "OX2 0AN"}],
    "answers": {"q1": "SANTANDER", "q2": "£5,001 TO £10,000", "q3": "THREE"},
}
CLAIRE = {
    **person("CLAIRE", "HOLLOWAY", "1988-04-22"),
    "passport": [{"documentNumber": "612398745", "expiryDate": "2029-08-01"}],
    "address": [{"buildingNumber": "3", "streetName": "STATION ROAD", "postalCode": "CF10 1AB"}],
    "answers": {"q1": "BARCLAYS", "q2": "CAPITAL ONE", "q3": "VODAFONE"},
}
OLIVIA = {
    **person("OLIVIA", "BROWN", "2001-09-09"),
    "passport": [{"documentNumber": "533401372", "expiryDate": "2033-09-09"}],
    "address": [{"buildingNumber": "19", "streetName": "QUEEN STREET", "postalCode": "NG1 2BL"}],
    # No credit history: no answer is right.
    "answers": {"q1": "None of the above", "q2": "None of the above", "q3": "None of the above"},
}


def typed(identity: dict, *members: str) -> dict:
    """What a citizen types for one check: the name, the birth date and the members named."""
    return {key: identity[key] for key in ("name", "birthDate", *members)}

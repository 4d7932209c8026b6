"""The council registering itself with the stand-in IdP through RFC 7591 and RFC 7592."""

import json
import logging
import os
import socket
import stat
import threading

import pytest

from relying_parties import council
from relying_parties.registration import (
    RegisteredClient,
    RegistrationError,
    register_dynamically,
)
from tests.relying_parties.conftest import (
    COUNCIL_CLIENT_NAME,
    COUNCIL_METADATA,
    COUNCIL_STORE,
    INITIAL_ACCESS_TOKEN,
    UNREACHABLE_ISSUER,
    FakeIdentityProvider,
)
from tests.relying_parties.test_department_app import complete_sign_in

STORED_FIELDS = {
    "issuer",
    "client_id",
    "client_secret",
    "registration_access_token",
    "registration_client_uri",
}


def requests_sent(fake_idp: FakeIdentityProvider) -> list[tuple[str, str]]:
    """The registration requests the IdP received, as (method, path)."""
    return [(sent["method"], sent["path"]) for sent in fake_idp.registration_requests]


def test_the_first_start_registers_with_the_initial_access_token(register_council, fake_idp):
    registered = register_council()

    [sent] = fake_idp.registration_requests
    assert (sent["method"], sent["path"]) == ("POST", "/register")
    assert sent["bearer"] == INITIAL_ACCESS_TOKEN
    assert sent["body"] == {
        "redirect_uris": ["http://localhost:8005/auth/callback"],
        "post_logout_redirect_uris": ["http://localhost:8005/"],
        "backchannel_logout_uri": "http://localhost:8005/backchannel-logout",
        "backchannel_logout_session_required": True,
        "client_name": COUNCIL_CLIENT_NAME,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "openid email",
        "subject_type": "pairwise",
        "id_token_signed_response_alg": "ES256",
    }
    issued = fake_idp.clients[registered.client_id]
    assert registered.client_secret == issued["secret"]
    assert registered.registration_access_token == issued["registration_access_token"]
    assert registered.registration_client_uri == (
        f"{fake_idp.issuer}/register/{registered.client_id}"
    )


def test_the_registration_is_kept_owner_only_with_nothing_more_than_needed(
    register_council, fake_idp, tmp_path
):
    registered = register_council()

    store = tmp_path / COUNCIL_STORE
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600
    saved = json.loads(store.read_text())
    assert set(saved) == STORED_FIELDS
    assert saved["issuer"] == fake_idp.issuer
    assert saved["client_id"] == registered.client_id
    assert [path.name for path in store.parent.iterdir()] == [store.name]


def test_a_second_start_reuses_the_saved_registration(register_council, fake_idp):
    first = register_council()

    second = register_council()

    assert second == first
    assert requests_sent(fake_idp) == [
        ("POST", "/register"),
        ("GET", f"/register/{first.client_id}"),
    ]
    assert fake_idp.registration_requests[1]["bearer"] == first.registration_access_token


def test_changed_metadata_updates_the_registration(register_council, fake_idp):
    first = register_council()
    renamed = {**COUNCIL_METADATA, "client_name": "Northfield Council: Council tax"}

    second = register_council(renamed)

    assert second.client_id == first.client_id
    assert requests_sent(fake_idp)[1:] == [
        ("GET", f"/register/{first.client_id}"),
        ("PUT", f"/register/{first.client_id}"),
    ]
    update = fake_idp.registration_requests[2]
    assert update["bearer"] == first.registration_access_token
    assert update["body"] == {**renamed, "client_id": first.client_id}
    assert fake_idp.clients[first.client_id]["metadata"]["client_name"] == (
        "Northfield Council: Council tax"
    )


@pytest.mark.parametrize(
    "registered_before",
    [
        {"backchannel_logout_uri": None, "backchannel_logout_session_required": None},
        {"backchannel_logout_uri": "http://localhost:8005/old-logout"},
        {"backchannel_logout_session_required": False},
    ],
    ids=["without-back-channel-logout", "other-uri", "sid-not-required"],
)
def test_a_registration_without_this_back_channel_logout_is_updated(
    register_council, fake_idp, registered_before
):
    first = register_council()
    held = fake_idp.clients[first.client_id]["metadata"]
    held.update(registered_before)
    for name in [name for name, value in registered_before.items() if value is None]:
        del held[name]

    register_council()

    assert requests_sent(fake_idp)[1:] == [
        ("GET", f"/register/{first.client_id}"),
        ("PUT", f"/register/{first.client_id}"),
    ]
    updated = fake_idp.clients[first.client_id]["metadata"]
    assert updated["backchannel_logout_uri"] == "http://localhost:8005/backchannel-logout"
    assert updated["backchannel_logout_session_required"] is True


def test_a_reordered_scope_is_not_a_change(register_council, fake_idp):
    register_council()

    register_council({**COUNCIL_METADATA, "scope": "email openid"})

    assert [method for method, _ in requests_sent(fake_idp)] == ["POST", "GET"]


def test_a_deleted_registration_is_made_again(register_council, fake_idp, tmp_path):
    first = register_council()
    del fake_idp.clients[first.client_id]

    second = register_council()

    assert second.client_id != first.client_id
    assert requests_sent(fake_idp)[1:] == [
        ("GET", f"/register/{first.client_id}"),
        ("POST", "/register"),
    ]
    saved = json.loads((tmp_path / COUNCIL_STORE).read_text())
    assert saved["client_id"] == second.client_id


def test_a_secret_the_idp_rotated_replaces_the_saved_one(register_council, fake_idp, tmp_path):
    first = register_council()
    fake_idp.clients[first.client_id]["secret"] = "a-rotated-secret"

    second = register_council()

    assert second.client_secret == "a-rotated-secret"
    saved = json.loads((tmp_path / COUNCIL_STORE).read_text())
    assert saved["client_secret"] == "a-rotated-secret"


def test_a_registration_with_another_idp_is_not_reused(register_council, fake_idp, tmp_path):
    store = tmp_path / COUNCIL_STORE
    first = register_council()
    saved = json.loads(store.read_text())
    store.write_text(json.dumps({**saved, "issuer": "https://another-idp.example"}))

    second = register_council()

    assert second.client_id != first.client_id
    assert requests_sent(fake_idp) == [("POST", "/register"), ("POST", "/register")]


def test_refused_metadata_is_named_without_the_token(register_council, fake_idp, tmp_path):
    fake_idp.registration_error = {
        "error": "invalid_client_metadata",
        "error_description": "subject_type 'public' is not allowed for councils",
    }

    with pytest.raises(RegistrationError) as refused:
        register_council()

    assert refused.value.error == "invalid_client_metadata"
    message = str(refused.value)
    assert "HTTP 400" in message
    assert "invalid_client_metadata: subject_type 'public' is not allowed" in message
    assert INITIAL_ACCESS_TOKEN not in message
    assert not (tmp_path / COUNCIL_STORE).exists()


def test_a_refused_redirect_uri_is_named(register_council):
    with pytest.raises(RegistrationError, match="invalid_redirect_uri") as refused:
        register_council({**COUNCIL_METADATA, "redirect_uris": ["ftp://council.example/cb"]})

    assert refused.value.error == "invalid_redirect_uri"


def test_a_wrong_initial_access_token_is_refused(fake_idp, tmp_path):
    with pytest.raises(RegistrationError, match="invalid_token") as refused:
        register_dynamically(
            fake_idp.issuer, COUNCIL_METADATA, "not-the-token", tmp_path / COUNCIL_STORE
        )

    assert "not-the-token" not in str(refused.value)


def test_an_unreachable_idp_is_named_after_retrying(register_council, tmp_path):
    with pytest.raises(RegistrationError, match="after 3 attempts") as refused:
        register_council(issuer=UNREACHABLE_ISSUER, attempts=3, retry_delay=0.01)

    assert refused.value.error == "unreachable"
    assert UNREACHABLE_ISSUER in str(refused.value)
    assert not (tmp_path / COUNCIL_STORE).exists()


def test_registration_waits_for_an_idp_that_is_still_starting(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    late: list[FakeIdentityProvider] = []
    listening = threading.Event()

    def start_late() -> None:
        late.append(FakeIdentityProvider(port=port))
        listening.set()
        late[0].server.serve_forever(0.05)

    starter = threading.Timer(0.3, start_late)
    starter.start()
    try:
        registered = register_dynamically(
            f"http://127.0.0.1:{port}",
            COUNCIL_METADATA,
            INITIAL_ACCESS_TOKEN,
            tmp_path / COUNCIL_STORE,
            attempts=6,
            retry_delay=0.1,
        )
    finally:
        assert listening.wait(5)
        late[0].server.shutdown()
        late[0].server.server_close()
        starter.join(5)

    assert registered.client_id in late[0].clients


@pytest.mark.parametrize(
    ("discovery_changes", "complaint"),
    [
        ({"issuer": "https://attacker.example"}, "names issuer 'https://attacker.example'"),
        ({"registration_endpoint": None}, "does not offer dynamic client registration"),
    ],
)
def test_discovery_that_cannot_be_used_is_named(
    register_council, fake_idp, discovery_changes, complaint
):
    fake_idp.discovery_changes = discovery_changes

    with pytest.raises(RegistrationError, match=complaint):
        register_council()

    assert fake_idp.registration_requests == []


def test_a_store_that_is_not_a_registration_is_named_without_its_contents(
    register_council, tmp_path
):
    store = tmp_path / COUNCIL_STORE
    store.parent.mkdir()
    store.write_text('{"client_secret": "leaked-if-shown"}')

    with pytest.raises(RegistrationError, match="delete it to register again") as refused:
        register_council()

    assert str(store) in str(refused.value)
    assert "leaked-if-shown" not in str(refused.value)


def test_secrets_are_never_logged_or_shown(register_council, fake_idp, caplog):
    caplog.set_level(logging.DEBUG)

    first = register_council()
    del fake_idp.clients[first.client_id]
    second = register_council({**COUNCIL_METADATA, "client_name": "Renamed"})
    register_council()

    secrets = {
        INITIAL_ACCESS_TOKEN,
        first.client_secret,
        first.registration_access_token,
        second.client_secret,
        second.registration_access_token,
    }
    shown = caplog.text + repr(first) + repr(second)
    assert first.client_id in caplog.text
    assert not [secret for secret in secrets if secret in shown]


def test_the_council_signs_in_with_the_credentials_it_registered(signed_up, fake_idp):
    app, client = signed_up("council")
    settings = app.extensions["relying_party"].settings

    response = complete_sign_in(client, fake_idp)

    assert response.headers["Location"] == "/account"
    assert settings.client_id.startswith("client-")
    [authorization_request] = fake_idp.authorization_requests
    assert authorization_request["client_id"] == settings.client_id
    assert authorization_request["scope"] == "openid email"
    assert "Welcome to your council tax account" in client.get("/account").text


def test_settings_from_registration_use_the_registered_client(department_settings):
    registered = RegisteredClient(
        client_id="client-1234",
        client_secret="issued-secret",
        registration_access_token="rat",
        registration_client_uri="http://127.0.0.1:9/register/client-1234",
    )

    settings = council.settings_from_registration(
        registered,
        name="Pay your council tax",
        department="Northfield Borough Council",
        base_url="http://localhost:8005",
        issuer="http://127.0.0.1:9",
    )

    assert settings.client_id == "client-1234"
    assert settings.client_secret == "issued-secret"
    assert settings.token_endpoint_auth_method == "client_secret_post"
    assert settings.scope == COUNCIL_METADATA["scope"]
    assert [settings.redirect_uri] == COUNCIL_METADATA["redirect_uris"]

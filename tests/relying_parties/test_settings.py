"""Department settings: what each way of registering needs, and settings that could not work."""

import pytest

from relying_parties.settings import RESERVED_AUTHORIZE_PARAMS


@pytest.mark.parametrize(
    ("kind", "changes", "complaint"),
    [
        ("driving", {"token_endpoint_auth_method": "client_secret_jwt"}, "must be one of"),
        ("driving", {"client_secret": None}, "client_secret_basic needs a client_secret"),
        ("council", {"client_secret": ""}, "client_secret_post needs a client_secret"),
        ("tax", {"private_key_path": None}, "private_key_jwt needs a private_key_path"),
        ("benefits", {"client_secret": "a-secret"}, "neither a client_secret nor a private_key"),
        ("benefits", {"private_key_path": "key.pem"}, "neither a client_secret nor a private_key"),
        ("driving", {"scope": "email profile"}, "scope must include 'openid'"),
        ("driving", {"colour": "red; background: url(x)"}, "colour must look like"),
        ("driving", {"issuer": "localhost:8000"}, "issuer must be an http"),
        ("driving", {"base_url": "localhost:8002"}, "base_url must be an http"),
        ("health", {"authorize_params": {"vtr": ["Cl.Cm"]}}, "map names to text"),
        ("health", {"authorize_params": {"": "x"}}, "map names to text"),
        ("health", {"authorize_params": "vtr=Cl.Cm"}, "authorize_params must be a mapping"),
        ("health", {"required_vot": ""}, "required_vot must be a vector of trust"),
        ("driving", {"id_token_signed_response_alg": "HS256"}, "must be one of ES256, RS256"),
        ("tax", {"id_token_signed_response_alg": "none"}, "must be one of ES256, RS256"),
        (
            "tax",
            {"backchannel_logout_session_required": "yes"},
            "backchannel_logout_session_required must be true or false",
        ),
    ],
)
def test_settings_that_could_not_work_are_refused(department_settings, kind, changes, complaint):
    with pytest.raises(ValueError, match=complaint) as refused:
        department_settings(kind, **changes)

    assert str(refused.value).startswith(f"{kind}: ")


@pytest.mark.parametrize(
    "name",
    sorted(RESERVED_AUTHORIZE_PARAMS | {"code_challenge", "code_challenge_method"}),
)
def test_authorize_params_cannot_replace_the_services_own(department_settings, name):
    with pytest.raises(ValueError, match=f"may not set '{name}'"):
        department_settings("health", authorize_params={name: "attacker"})


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("tax", "private_key_jwt"),
        ("driving", "client_secret_basic"),
        ("health", "private_key_jwt"),
        ("benefits", "none"),
        ("council", "client_secret_post"),
    ],
)
def test_each_way_of_registering_is_accepted(department_settings, kind, method):
    assert department_settings(kind).token_endpoint_auth_method == method


def test_authorize_params_given_later_changes_do_not_reach_the_settings(department_settings):
    params = {"vtr": '["Cl.Cm"]'}
    settings = department_settings("health", authorize_params=params)

    params["vtr"] = '["P0.Cl"]'

    assert settings.authorize_params == {"vtr": '["Cl.Cm"]'}
    with pytest.raises(TypeError):
        settings.authorize_params["vtr"] = '["P0.Cl"]'

"""Extra authorization parameters, and services that need a stronger sign-in (vtr and vot)."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.relying_parties.conftest import STRONG_VECTOR
from tests.relying_parties.test_department_app import complete_sign_in


def authorization_params(response) -> dict[str, list[str]]:
    """The query of the authorization request the service redirected to."""
    return parse_qs(urlsplit(response.headers["Location"]).query)


def test_health_asks_the_idp_for_a_stronger_sign_in(signed_up):
    _, client = signed_up("health")

    params = authorization_params(client.get("/sign-in"))

    assert params["vtr"] == ['["Cl.Cm"]']


@pytest.mark.parametrize("kind", ["tax", "driving", "benefits", "council"])
def test_other_services_ask_for_no_particular_level(signed_up, kind):
    _, client = signed_up(kind)

    assert "vtr" not in authorization_params(client.get("/sign-in"))


def test_any_service_can_send_extra_authorization_parameters(signed_up):
    _, client = signed_up("driving", authorize_params={"ui_locales": "cy en"})

    params = authorization_params(client.get("/sign-in?prompt=login"))

    assert params["ui_locales"] == ["cy en"]
    assert params["prompt"] == ["login"]
    assert params["response_type"] == ["code"]


def test_a_sign_in_at_the_required_level_shows_the_level(signed_up, fake_idp):
    _, client = signed_up("health")

    response = complete_sign_in(client, fake_idp)

    assert response.headers["Location"] == "/account"
    page = client.get("/account").text
    assert f"<code>{STRONG_VECTOR}</code>" in page
    assert fake_idp.CITIZEN_SUB in page


@pytest.mark.parametrize(
    ("vot", "said"),
    [("Cl", "signed you in at level Cl"), (None, "without stating a level")],
    ids=["weaker", "missing"],
)
def test_a_sign_in_below_the_required_level_is_refused(signed_up, fake_idp, vot, said):
    _, client = signed_up("health")
    fake_idp.id_token_changes = {"vot": vot}

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 403
    assert "This service needs a stronger sign-in" in response.text
    assert "insufficient_level" in response.text
    assert said in response.text
    assert "Your health record needs level Cl.Cm" in response.text
    assert client.get("/account").status_code == 302


def test_a_service_requiring_a_level_refuses_it_even_without_asking(signed_up, fake_idp):
    _, client = signed_up("health", authorize_params={})

    response = complete_sign_in(client, fake_idp)

    assert response.status_code == 403
    assert "insufficient_level" in response.text


@pytest.mark.parametrize(("vot", "shown"), [(None, "Not stated"), ("Cl", "<code>Cl</code>")])
def test_a_service_requiring_no_level_shows_what_the_idp_asserted(signed_up, fake_idp, vot, shown):
    _, client = signed_up("driving")
    fake_idp.id_token_changes = {"vot": vot}

    complete_sign_in(client, fake_idp)

    page = client.get("/account").text
    assert "Level of confidence (<code>vot</code>)" in page
    assert shown in page


def test_health_without_a_required_level_accepts_any_sign_in(signed_up, fake_idp):
    _, client = signed_up("health", required_vot=None)
    fake_idp.id_token_changes = {"vot": None}

    response = complete_sign_in(client, fake_idp)

    assert response.headers["Location"] == "/account"
    assert "Not stated" in client.get("/account").text

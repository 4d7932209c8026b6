"""The demo's front page: where the IdP and each service are, and how each is registered."""

import pytest

from relying_parties.landing import LandingService, create_app

IDP_URL = "http://localhost:8000"
SERVICES = [
    LandingService(
        "Your tax account",
        "HM Revenue & Customs",
        "http://localhost:8001",
        "private_key_jwt with a JWKS URL, pairwise subject",
    ),
    LandingService(
        "View your driving licence",
        "Driver and Vehicle Licensing Agency",
        "http://localhost:8002",
        "client_secret_basic",
    ),
    LandingService(
        "Your health record", "NHS", "http://localhost:8003", "private_key_jwt, JWKS by value"
    ),
    LandingService(
        "Check your benefits",
        "Department for Work and Pensions",
        "http://localhost:8004",
        "a public client: PKCE, no secret",
    ),
    LandingService(
        "Pay your council tax",
        "Northfield Borough Council",
        "http://localhost:8005",
        "registers itself (RFC 7591), client_secret_post",
    ),
]


@pytest.fixture
def landing():
    """The front page's test client."""
    app = create_app(IDP_URL, SERVICES)
    app.config["TESTING"] = True
    return app.test_client()


def test_the_page_lists_the_idp_and_every_service_with_how_it_is_registered(landing):
    response = landing.get("/")

    assert response.status_code == 200
    page = response.text
    assert '<h1 class="govuk-heading-xl">One government login, 5 services</h1>' in page
    assert f'href="{IDP_URL}"' in page
    assert f"{IDP_URL}/.well-known/openid-configuration" in page
    for service in SERVICES:
        assert f'<a class="govuk-link" href="{service.url}">{service.name}</a>' in page
        assert service.how_registered in page
    assert "HM Revenue &amp; Customs" in page
    assert page.index("Your tax account") < page.index("Pay your council tax")


def test_the_page_has_the_services_look_and_security_headers(landing):
    response = landing.get("/")

    assert "--brand: #0b0c0c" in response.text
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_what_the_page_shows_is_escaped():
    service = LandingService("<b>Bold</b>", "Dept", "http://localhost:8009", "none")

    page = create_app(IDP_URL, [service]).test_client().get("/").text

    assert "&lt;b&gt;Bold&lt;/b&gt;" in page
    assert "<b>Bold</b>" not in page


def test_health_says_ok(landing):
    response = landing.get("/health")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("idp_url", "services", "complaint"),
    [
        ("localhost:8000", SERVICES, "idp_url must be an http"),
        (IDP_URL, [], "at least one service"),
    ],
)
def test_an_unusable_page_is_refused(idp_url, services, complaint):
    with pytest.raises(ValueError, match=complaint):
        create_app(idp_url, services)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        (("Tax", "HMRC", "localhost:8001", "client_secret_basic"), "url must be an http"),
        (("", "HMRC", "http://localhost:8001", "client_secret_basic"), "name must not be empty"),
        (("Tax", "HMRC", "http://localhost:8001", " "), "how_registered must not be empty"),
    ],
)
def test_an_unusable_service_entry_is_refused(fields, complaint):
    with pytest.raises(ValueError, match=complaint):
        LandingService(*fields)

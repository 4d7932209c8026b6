"""The demo's front page: the IdP and each sample service, and how each is registered."""

from collections.abc import Sequence
from dataclasses import dataclass

from flask import Flask, render_template

from relying_parties.common import security_headers_for
from relying_parties.frontend import STATIC_FOLDER, init_frontend
from relying_parties.settings import discovery_url

LANDING_COLOUR = "#0b0c0c"


@dataclass(frozen=True)
class LandingService:
    """One sample service as the front page lists it."""

    name: str
    department: str
    url: str
    how_registered: str

    def __post_init__(self) -> None:
        """Reject an entry that would show a blank or unusable link."""
        for name in ("name", "department", "how_registered"):
            if not getattr(self, name).strip():
                raise ValueError(f"landing service {self.url!r}: {name} must not be empty")
        if not _is_http_url(self.url):
            raise ValueError(f"landing service {self.name!r}: url must be an http(s) URL")


def create_app(idp_url: str, services: Sequence[LandingService]) -> Flask:
    """The front page app, listing the IdP at idp_url and the given services."""
    if not _is_http_url(idp_url):
        raise ValueError(f"idp_url must be an http(s) URL, not {idp_url!r}")
    if not services:
        raise ValueError("the landing page needs at least one service to list")
    app = Flask(__name__, static_folder=STATIC_FOLDER)
    init_frontend(app, LANDING_COLOUR)
    listed = tuple(services)

    @app.get("/")
    def index() -> str:
        """The one page: where everything is."""
        return render_template(
            "rp/landing.html",
            idp_url=idp_url,
            discovery_url=discovery_url(idp_url),
            services=listed,
        )

    @app.get("/health")
    def health() -> dict:
        """Liveness check for the launcher."""
        return {"status": "ok"}

    app.after_request(security_headers_for(idp_url, LANDING_COLOUR))
    return app


def _is_http_url(value: str) -> bool:
    """Whether value is an http(s) URL."""
    return value.startswith(("https://", "http://"))

"""Development pages, served only when the dev_pages setting (IDP_DEV_PAGES) says so: the mail
outbox and the demo citizen's and demo staff's current authenticator codes. `idp demo` turns
them on; where the issuer happens to be says nothing (a loopback issuer may still be a real
deployment behind a proxy), and `idp run-prod` never serves them."""

from __future__ import annotations

import pyotp
from flask import Blueprint, abort, g, render_template

from idp import clock
from idp.mail import read_outbox
from idp.settings import current_settings

bp = Blueprint("dev", __name__, url_prefix="/dev")

# The demo accounts `idp demo` makes (idp/development/demo.py), whose codes the pages below show.
DEMO_EMAIL = "demo@example.gov.uk"
DEMO_PASSWORD = "correct horse battery staple"
# The demo citizen's authenticator app secret: add it to an app, or read the current code at
# /dev/totp. Only ever on a developer's machine (idp demo refuses any other issuer).
DEMO_TOTP_SECRET = "DEMOCITIZENTOTPSECRETSAM2234567A"
# Staff accounts for trying the department and administrator pages.
DEMO_PLATFORM_ADMIN = "platform.admin@example.gov.uk"
DEMO_DEPARTMENT_ADMIN = "hmrc.admin@example.gov.uk"
DEMO_AUDITOR = "auditor@example.gov.uk"
DEMO_STAFF_DEPARTMENT = "HM Revenue & Customs"
DEMO_STAFF_PASSWORD = "staff demo password"
# Both demo staff members' authenticator app secret (each accepts a code once): add it to an
# app, or read the current code at /dev/totp. Only ever on a developer's machine.
DEMO_STAFF_TOTP_SECRET = "DEMOSTAFFTOTPSECRETSHAREDBYSTAFF"


@bp.before_request
def only_on_a_developers_machine() -> None:
    """Nothing here exists unless the setting asks for it."""
    if not current_settings().dev_pages:
        abort(404)
    # Pages for developers, in English only (as the staff pages are): no Welsh link.
    g.page_lang = "en"


@bp.get("/outbox")
def outbox() -> str:
    """The email and text messages the IdP would have sent, newest first (no mail server and no
    GOV.UK Notify needed)."""
    return render_template("dev/outbox.html", messages=read_outbox(current_settings()))


@bp.get("/totp")
def totp() -> str:
    """The codes the demo citizen's and the demo staff's authenticator apps would show now."""
    now = clock.time()
    return render_template(
        "dev/totp.html",
        email=DEMO_EMAIL,
        code=pyotp.TOTP(DEMO_TOTP_SECRET).at(now),
        staff_emails=(DEMO_PLATFORM_ADMIN, DEMO_DEPARTMENT_ADMIN, DEMO_AUDITOR),
        staff_code=pyotp.TOTP(DEMO_STAFF_TOTP_SECRET).at(now),
        seconds_left=30 - int(now) % 30,
    )

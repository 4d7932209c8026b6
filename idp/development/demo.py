"""`make run`: the IdP, the five sample departments and a front page, in one process."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Flask
from waitress import create_server

import evidence
from idp.accounts.citizens import create_citizen, find_citizen_by_email
from idp.accounts.second_factor.logic import begin_totp_enrolment, totp_credential
from idp.departments.samples import SampleDepartment, register_departments
from idp.departments.services import (
    ensure_department,
    issue_initial_access_token,
    revoke_initial_access_token,
)
from idp.development.dev_pages import (
    DEMO_AUDITOR,
    DEMO_DEPARTMENT_ADMIN,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_PLATFORM_ADMIN,
    DEMO_STAFF_DEPARTMENT,
    DEMO_STAFF_PASSWORD,
    DEMO_STAFF_TOTP_SECRET,
    DEMO_TOTP_SECRET,
)
from idp.extensions import db
from idp.models import InitialAccessToken, StaffMember
from idp.models.timestamps import utcnow
from idp.operations.housekeeping import prepare_database
from idp.operations.worker import start_worker
from idp.settings import Settings
from idp.staff.accounts import begin_staff_totp_enrolment, create_staff, has_staff_second_factor
from relying_parties import landing
from relying_parties.common import DepartmentSettings
from relying_parties.registration import RegistrationError, register_dynamically

log = logging.getLogger("idp")


def ensure_demo_citizen() -> None:
    """The demo citizen exists with the printed password and authenticator app secret."""

    citizen = find_citizen_by_email(DEMO_EMAIL)
    if citizen is None:
        citizen = create_citizen(
            DEMO_EMAIL,
            DEMO_PASSWORD,
            given_name="Sam",
            family_name="Citizen",
            email_verified=True,
        )
    credential = totp_credential(citizen)
    if credential is None or credential.confirmed_at is None:
        # Confirmed without typing a code, so the code /dev/totp shows now still works.
        begin_totp_enrolment(citizen, secret=DEMO_TOTP_SECRET)
        totp_credential(citizen).confirmed_at = utcnow()
        db.session.commit()


def ensure_demo_staff() -> None:
    """A platform administrator, an HMRC department administrator and an auditor, with the
    printed password and authenticator app secret."""

    def find(email: str) -> StaffMember | None:
        return db.session.scalar(db.select(StaffMember).filter_by(email=email))

    if find(DEMO_PLATFORM_ADMIN) is None:
        create_staff(DEMO_PLATFORM_ADMIN, DEMO_STAFF_PASSWORD, "platform_admin")
    if find(DEMO_DEPARTMENT_ADMIN) is None:
        department = ensure_department(DEMO_STAFF_DEPARTMENT)
        create_staff(DEMO_DEPARTMENT_ADMIN, DEMO_STAFF_PASSWORD, "department_admin", department)
    if find(DEMO_AUDITOR) is None:
        create_staff(DEMO_AUDITOR, DEMO_STAFF_PASSWORD, "auditor")
    for email in (DEMO_PLATFORM_ADMIN, DEMO_DEPARTMENT_ADMIN, DEMO_AUDITOR):
        member = find(email)
        if not has_staff_second_factor(member):
            # Confirmed without typing a code, so the code /dev/totp shows now still works.
            begin_staff_totp_enrolment(member, secret=DEMO_STAFF_TOTP_SECRET)
            member.totp_confirmed_at = utcnow()
            db.session.commit()


def rp_settings(sample: SampleDepartment, settings: Settings, **credentials):
    """The department service's settings for a sample registered from the file."""

    values = {
        "client_id": sample.client_id,
        "client_secret": sample.client_secret,
        "private_key_path": sample.private_key_path,
        "token_endpoint_auth_method": sample.token_endpoint_auth_method,
        **credentials,
    }
    return DepartmentSettings(
        name=sample.name,
        department=sample.department,
        base_url=sample.base_url,
        issuer=settings.issuer,
        scope=sample.metadata.get("scope", "openid"),
        colour=sample.colour,
        authorize_params=sample.authorize_params,
        required_vot=sample.required_vot,
        **values,
    )


def department_app(sample: SampleDepartment, settings: Settings, **credentials) -> Flask:
    """One sample department's Flask app."""
    module = importlib.import_module(f"relying_parties.{sample.service}")
    return module.create_app(rp_settings(sample, settings, **credentials))


def register_through_api(
    idp_app: Flask, sample: SampleDepartment, settings: Settings
) -> dict[str, str]:
    """What a department does with an initial access token: register itself over HTTP.

    The token is pre-approved, single-use, short-lived, issued only when the registration
    saved from an earlier start is missing or no longer known, and revoked if not used.
    """

    store = Path(settings.instance_path) / "department-registrations" / f"{sample.service}.json"
    if store.exists():
        # A registration kept from an earlier start needs no token: it is confirmed with its
        # own registration access token (RFC 7592). Only if it is gone is a token issued.
        try:
            registered = register_dynamically(settings.issuer, sample.metadata, "", store)
            return {"client_id": registered.client_id, "client_secret": registered.client_secret}
        except RegistrationError as exc:
            if exc.error != "invalid_token":
                raise
    with idp_app.app_context():
        token, value = issue_initial_access_token(
            description=f"make run: {sample.name}",
            created_by="make run",
            department=ensure_department(sample.department),
            pre_approved=True,
            lifetime=600,
        )
        token_id = token.id
    try:
        registered = register_dynamically(settings.issuer, sample.metadata, value, store)
    finally:
        with idp_app.app_context():
            unused = db.session.get(InitialAccessToken, token_id)
            if unused is not None and unused.uses == 0:
                revoke_initial_access_token(unused, actor="make run")
    return {"client_id": registered.client_id, "client_secret": registered.client_secret}


@dataclass
class Running:
    """The servers started so far, to close on Ctrl-C."""

    servers: list

    def serve(self, app: Flask, host: str, port: int, threads: int = 4) -> None:
        """Start a waitress server for app in a background thread."""
        server = create_server(app, host=host, port=port, threads=threads)
        self.servers.append(server)
        threading.Thread(target=server.run, daemon=True).start()


def evidence_service_urls(first_port: int) -> dict[str, str]:
    """The simulated evidence services' base URLs by kind, on consecutive ports: the value of
    the IdP's evidence_services setting."""
    return {
        kind: f"http://localhost:{first_port + offset}"
        for offset, kind in enumerate(evidence.KINDS)
    }


def start_evidence_services(settings: Settings, running: Running, first_port: int) -> dict:
    """Serve the simulated evidence services (evidence/) from first_port upward, each with its
    own signing key in the instance folder; their base URLs by kind."""
    urls = evidence_service_urls(first_port)
    instance_path = str(Path(settings.instance_path) / "evidence")
    for offset, (kind, url) in enumerate(urls.items()):
        app = evidence.create_app(kind, instance_path, base_url=url)
        running.serve(app, settings.host, first_port + offset, threads=2)
    return urls


def start_sample_services(idp_app: Flask, settings: Settings, running: Running) -> list:
    """Register the sample departments and serve them (and the front page, then the simulated
    evidence services) on their ports.

    Services that register themselves through the API do so in a background thread, as they
    would at their own start-up, once the IdP is listening; the rest start at once.
    """

    with idp_app.app_context():
        samples = register_departments(settings)
    for sample in samples:
        if sample.registration == "file":
            running.serve(department_app(sample, settings), settings.host, sample.port)
    services = [
        landing.LandingService(s.name, s.department, s.base_url, s.how_registered) for s in samples
    ]
    landing_port = settings.departments_base_port + len(samples)
    running.serve(landing.create_app(settings.issuer, services), settings.host, landing_port)
    start_evidence_services(settings, running, landing_port + 1)
    # TODO(lead): once Settings.evidence_services (IDP_EVIDENCE_SERVICES) is on this branch,
    # hand the IdP these URLs when none are configured, e.g.
    #     if not settings.evidence_services:
    #         idp_app.config["IDP_SETTINGS"] = idp_app.config["IDP_SETTINGS"].replace(
    #             evidence_services=urls)
    # (urls = the return value of start_evidence_services above).

    def start_self_registering() -> None:
        for sample in samples:
            if sample.registration != "api":
                continue
            try:
                credentials = register_through_api(idp_app, sample, settings)
            except Exception as exc:  # noqa: BLE001 - reported; the other services keep running
                log.error("%s could not register itself: %s", sample.name, exc)
                continue
            app = department_app(sample, settings, **credentials)
            running.serve(app, settings.host, sample.port)

    threading.Thread(target=start_self_registering, daemon=True).start()
    return samples


def run_demo(idp_app: Flask) -> None:
    """Prepare the database, start every server, print the URLs, wait for Ctrl-C."""

    settings: Settings = idp_app.config["IDP_SETTINGS"]
    if not settings.is_development:
        # The demo creates accounts whose passwords are printed and published in the README.
        raise click.ClickException(
            f"idp demo is for a developer's machine (issuer on localhost), not {settings.issuer}; "
            "run the IdP with `idp serve`"
        )
    # The demo's own pages: the outbox and the demo accounts' codes (never on by themselves).
    settings = settings.replace(dev_pages=True)
    idp_app.config["IDP_SETTINGS"] = settings
    with idp_app.app_context():
        prepare_database()
        ensure_demo_citizen()
        ensure_demo_staff()
    running = Running(servers=[])
    running.serve(idp_app, settings.host, settings.port, threads=8)
    start_worker(idp_app)
    samples = start_sample_services(idp_app, settings, running)
    landing_url = f"http://localhost:{settings.departments_base_port + len(samples)}"
    lines = [f"  {'Start here: every service':<30} {landing_url}", ""]
    lines.append(f"  {'Government sign in (the IdP)':<30} {settings.issuer}")
    lines += [f"  {s.name:<30} {s.base_url}  ({s.department})" for s in samples]
    lines.append(f"  {'Staff pages':<30} {settings.issuer}/staff/sign-in")
    evidence_urls = evidence_service_urls(settings.departments_base_port + len(samples) + 1)
    lines += [
        f"  {'Simulated ' + kind.replace('_', ' ') + ' check':<30} {url}"
        for kind, url in evidence_urls.items()
    ]
    click.echo("\nRunning:\n" + "\n".join(lines))
    click.echo(f"\nDemo citizen:  {DEMO_EMAIL}\nPassword:      {DEMO_PASSWORD}")
    click.echo(
        f"Second factor: the code at {settings.issuer}/dev/totp, or add the key "
        f"{DEMO_TOTP_SECRET} to an authenticator app"
    )
    click.echo(
        f"Staff:         {DEMO_PLATFORM_ADMIN} (platform administrator),\n"
        f"               {DEMO_DEPARTMENT_ADMIN} ({DEMO_STAFF_DEPARTMENT} administrator),\n"
        f"               {DEMO_AUDITOR} (auditor: the audit record)\n"
        f"Password:      {DEMO_STAFF_PASSWORD}\n"
        f"Second factor: the staff code at {settings.issuer}/dev/totp, or add the key "
        f"{DEMO_STAFF_TOTP_SECRET} to an authenticator app\n"
    )
    click.echo("Open a department, sign in, then open another one. Ctrl-C stops everything.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    click.echo("\nStopping...")
    for server in running.servers:
        server.close()

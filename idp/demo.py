"""`make run`: the IdP and the demo departments in one process, until Ctrl-C."""

from __future__ import annotations

import importlib
import signal
import threading

import click
from flask import Flask
from waitress import create_server

DEMO_EMAIL = "demo@example.gov.uk"
DEMO_PASSWORD = "correct horse battery staple"


def ensure_demo_citizen() -> None:
    """The demo citizen exists with the printed password."""
    from idp.accounts.services import create_citizen, find_citizen_by_email

    if find_citizen_by_email(DEMO_EMAIL) is None:
        create_citizen(
            DEMO_EMAIL,
            DEMO_PASSWORD,
            given_name="Sam",
            family_name="Citizen",
            email_verified=True,
        )


def department_apps(settings) -> list[tuple[object, Flask]]:
    """Each demo department's Flask app, built from config/departments.toml."""
    from idp.departments.samples import load_departments
    from relying_parties.common import DepartmentSettings

    apps = []
    for department in load_departments(settings):
        module = importlib.import_module(f"relying_parties.{department.service}")
        rp_settings = DepartmentSettings(
            name=department.name,
            department=department.department,
            client_id=department.client_id,
            base_url=department.base_url,
            issuer=settings.issuer,
            token_endpoint_auth_method=department.metadata["token_endpoint_auth_method"],
            client_secret=department.client_secret,
            private_key_path=department.private_key_path,
            scope=department.metadata.get("scope", "openid"),
            colour=department.colour,
        )
        apps.append((department, module.create_app(rp_settings)))
    return apps


def run_demo(idp_app: Flask) -> None:
    """Prepare the database, start every server, print the URLs, wait for Ctrl-C."""
    from idp.cli import prepare_database
    from idp.departments.samples import register_departments

    settings = idp_app.config["IDP_SETTINGS"]
    prepare_database()
    register_departments(settings)
    ensure_demo_citizen()
    servers = [create_server(idp_app, host=settings.host, port=settings.port, threads=8)]
    lines = [f"  Government sign in (the IdP)  {settings.issuer}"]
    for department, app in department_apps(settings):
        servers.append(create_server(app, host=settings.host, port=department.port, threads=4))
        lines.append(f"  {department.name:<29} {department.base_url}")
    threads = [threading.Thread(target=s.run, daemon=True) for s in servers]
    for t in threads:
        t.start()
    click.echo("\nRunning:\n" + "\n".join(lines))
    click.echo(f"\nDemo citizen:  {DEMO_EMAIL}\nPassword:      {DEMO_PASSWORD}\n")
    click.echo("Open a department, sign in, then open the other one. Ctrl-C stops everything.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    click.echo("\nStopping...")
    for s in servers:
        s.close()

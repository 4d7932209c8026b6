"""`make run` serves the simulated evidence services next to the sample departments."""

from __future__ import annotations

import os
import random
import socket

import httpx

from idp.development.demo import Running, start_evidence_services
from idp.settings import load_settings
from tests.support.evidence import KENNETH, typed, verified_credential


def consecutive_free_ports(count: int) -> int:
    """The first of count consecutive free loopback ports."""
    for _ in range(50):
        first = random.randint(20000, 60000)
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return first
    raise RuntimeError("no range of free ports")


def test_the_demo_serves_each_evidence_service_on_its_own_port(tmp_path):
    settings = load_settings(config_file=os.devnull, instance_path=str(tmp_path), host="127.0.0.1")
    first = consecutive_free_ports(4)
    running = Running(servers=[])
    try:
        urls = start_evidence_services(settings, running, first)
        assert urls == {
            "passport": f"http://localhost:{first}",
            "driving_licence": f"http://localhost:{first + 1}",
            "address": f"http://localhost:{first + 2}",
            "kbv": f"http://localhost:{first + 3}",
        }
        for url in urls.values():
            assert "This is a simulation." in httpx.get(url).text
        body = {
            "sub": "c",
            "aud": settings.issuer,
            "nonce": "n",
            "subject": typed(KENNETH, "address"),
        }
        credential = httpx.post(f"{urls['address']}/check", json=body).json()["credential"]
        claims = verified_credential(urls["address"], credential, settings.issuer)
        assert claims["vc"]["evidence"][0]["identityFraudScore"] == 2
        assert sorted(os.listdir(tmp_path / "evidence")) == [
            "address-signing-key.pem",
            "driving_licence-signing-key.pem",
            "kbv-signing-key.pem",
            "passport-signing-key.pem",
        ]
    finally:
        for server in running.servers:
            server.close()

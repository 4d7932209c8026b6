"""Liveness and readiness for a load balancer or orchestrator.

/healthz: the process answers (no dependency is touched, so a database outage does not get
every process restarted). /readyz: this process can serve sign-ins now: the database answers,
and Redis too when IDP_REDIS_URL is set; 503 otherwise, so the load balancer sends citizens
elsewhere until it recovers (connections are checked before use, so recovery needs no restart).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from idp.extensions import db
from idp.settings import current_settings

bp = Blueprint("health", __name__)
log = logging.getLogger("idp.health")

# Readiness must answer fast even when a dependency hangs.
REDIS_TIMEOUT_SECONDS = 2


def _no_store(response: Response) -> Response:
    """Health answers are about this moment: never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def liveness() -> Response:
    """The process is up."""
    return _no_store(jsonify(status="ok"))


def _database_ready() -> bool:
    """One round trip to the database."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return True
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("readiness: the database does not answer: %s", type(exc).__name__)
        return False


def _redis_ready(url: str) -> bool:
    """One PING to Redis."""
    import redis

    try:
        client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        log.warning("readiness: Redis does not answer: %s", type(exc).__name__)
        return False


@bp.get("/readyz")
def readiness() -> tuple[Response, int]:
    """Ready when every dependency answers; which one does not, otherwise."""
    checks = {"database": "ok" if _database_ready() else "unreachable"}
    redis_url = current_settings().redis_url
    if redis_url:
        checks["redis"] = "ok" if _redis_ready(redis_url) else "unreachable"
    ready = all(value == "ok" for value in checks.values())
    response = jsonify(status="ready" if ready else "unavailable", checks=checks)
    return _no_store(response), 200 if ready else 503

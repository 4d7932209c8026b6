"""IDP_SERVER: which WSGI server serves each instance of `make run-prod` (and of
`python -m bench.run --servers`), read by idp.operations.production.server_command."""

from __future__ import annotations

import pytest

from idp.operations.production import DEFAULT_SERVER, StackError, server_command

ENV = {"IDP_BIND": "127.0.0.1:8101", "IDP_WORKERS": "3", "IDP_WORKER_THREADS": "4"}


def test_gunicorn_with_sync_workers_serves_by_default():
    command = server_command("idp.wsgi:app", ENV)

    assert DEFAULT_SERVER == "gunicorn-sync"
    assert command[1:3] == ["-m", "gunicorn"]
    assert "--worker-class" not in command
    assert command[-1] == "idp.wsgi:app"


def test_gthread_asks_gunicorn_for_threaded_workers():
    command = server_command("idp.wsgi:app", {**ENV, "IDP_SERVER": "gunicorn-gthread"})

    assert command[command.index("--worker-class") + 1] == "gthread"


def test_granian_builds_the_idp_in_each_worker_on_the_instances_address():
    command = server_command("idp.wsgi:app", {**ENV, "IDP_SERVER": "granian"})

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    assert command[1:3] == ["-m", "granian"]
    assert (option("--host"), option("--port")) == ("127.0.0.1", "8101")
    assert (option("--workers"), option("--blocking-threads")) == ("3", "4")
    assert option("--factory") == "idp.operations.granian_app:create"


def test_an_unknown_server_is_refused_by_name():
    with pytest.raises(StackError, match="IDP_SERVER=uwsgi is not one of gunicorn-sync"):
        server_command("idp.wsgi:app", {**ENV, "IDP_SERVER": "uwsgi"})

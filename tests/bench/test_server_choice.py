"""IDP_SERVER: which WSGI server serves each instance of `make run-prod` (and of
`python -m bench.run --servers`), read by idp.operations.production.server_command."""

from __future__ import annotations

import pytest

from idp.operations.production import DEFAULT_SERVER, StackError, server_command

ENV = {"IDP_BIND": "127.0.0.1:8101", "IDP_WORKERS": "3", "IDP_WORKER_THREADS": "4"}


def test_granian_serves_by_default_building_the_idp_in_each_worker():
    command = server_command("idp.wsgi:app", ENV)

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    assert DEFAULT_SERVER == "granian"
    # granian's command through the launcher that gives all workers one listening socket.
    assert command[1:3] == ["-m", "idp.operations.granian_app"]
    assert (option("--host"), option("--port")) == ("127.0.0.1", "8101")
    assert (option("--workers"), option("--blocking-threads")) == ("3", "4")
    assert option("--factory") == "idp.operations.granian_app:create"


def test_a_granian_worker_takes_only_what_it_can_serve_and_is_replaced_when_it_dies():
    command = server_command("idp.wsgi:app", {**ENV, "IDP_SERVER": "granian"})

    assert command[command.index("--backpressure") + 1] == "4"  # its threads
    assert "--no-http1-keep-alive" in command
    assert "--respawn-failed-workers" in command
    assert command[command.index("--workers-kill-timeout") + 1] == "20"


def test_granian_has_two_threads_per_worker_unless_told():
    command = server_command("idp.wsgi:app", {"IDP_BIND": "127.0.0.1:8101", "IDP_WORKERS": "2"})

    assert command[command.index("--blocking-threads") + 1] == "2"
    assert command[command.index("--backpressure") + 1] == "2"


def test_gunicorn_with_sync_workers_on_request():
    command = server_command("idp.wsgi:app", {**ENV, "IDP_SERVER": "gunicorn-sync"})

    assert command[1:3] == ["-m", "gunicorn"]
    assert "--worker-class" not in command
    assert command[-1] == "idp.wsgi:app"


def test_gthread_asks_gunicorn_for_threaded_workers():
    command = server_command("idp.wsgi:app", {**ENV, "IDP_SERVER": "gunicorn-gthread"})

    assert command[command.index("--worker-class") + 1] == "gthread"


def test_an_unknown_server_is_refused_by_name():
    with pytest.raises(StackError, match="IDP_SERVER=uwsgi is not one of granian, gunicorn-sync"):
        server_command("idp.wsgi:app", {**ENV, "IDP_SERVER": "uwsgi"})


def test_run_prod_refuses_an_unknown_server_before_starting_anything(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from idp.cli import cli

    monkeypatch.setenv("IDP_SERVER", "uwsgi")
    monkeypatch.setenv("IDP_DATABASE_URL", "postgresql://x@127.0.0.1:1/x")
    monkeypatch.setenv("IDP_REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(cli, ["run-prod", "--run-dir", str(tmp_path / "run")])

    assert result.exit_code != 0
    assert "IDP_SERVER=uwsgi is not one of granian, gunicorn-sync, gunicorn-gthread" in (
        result.output
    )
    assert not (tmp_path / "run").exists()  # no secrets, no nginx files

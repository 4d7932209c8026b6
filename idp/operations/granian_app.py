"""The IdP under granian, run-prod's server (idp/operations/production.py, server_command):
``python -m idp.operations.granian_app --interface wsgi --factory
idp.operations.granian_app:create``.

granian calls create() in each of its worker processes, so, as under gunicorn
(gunicorn_conf.py), every process builds its own app after it has started and runs its own
background worker (back-channel logouts, session expiry, audit checkpoints). granian has no hook
for a worker's exit: the background worker is stopped at the interpreter's exit instead.

Run as a module, this file is granian's command with two differences that make a worker killed
under load cost only the requests it was serving, as under gunicorn
(tests/production/test_production_stack.py, bench/NOTES.md "Server stack"):

- One listening socket, opened by granian's main process and shared by its workers, as gunicorn's
  master does. On Linux granian otherwise gives each worker a socket of its own (SO_REUSEPORT),
  opened once the worker's app is built: while a worker restarts, the connections the kernel
  had queued on its socket are reset, and when every worker of an instance is restarting the
  instance refuses connections, so nginx counts failures against it and, once both instances
  are in that state, answers 502 without asking either. With the one socket, connections wait
  in its queue for the next worker that is ready.
- The IdP's modules are imported once here, before the workers are forked, so a worker that
  replaces a dead one only builds its app (a few tenths of a second, not a second or more). No
  app, database connection or thread exists before the fork.
"""

from __future__ import annotations

import atexit

from flask import Flask

from idp import create_app
from idp.operations.worker import start_worker, stop_worker


def create() -> Flask:
    """Build this worker process's app and start its background worker."""
    app = create_app()
    start_worker(app)
    atexit.register(stop_worker, app)
    return app


def share_one_listening_socket() -> None:
    """Make granian's main process open the TCP socket and hand it to every worker, as it does
    on platforms without SO_REUSEPORT and for a Unix socket (granian.server.common)."""
    import granian
    from granian.server import common

    original = getattr(common.AbstractServer, "_init_shared_socket", None)
    if original is None or not hasattr(common, "SocketSpec"):
        raise SystemExit(
            f"granian {granian.__version__} is not the granian 2 this launcher knows (no "
            "AbstractServer._init_shared_socket): pin granian 2 or set IDP_SERVER=gunicorn-sync"
        )

    def init_shared_socket(server) -> None:
        if server.bind_uds:
            return original(server)
        server._ssp = common.SocketSpec(server.bind_addr, server.bind_port, server.backlog)
        server._shd = server._ssp.build()
        server._sfd = server._shd.get_fd()
        server._ssp = None
        return None

    common.AbstractServer._init_shared_socket = init_shared_socket


if __name__ == "__main__":
    from granian.cli import entrypoint

    share_one_listening_socket()
    entrypoint()

"""The IdP's app for granian (``IDP_SERVER=granian``; idp/operations/production.py):
``granian --interface wsgi --factory idp.operations.granian_app:create``.

granian calls this in each of its worker processes, so, as under gunicorn (gunicorn_conf.py),
every process builds its own app after it has started and runs its own background worker
(back-channel logouts, session expiry, audit checkpoints). granian has no hook for a worker's
exit: the background worker is stopped at the interpreter's exit instead.
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

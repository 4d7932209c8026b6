"""gunicorn settings for the IdP (``gunicorn -c idp/operations/gunicorn_conf.py idp.wsgi:app``).

Every value can be changed by environment variables, so one file serves every instance:
IDP_BIND (127.0.0.1:8000), IDP_WORKERS (2 per core + 1), IDP_WORKER_THREADS (1: sync workers).
The app is built in each worker after the fork (no preload), so no database connection or
background thread is ever shared between processes. Each worker then starts its own background
worker (back-channel logouts, session expiry, audit checkpoints), which are all safe to run in
many processes at once.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("IDP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("IDP_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("IDP_WORKER_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
# Behind a load balancer that keeps connections to the instance open.
keepalive = 5
# A request that takes this long has a worker stuck (argon2 takes tens of milliseconds).
timeout = 30
graceful_timeout = 20
# The IdP writes its own JSON log lines; gunicorn's access log would repeat every request.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("IDP_GUNICORN_LOG_LEVEL", "warning")
# No runtime control socket (gunicornc): two instances on one machine would share its path.
control_socket_disable = True
proc_name = os.environ.get("IDP_INSTANCE_NAME") or "idp"
# Workers restart after this many requests (with jitter), a guard against slow leaks.
max_requests = int(os.environ.get("IDP_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10


def post_worker_init(worker) -> None:
    """Start this worker process's background worker once the app is loaded."""
    # Imported in the hook: gunicorn's master reads this file and never loads the app.
    from idp.operations.worker import start_worker

    if "IDP_SETTINGS" in getattr(worker.wsgi, "config", {}):  # not the benchmark's bare app
        start_worker(worker.wsgi)


def worker_exit(server, worker) -> None:
    """Let deliveries in flight finish before the worker process goes."""
    # Imported in the hook: gunicorn's master reads this file and never loads the app.
    from idp.operations.worker import stop_worker

    app = getattr(worker, "wsgi", None)
    if "IDP_SETTINGS" in getattr(app, "config", {}):
        stop_worker(app)


def child_exit(server, worker) -> None:
    """Prometheus multiprocess mode: forget the live gauges of a worker that has gone."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

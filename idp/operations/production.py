"""The production way to run the IdP on one machine: `make run-prod` (``idp run-prod``).

Two separate IdP instances, each a gunicorn master with several worker processes, on their own
loopback ports and instance folders, behind nginx (Debian's package) balancing round-robin, all
on one PostgreSQL database and one Redis. Nothing that matters lives in one process: sessions,
journeys, codes, keys and the audit chain are in PostgreSQL, throttling counters in Redis. So a
sign-in may begin on one instance and finish on the other, and either may be stopped.

The same class starts the stack for the tests of this path (tests/production/) and for the
benchmark (bench/), so what is measured and tested is what `make run-prod` runs.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from idp import create_app
from idp.security.web import HSTS_VALUE
from idp.settings import SettingsError, _coerce, load_settings

GUNICORN_CONF = Path(__file__).with_name("gunicorn_conf.py")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# Secrets both instances must share (forms signed by one are checked by the other, private keys
# encrypted by one are read by the other); generated once into the run folder for this machine.
SHARED_SECRETS = ("IDP_SECRET_KEY", "IDP_KEY_ENCRYPTION_KEY", "IDP_PAIRWISE_SECRET")


class StackError(RuntimeError):
    """The production stack could not be started; the message says which part and why."""


NGINX_CONF = """\
# Written by idp.operations.production for this run; edit idp/operations/production.py,
# not this file.
worker_processes {nginx_workers};
pid "{run_dir}/nginx.pid";
error_log "{run_dir}/nginx-error.log" warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    # Bodies are small (the IdP refuses more than 64 KiB): keep them in memory, never on disk.
    client_max_body_size 64k;
    client_body_buffer_size 64k;
    client_body_temp_path "{run_dir}/nginx-temp/body";
    proxy_temp_path "{run_dir}/nginx-temp/proxy";
    fastcgi_temp_path "{run_dir}/nginx-temp/fastcgi";
    uwsgi_temp_path "{run_dir}/nginx-temp/uwsgi";
    scgi_temp_path "{run_dir}/nginx-temp/scgi";
    proxy_buffer_size 16k;
    proxy_buffers 16 16k;
    proxy_max_temp_file_size 0;

    upstream idp_instances {{
        # Round-robin (nginx's default) over the separate IdP instances.
{upstream_servers}
        keepalive 64;
    }}

    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            proxy_pass http://idp_instances;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The instances answer as the issuer whatever Host the client sent; say so anyway.
            proxy_set_header Host "{issuer_host}";
            # The instances trust exactly one proxy (IDP_PROXY_COUNT=1): this one.
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # Only a failure to connect moves a request to the other instance; a POST that
            # reached an instance is never sent twice (nginx's default for non-idempotent).
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 35s;
{hsts}{extra_location}
        }}
    }}
}}
"""


@dataclass
class Instance:
    """One IdP instance: a gunicorn master and its workers on a loopback port."""

    name: str
    port: int
    instance_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The instance's own address, bypassing the load balancer (operators and tests)."""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ProductionStack:
    """nginx in front of several gunicorn-served IdP instances on PostgreSQL and Redis."""

    database_url: str
    redis_url: str
    run_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    instance_ports: tuple[int, ...] = (8101, 8102)
    workers: int = 2
    threads: int = 1
    nginx_workers: int = 1
    # The issuer departments see; empty means http://<host>:<port> (the load balancer).
    issuer: str = ""
    # Further IDP_* settings for every instance (e.g. throttling limits in a test).
    settings_env: Mapping[str, str] = field(default_factory=dict)
    # The WSGI app the instances serve (the benchmark serves its bare ceiling app the same way).
    wsgi_app: str = "idp.wsgi:app"
    # Add X-IdP-Upstream (the instance that answered) to every response: tests and benchmarks.
    show_upstream: bool = False
    # Where the processes write their output; None means this terminal.
    log_dir: Path | None = None
    instances: list[Instance] = field(default_factory=list)
    nginx: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir).resolve()
        if not self.issuer:
            self.issuer = f"http://{self.host}:{self.port}"
        if not self.instances:
            self.instances = [
                Instance(
                    f"idp-{chr(ord('a') + i)}", port, self.run_dir / f"idp-{chr(ord('a') + i)}"
                )
                for i, port in enumerate(self.instance_ports)
            ]

    # -- the environment every IdP process of this stack runs with ----------------------------

    def shared_secrets(self) -> dict[str, str]:
        """The secrets every instance shares: from the environment, or generated once here."""
        from cryptography.fernet import Fernet

        path = self.run_dir / "secrets.env"
        stored: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                name, _, value = line.partition("=")
                if name in SHARED_SECRETS and value:
                    stored[name] = value
        makers = {
            "IDP_SECRET_KEY": lambda: secrets.token_hex(32),
            "IDP_KEY_ENCRYPTION_KEY": lambda: Fernet.generate_key().decode(),
            "IDP_PAIRWISE_SECRET": lambda: secrets.token_hex(32),
        }
        values = {}
        kept = {}  # only what was generated here is written down, never a value from outside
        for name in SHARED_SECRETS:
            if os.environ.get(name):
                values[name] = os.environ[name]
            else:
                values[name] = kept[name] = stored.get(name) or makers[name]()
        if kept and kept != stored:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write("".join(f"{k}={v}\n" for k, v in kept.items()))
        return values

    def environment(self, instance: Instance | None = None) -> dict[str, str]:
        """The environment of an `idp` command or gunicorn instance of this stack."""
        env = dict(os.environ)
        env.update(self.shared_secrets())
        env.update(
            {
                "IDP_DATABASE_URL": self.database_url,
                "IDP_REDIS_URL": self.redis_url,
                "IDP_ISSUER": self.issuer,
                # nginx is one proxy; a TLS terminator in front of it is one more (set it).
                "IDP_PROXY_COUNT": os.environ.get("IDP_PROXY_COUNT", "1"),
                "IDP_DEPARTMENTS_FILE": "",
                "IDP_INSTANCE_PATH": str(self.run_dir / "operator"),
            }
        )
        env.update(self.settings_env)
        # Never the development pages (the mail outbox, the demo codes): start() refuses a
        # request for them, and this keeps a config file's dev_pages = true from turning them on.
        env["IDP_DEV_PAGES"] = "false"
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if instance is not None:
            metrics_dir = instance.instance_path / "prometheus"
            env.update(
                {
                    "IDP_INSTANCE_PATH": str(instance.instance_path),
                    "IDP_INSTANCE_NAME": instance.name,
                    "IDP_BIND": f"127.0.0.1:{instance.port}",
                    "IDP_WORKERS": str(self.workers),
                    "IDP_WORKER_THREADS": str(self.threads),
                    "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                }
            )
        return env

    def idp(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        """Run an `idp` command (migrate, verify the audit chain...) against this stack's data."""
        result = subprocess.run(  # noqa: S603 - fixed commands, no shell
            [sys.executable, "-m", "idp.cli", *args],
            env=self.environment(),
            capture_output=True,
            text=True,
            **kw,
        )
        if check and result.returncode != 0:
            raise StackError(f"`idp {' '.join(args)}` failed: {result.stderr.strip()[-2000:]}")
        return result

    def local_app(self):
        """An app in this process on the stack's database and secrets, without a background
        worker: for setting up data (the benchmark's citizens, a test's departments)."""

        shared = self.shared_secrets()
        return create_app(
            load_settings(
                config_file=os.devnull,
                database_url=self.database_url,
                redis_url=self.redis_url,
                issuer=self.issuer,
                instance_path=str(self.run_dir / "local"),
                departments_file="",
                secret_key=shared["IDP_SECRET_KEY"],
                key_encryption_key=shared["IDP_KEY_ENCRYPTION_KEY"],
                pairwise_secret=shared["IDP_PAIRWISE_SECRET"],
                background_worker=False,
                log_level="WARNING",
            )
        )

    # -- starting and stopping ----------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> ProductionStack:
        """Migrate once, start every instance and nginx, and wait until all are ready."""
        if not Path(NGINX).exists():
            raise StackError("nginx is not installed: `make nginx` installs Debian's package")
        refuse_dev_pages({**os.environ, **self.settings_env})
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, *(i.port for i in self.instances)):
            if port_in_use(self.host if port == self.port else "127.0.0.1", port):
                raise StackError(
                    f"port {port} is in use (another `make run-prod` or benchmark still running?)"
                )
        ensure_postgres_database(self.database_url)
        check_redis(self.redis_url)
        if self.wsgi_app == "idp.wsgi:app":
            self.idp("prepare")
        try:
            for instance in self.instances:
                self._start_instance(instance)
            self._start_nginx()
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _output(self, name: str):
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child

    def _start_instance(self, instance: Instance) -> None:
        instance.instance_path.mkdir(parents=True, exist_ok=True)
        metrics_dir = instance.instance_path / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)  # a new start counts from zero
        metrics_dir.mkdir()
        output = self._output(instance.name)
        environment = self.environment(instance)
        instance.process = subprocess.Popen(  # noqa: S603
            server_command(self.wsgi_app, environment),
            env=environment,
            cwd=Path(__file__).resolve().parents[2],  # the project: bench's app imports too
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )

    def nginx_conf(self) -> str:
        """nginx's configuration for this stack."""
        servers = "\n".join(f"        server 127.0.0.1:{i.port};" for i in self.instances)
        extra = (
            "            add_header X-IdP-Upstream $upstream_addr always;"
            if self.show_upstream
            else ""
        )
        issuer_host = urlsplit(self.issuer).netloc
        if not re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?", issuer_host):
            raise StackError(f"the issuer {self.issuer} does not name a host nginx can send")
        hsts = ""
        if self.issuer.startswith("https://"):
            # RFC 6797: the header the IdP adds too (idp/security/web.py), once, on every
            # response, nginx's own errors included.
            hsts = (
                "            proxy_hide_header Strict-Transport-Security;\n"
                f'            add_header Strict-Transport-Security "{HSTS_VALUE}" always;\n'
            )
        return NGINX_CONF.format(
            issuer_host=issuer_host,
            hsts=hsts,
            nginx_workers=self.nginx_workers,
            run_dir=self.run_dir,
            upstream_servers=servers,
            host=self.host,
            port=self.port,
            extra_location=extra,
        )

    def _start_nginx(self) -> None:
        (self.run_dir / "nginx-temp").mkdir(exist_ok=True)
        conf = self.run_dir / "nginx.conf"
        conf.write_text(self.nginx_conf())
        test = subprocess.run(  # noqa: S603
            [NGINX, "-t", "-q", "-p", str(self.run_dir), "-c", str(conf)],
            capture_output=True,
            text=True,
        )
        if test.returncode != 0:
            raise StackError(f"nginx refused its configuration: {test.stderr.strip()}")
        output = self._output("nginx")
        self.nginx = subprocess.Popen(  # noqa: S603
            [NGINX, "-p", str(self.run_dir), "-c", str(conf), "-g", "daemon off;"],
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float) -> None:
        """Wait until every instance and the load balancer answer /readyz with 200."""
        # Real elapsed time (processes starting), not idp.clock.
        deadline = time.monotonic() + timeout
        targets = [(i.name, i.url, i.process) for i in self.instances]
        targets.append(("nginx", self.issuer_url(), self.nginx))
        for name, base, process in targets:
            last = "no answer yet"
            while True:
                if process is not None and process.poll() is not None:
                    raise StackError(f"{name} stopped while starting (exit {process.returncode})")
                try:
                    response = httpx.get(base + "/readyz", timeout=2.0)
                    if response.status_code == 200:
                        break
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    last = str(exc) or type(exc).__name__
                if time.monotonic() > deadline:
                    raise StackError(f"{name} was not ready after {timeout:.0f} s ({last})")
                time.sleep(0.2)

    def issuer_url(self) -> str:
        """The load balancer's address on this machine (the issuer may name it differently)."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 20.0) -> None:
        """Stop nginx and every instance gracefully (SIGKILL after the timeout)."""
        # A second Ctrl-C (or SIGTERM) must not cut the cleanup short and leave processes behind.
        stoppers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = (
            {sig: signal.signal(sig, signal.SIG_IGN) for sig in stoppers} if main_thread else {}
        )
        try:
            self._stop(timeout)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, timeout: float) -> None:
        processes = [self.nginx] + [i.process for i in self.instances]
        for process in processes:
            if process is not None and process.poll() is None:
                # SIGQUIT is nginx's graceful stop; SIGTERM is gunicorn's.
                sig = signal.SIGQUIT if process is self.nginx else signal.SIGTERM
                process.send_signal(sig)
        deadline = time.monotonic() + timeout
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def worker_pids(self) -> list[int]:
        """The process ids of every gunicorn worker (children of the instances' masters)."""
        pids = []
        for instance in self.instances:
            if instance.process is None:
                continue
            children = Path(f"/proc/{instance.process.pid}/task/{instance.process.pid}/children")
            if children.exists():
                pids += [int(p) for p in children.read_text().split()]
        return pids

    def __enter__(self) -> ProductionStack:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


# -- which WSGI server serves an instance (IDP_SERVER; `python -m bench.run --servers`) ---------

SERVERS = ("gunicorn-sync", "gunicorn-gthread", "granian")
# The best on the benchmark (bench/NOTES.md): a sync worker waiting on PostgreSQL leaves the CPU
# to another process, where threads in one process contend for its interpreter lock.
DEFAULT_SERVER = "gunicorn-sync"
# Under granian the IdP's app is built, and its background worker started, in each worker process
# (gunicorn does the same in gunicorn_conf.post_worker_init).
GRANIAN_FACTORIES = {"idp.wsgi:app": "idp.operations.granian_app:create"}


def server_command(wsgi_app: str, environment: Mapping[str, str]) -> list[str]:
    """The command that serves wsgi_app for one instance on IDP_BIND with IDP_WORKERS processes
    (IDP_WORKER_THREADS threads each): IDP_SERVER chooses gunicorn with sync workers (the
    default), gunicorn with gthread workers, or granian (a Rust HTTP server, `pip install
    granian`)."""
    server = environment.get("IDP_SERVER") or DEFAULT_SERVER
    if server not in SERVERS:
        raise StackError(f"IDP_SERVER={server} is not one of {', '.join(SERVERS)}")
    if server == "granian":
        host, _, port = environment["IDP_BIND"].rpartition(":")
        factory = GRANIAN_FACTORIES.get(wsgi_app)
        return [
            sys.executable, "-m", "granian", "--interface", "wsgi", "--host", host,
            "--port", port, "--workers", environment["IDP_WORKERS"],
            "--blocking-threads", environment.get("IDP_WORKER_THREADS", "1"),
            "--no-access-log", "--log-level", "warning",
            *(["--factory", factory] if factory else [wsgi_app]),
        ]  # fmt: skip
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF)]
    if server == "gunicorn-gthread":
        command += ["--worker-class", "gthread"]
    return [*command, wsgi_app]


def refuse_dev_pages(environment: Mapping[str, str]) -> None:
    """StackError when the environment asks for the development pages, which show every
    email's one-time code and the demo accounts' authenticator codes to anyone."""

    raw = environment.get("IDP_DEV_PAGES", "")
    try:
        wanted = bool(raw) and _coerce("dev_pages", raw, False)
    except SettingsError:
        wanted = True  # unreadable: not a clear "off"
    if wanted:
        raise StackError(
            f"IDP_DEV_PAGES={raw} asks for the development pages (the mail outbox and the demo "
            "authenticator codes), which run-prod never serves: unset IDP_DEV_PAGES"
        )


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on host:port."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database named in url if it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    if parts.scheme not in {"postgresql", "postgres", "postgresql+psycopg"}:
        raise StackError(f"the production stack runs on PostgreSQL, not {parts.scheme or url!r}")
    name = parts.path.lstrip("/")
    if not name:
        raise StackError("IDP_DATABASE_URL names no database")
    plain = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    try:
        with psycopg.connect(plain, connect_timeout=5, autocommit=True) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        where = parts.hostname or "the local socket"
        raise StackError(f"PostgreSQL at {where} cannot be used: {exc}".strip()) from None


def check_redis(url: str) -> None:
    """Redis answers at url, or a StackError naming it."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except (redis.RedisError, ValueError) as exc:
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else "its socket"
        raise StackError(f"Redis at {where} cannot be used: {type(exc).__name__}") from None

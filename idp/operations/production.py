"""The production way to run the IdP on one machine: `make run-prod` (``idp run-prod``).

Two separate IdP instances, each a WSGI server's main process with several worker processes
(granian by default, gunicorn on request: IDP_SERVER), on their own loopback ports and instance
folders, behind nginx (Debian's package) balancing round-robin, all on one PostgreSQL database
and one Redis. Nothing that matters lives in one process: sessions,
journeys, codes, keys and the audit chain are in PostgreSQL, throttling counters in Redis. So a
sign-in may begin on one instance and finish on the other, and either may be stopped.

The same class starts the stack for the tests of this path (tests/production/) and for the
benchmark (bench/), so what is measured and tested is what `make run-prod` runs.
"""

from __future__ import annotations

import contextlib
import os
import pwd
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
SHARED_SECRETS = (
    "IDP_SECRET_KEY",
    "IDP_KEY_ENCRYPTION_KEY",
    "IDP_PAIRWISE_SECRET",
    "IDP_IDENTITY_ENCRYPTION_KEY",
)


class StackError(RuntimeError):
    """The production stack could not be started; the message says which part and why."""


NGINX_CONF = """\
# Written by idp.operations.production for this run; edit idp/operations/production.py,
# not this file.
{user}worker_processes {nginx_workers};
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
    # Discovery and the JWKS: one document for everyone, kept here (a few KiB each).
    proxy_cache_path "{run_dir}/nginx-cache" levels=1 keys_zone=idp_documents:1m max_size=1m
                     inactive=1h use_temp_path=off;

    upstream idp_instances {{
        # Round-robin (nginx's default) over the separate IdP instances. A failed attempt
        # (refused, reset, timed out) counts against an instance, and {max_fails} take it out
        # of the rotation for {fail_timeout}. nginx forgets the count only after a success more
        # than {fail_timeout} after the last failure, so failures a second apart add up. A
        # worker that dies costs each request it had in hand one failed attempt (one per
        # thread) while its siblings go on serving and it is replaced; taking a live instance
        # out wrongly sends everything to the other, and once both are out nginx answers 502
        # to everyone. Leaving a dead instance in costs each request sent to it only a refused
        # connection, retried on the other one. So it takes many failures: 3 took both
        # instances out when a busy worker of each was killed every second (the production
        # tests; nginx's default, 1 failure for 10 s, emptied an instance for 10 s per kill).
{upstream_servers}
        keepalive 64;
    }}

    server {{
        listen {host}:{port} backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        # The instances answer as the issuer whatever Host the client sent; say so anyway.
        proxy_set_header Host "{issuer_host}";
        # The instances trust exactly one proxy (IDP_PROXY_COUNT=1): this one.
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        # A request that could not reach an instance (refused, reset, timed out) is sent to the
        # other one. Not a POST once sent (nginx's default without non_idempotent): the instance
        # may have acted on it before it died, and a second try would redeem a code twice
        # (invalid_grant, and RFC 6749 4.1.2 revokes what the first try issued) or count a
        # password twice. Not on the IdP's 503 (http_503) either: the instances share
        # PostgreSQL and Redis, so the other would fail alike, and the failures would take both
        # out of the rotation, turning the documented 503 into nginx's own 502.
        proxy_next_upstream error timeout;
        proxy_connect_timeout 2s;
        proxy_read_timeout 35s;

        # Discovery and the JWKS are answered from nginx's cache: the IdP's processes see one
        # request per max-age. No proxy_cache_valid: nginx keeps exactly what the IdP's
        # Cache-Control allows, for as long as it allows (RFC 9111), and never an error (the
        # IdP marks those no-store). A key rotation shows within the JWKS max-age (see
        # idp/oidc/jwks.py); the cache is emptied at each start (a new release's metadata).
        # The IdP ignores the query string and Host on these paths: neither splits the cache
        # (a random query string must not reach the IdP's processes every time).
        proxy_cache_key $uri;
        # One request fetches a missing or expired document, the others wait for it or are
        # answered from the expired copy while it is refreshed in the background.
        proxy_cache_lock on;
        proxy_cache_use_stale updating;
        proxy_cache_background_update on;
        # Refresh with If-None-Match: the IdP answers 304 when nothing changed.
        proxy_cache_revalidate on;

        # add_header in a location replaces every add_header above it: each location has all.
        location = /.well-known/openid-configuration {{
            proxy_pass http://idp_instances;
            proxy_cache idp_documents;
            add_header X-Cache-Status $upstream_cache_status always;
{headers}        }}
        location = /jwks.json {{
            proxy_pass http://idp_instances;
            proxy_cache idp_documents;
            add_header X-Cache-Status $upstream_cache_status always;
{headers}        }}
        location / {{
            proxy_pass http://idp_instances;
{headers}        }}
    }}
}}
"""

# nginx's passive health check of the instances (see NGINX_CONF).
MAX_FAILS = 10
FAIL_TIMEOUT = "1s"
# A process that ran this long before it died is restarted at once; one that dies sooner after
# each start waits 1, 2, 4... up to RESTART_MAX_DELAY seconds, so a crash loop (PostgreSQL
# gone, a broken release) does not spin.
SETTLED_AFTER = 60.0
RESTART_MAX_DELAY = 30.0
# Workers left behind by a main process that was killed (SIGKILL) finish their requests this
# long at most (gunicorn_conf.graceful_timeout, GRANIAN_KILL_TIMEOUT) before they are killed.
ORPHAN_GRACE = 20.0


@dataclass
class Restarts:
    """When a process that died is started again: at once after a long run, then after 1, 2,
    4... up to RESTART_MAX_DELAY seconds while it keeps dying soon after it starts."""

    started_at: float = 0.0
    in_a_row: int = 0
    due: float | None = None
    count: int = 0

    def started(self) -> None:
        """The process was (re)started now."""
        self.started_at = time.monotonic()
        self.due = None

    def died(self) -> float:
        """Schedule the restart of a process found dead now; the delay in seconds."""
        now = time.monotonic()
        if now - self.started_at >= SETTLED_AFTER:
            self.in_a_row = 0
        delay = 0.0 if self.in_a_row == 0 else min(RESTART_MAX_DELAY, 2.0 ** (self.in_a_row - 1))
        self.in_a_row += 1
        self.count += 1
        self.due = now + delay
        return delay


@dataclass
class Instance:
    """One IdP instance: a WSGI server's main process and its workers on a loopback port."""

    name: str
    port: int
    instance_path: Path
    process: subprocess.Popen | None = None
    restarts: Restarts = field(default_factory=Restarts)
    # The process group of a master that died, while workers it left behind may still run.
    orphans: int | None = None
    orphans_deadline: float = 0.0

    @property
    def url(self) -> str:
        """The instance's own address, bypassing the load balancer (operators and tests)."""
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ProductionStack:
    """nginx in front of several IdP instances (granian or gunicorn) on PostgreSQL and Redis."""

    database_url: str
    redis_url: str
    run_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    instance_ports: tuple[int, ...] = (8101, 8102)
    workers: int = 2
    # Threads per worker process; 0: the server's default (DEFAULT_THREADS).
    threads: int = 0
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
    nginx_restarts: Restarts = field(default_factory=Restarts)
    # Set by stop(): the supervisor restarts nothing from then on.
    stopping: threading.Event = field(default_factory=threading.Event)
    _supervision: threading.Lock = field(default_factory=threading.Lock)

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
            "IDP_IDENTITY_ENCRYPTION_KEY": lambda: Fernet.generate_key().decode(),
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
        """The environment of an `idp` command or server instance of this stack."""
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
                    "IDP_WORKER_THREADS": str(self.worker_threads()),
                    "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
                }
            )
        return env

    def server(self) -> str:
        """The WSGI server of this stack's instances (IDP_SERVER, here or in settings_env)."""
        return chosen_server({**os.environ, **self.settings_env})

    def worker_threads(self) -> int:
        """Threads per worker process: as asked, or the server's default."""
        return self.threads or DEFAULT_THREADS[self.server()]

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
                identity_encryption_key=shared["IDP_IDENTITY_ENCRYPTION_KEY"],
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
        self.stopping.clear()
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
        instance.restarts.started()

    def nginx_conf(self) -> str:
        """nginx's configuration for this stack."""
        servers = "\n".join(
            f"        server 127.0.0.1:{i.port} max_fails={MAX_FAILS} fail_timeout={FAIL_TIMEOUT};"
            for i in self.instances
        )
        issuer_host = urlsplit(self.issuer).netloc
        if not re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?", issuer_host):
            raise StackError(f"the issuer {self.issuer} does not name a host nginx can send")
        headers = ""
        if self.issuer.startswith("https://"):
            # RFC 6797: the header the IdP adds too (idp/security/web.py), once, on every
            # response, nginx's own errors included.
            headers += (
                "            proxy_hide_header Strict-Transport-Security;\n"
                f'            add_header Strict-Transport-Security "{HSTS_VALUE}" always;\n'
            )
        if self.show_upstream:
            headers += "            add_header X-IdP-Upstream $upstream_addr always;\n"
        # Started by root, nginx would run its workers as "nobody", who may not open this run's
        # folder (its cache); they run as the IdP's processes do, as the user who started it.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        return NGINX_CONF.format(
            user=user,
            nginx_workers=self.nginx_workers,
            run_dir=self.run_dir,
            upstream_servers=servers,
            max_fails=MAX_FAILS,
            fail_timeout=FAIL_TIMEOUT,
            host=self.host,
            port=self.port,
            issuer_host=issuer_host,
            headers=headers,
        )

    def _start_nginx(self) -> None:
        (self.run_dir / "nginx-temp").mkdir(exist_ok=True)
        # A new start may be a new release: no document of the one before is served.
        shutil.rmtree(self.run_dir / "nginx-cache", ignore_errors=True)
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
        self.nginx_restarts.started()

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

    # -- supervision: what `idp run-prod` does while it runs ----------------------------------

    def supervise(self, say=print, interval: float = 0.2) -> None:
        """Keep every instance and nginx running until stop(): one that dies (a crash, an
        operator's or the kernel's kill) is started again, with a back-off, while the others go
        on serving; nginx sends the requests the dead one cannot take to the others."""
        while not self.stopping.wait(interval):
            self.look_after(say)

    def look_after(self, say=print) -> None:
        """One round of supervision: notice deaths, restart what is due."""
        with self._supervision:
            if self.stopping.is_set():
                return
            for instance in self.instances:
                self._look_after_instance(instance, say)
            self._look_after_nginx(say)

    def _look_after_instance(self, instance: Instance, say) -> None:
        process = instance.process
        if process is not None and process.poll() is not None:
            # Workers of a killed master go on holding the port: ask them to finish and go.
            instance.orphans = process.pid
            instance.orphans_deadline = time.monotonic() + ORPHAN_GRACE
            _signal_group(process.pid, signal.SIGTERM)
            instance.process = None
            delay = instance.restarts.died()
            say(
                f"{instance.name} (pid {process.pid}) stopped ({exit_reason(process.returncode)}); "
                f"restarting it in {delay:.0f} s while the others serve"
            )
        if instance.process is not None or time.monotonic() < (instance.restarts.due or 0):
            return
        if instance.orphans is not None:
            if _group_alive(instance.orphans) and time.monotonic() < instance.orphans_deadline:
                return  # its old workers are finishing their requests and still hold the port
            _signal_group(instance.orphans, signal.SIGKILL)
            instance.orphans = None
        try:
            self._start_instance(instance)
        except OSError as exc:
            delay = instance.restarts.died()
            say(f"{instance.name} could not be started ({exc}); trying again in {delay:.0f} s")
            return
        say(f"{instance.name} started again (pid {instance.process.pid})")

    def _look_after_nginx(self, say) -> None:
        process = self.nginx
        if process is not None and process.poll() is not None:
            # Its workers outlive a killed master and hold the port: they go first.
            _signal_group(process.pid, signal.SIGKILL)
            self.nginx = None
            delay = self.nginx_restarts.died()
            say(
                f"nginx (pid {process.pid}) stopped ({exit_reason(process.returncode)}); "
                f"restarting it in {delay:.0f} s"
            )
        if self.nginx is None and time.monotonic() >= (self.nginx_restarts.due or 0):
            try:
                self._start_nginx()
            except (OSError, StackError) as exc:
                delay = self.nginx_restarts.died()
                say(f"nginx could not be started ({exc}); trying again in {delay:.0f} s")
                return
            say(f"nginx started again (pid {self.nginx.pid})")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop nginx and every instance gracefully (SIGKILL after the timeout)."""
        # A second Ctrl-C (or SIGTERM) must not cut the cleanup short and leave processes behind.
        stoppers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        main_thread = threading.current_thread() is threading.main_thread()
        previous = (
            {sig: signal.signal(sig, signal.SIG_IGN) for sig in stoppers} if main_thread else {}
        )
        self.stopping.set()
        try:
            with self._supervision:  # no restart from here on
                self._stop(timeout)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, timeout: float) -> None:
        for instance in self.instances:
            if instance.orphans is not None:
                _signal_group(instance.orphans, signal.SIGTERM)
        processes = [self.nginx] + [i.process for i in self.instances]
        for process in processes:
            if process is not None and process.poll() is None:
                # SIGQUIT is nginx's graceful stop; SIGTERM is gunicorn's and granian's.
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
        """The process ids of every worker (children of the instances' main processes)."""
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


def exit_reason(returncode: int | None) -> str:
    """How a process ended, for the launcher's log: "killed by SIGKILL", "exit 3"."""
    if returncode is not None and returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit {returncode}"


def _signal_group(group: int, sig: signal.Signals) -> None:
    """Signal every process left in a process group (none left is fine)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _group_alive(group: int) -> bool:
    """Whether a process of the group still runs."""
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


# -- which WSGI server serves an instance (IDP_SERVER; `python -m bench.run --servers`) ---------

SERVERS = ("granian", "gunicorn-sync", "gunicorn-gthread")
# The best on the benchmark (bench/NOTES.md "Server stack"): as many journeys a second as
# gunicorn's best shape and more refreshes, in about the same memory; launched as below, a killed
# worker costs only the requests it was serving, as under gunicorn.
DEFAULT_SERVER = "granian"
# Threads per worker process when none are asked for: granian's blocking threads (two workers of
# two per instance: one may restart while the other serves), gunicorn gthread's, sync's one.
DEFAULT_THREADS = {"granian": 2, "gunicorn-sync": 1, "gunicorn-gthread": 4}
# Under granian the IdP's app is built, and its background worker started, in each worker process
# (gunicorn does the same in gunicorn_conf.post_worker_init).
GRANIAN_FACTORIES = {"idp.wsgi:app": "idp.operations.granian_app:create"}
# Like gunicorn_conf.graceful_timeout: workers that have not finished by then are killed.
GRANIAN_KILL_TIMEOUT = "20"


def chosen_server(environment: Mapping[str, str]) -> str:
    """The WSGI server IDP_SERVER names (the default when unset), or a StackError."""
    server = environment.get("IDP_SERVER") or DEFAULT_SERVER
    if server not in SERVERS:
        raise StackError(f"IDP_SERVER={server} is not one of {', '.join(SERVERS)}")
    return server


def server_command(wsgi_app: str, environment: Mapping[str, str]) -> list[str]:
    """The command that serves wsgi_app for one instance on IDP_BIND with IDP_WORKERS processes
    (IDP_WORKER_THREADS threads each): IDP_SERVER chooses granian (a Rust HTTP server, the
    default), gunicorn with sync workers, or gunicorn with gthread workers."""
    server = chosen_server(environment)
    if server == "granian":
        host, _, port = environment["IDP_BIND"].rpartition(":")
        threads = environment.get("IDP_WORKER_THREADS") or str(DEFAULT_THREADS[server])
        factory = GRANIAN_FACTORIES.get(wsgi_app)
        return [
            # granian's command, with one listening socket for all workers (granian_app.py).
            sys.executable, "-m", "idp.operations.granian_app", "--interface", "wsgi",
            "--host", host, "--port", port, "--workers", environment["IDP_WORKERS"],
            "--blocking-threads", threads,
            # A worker takes only the connections its threads can serve now (gunicorn's workers
            # do the same); the others wait in the shared socket's queue for a free worker. So
            # a worker that dies takes only its requests in hand with it. No keep-alive: a
            # worker holding nginx's idle connections would leave the queued ones waiting.
            "--backpressure", threads, "--no-http1-keep-alive",
            # A worker that dies is replaced at once (granian's default stops the whole
            # instance). One dying again within 5.5 s of its replacement stops the instance,
            # which run-prod then starts again (ProductionStack.supervise).
            "--respawn-failed-workers", "--workers-kill-timeout", GRANIAN_KILL_TIMEOUT,
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

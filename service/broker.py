"""A real, local, single-node Apache Kafka broker (KRaft mode, loopback only).

:class:`LocalBroker` runs the genuine Apache Kafka server (``kafka.Kafka``)
from its jars. The jars are fetched once with the ordinary Maven client
(``mvn dependency:copy-dependencies`` over a small generated ``pom.xml``) into
a cache shared by every broker home, ``~/.cache/crowdguard/kafka-<version>/libs``
by default. Nothing is downloaded at import time.

A broker home holds everything that belongs to one broker::

    <home>/server.properties   generated on every start
    <home>/log4j.properties    broker logging goes to <home>/logs/server.log
    <home>/broker.pid          pid of the running JVM (removed by stop)
    <home>/data/               the Kafka log dir (topics, offsets, KRaft metadata)
    <home>/logs/server.log     the broker's log
    <home>/logs/stdout.log     whatever the JVM writes to stdout/stderr

The broker runs detached in its own process session, so ``start`` returns and
a later ``stop`` (from any process) finds it through the pid file.

Example::

    broker = LocalBroker(Path("/tmp/kafka-home"))
    bootstrap = broker.start()      # "127.0.0.1:9092"
    ...
    broker.stop()
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from service.errors import BrokerError

__all__ = ["DEFAULT_KAFKA_VERSION", "BrokerStatus", "LocalBroker", "free_port"]

DEFAULT_KAFKA_VERSION = "3.9.1"

logger = logging.getLogger(__name__)

_SCALA_VERSION = "2.13"
_RELOAD4J_VERSION = "1.2.25"
_SLF4J_VERSION = "1.7.36"  # the slf4j-api line Kafka 3.9 is built against
_DEPENDENCY_PLUGIN_VERSION = "3.8.1"
_NODE_ID = 1
_JVM_HEAP = ("-Xmx512m", "-Xms256m")
_MIN_JAVA = 11
_STOP_KILL_GRACE_S = 10.0
_MAVEN_INSTALL_HINT = "install Apache Maven (e.g. `apt-get install maven`) or pass mvn=<path>"
_JAVA_INSTALL_HINT = ("install a Java runtime 11 or newer (e.g. `apt-get install "
                      "openjdk-17-jre-headless`) or pass java=<path>")


@dataclass(frozen=True)
class BrokerStatus:
    """What :meth:`LocalBroker.status` reports."""

    running: bool
    pid: int | None
    bootstrap: str
    home: Path
    log_path: Path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is unused right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """One single-node KRaft Apache Kafka broker living in ``home``.

    ``port`` is the client (PLAINTEXT) port and ``controller_port`` the KRaft
    controller port, both bound to 127.0.0.1. ``partitions`` is the broker's
    ``num.partitions`` (used for auto-created topics). ``cache_dir`` holds the
    Kafka jars and may be shared by many homes. ``java``/``mvn`` name the
    executables (a bare name is looked up on PATH). With ``progress`` a short
    line goes to stderr when jars have to be fetched.
    """

    def __init__(self, home: Path, *, port: int = 9092, controller_port: int = 9093,
                 version: str = DEFAULT_KAFKA_VERSION, partitions: int = 4,
                 java: str = "java", mvn: str = "mvn", progress: bool = True,
                 cache_dir: Path | None = None) -> None:
        if port == controller_port:
            raise BrokerError(f"port and controller_port must differ (both are {port})")
        for name, value in (("port", port), ("controller_port", controller_port)):
            if not 0 < value < 65536:
                raise BrokerError(f"{name} must be between 1 and 65535, got {value}")
        if partitions < 1:
            raise BrokerError(f"partitions must be at least 1, got {partitions}")
        if not re.fullmatch(r"[0-9A-Za-z.\-]+", version):
            raise BrokerError(f"not a Kafka version: {version!r}")
        self.home = Path(home).expanduser().resolve()
        self.port = port
        self.controller_port = controller_port
        self.version = version
        self.partitions = partitions
        self.java = java
        self.mvn = mvn
        self.progress = progress
        self.cache_dir = (Path(cache_dir) if cache_dir is not None
                          else Path.home() / ".cache" / "crowdguard").expanduser().resolve()
        self._proc: subprocess.Popen[bytes] | None = None
        self._java_checked: str | None = None

    # -- paths ---------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """The bootstrap address clients use: ``"127.0.0.1:<port>"``."""
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        """The Kafka log dir (topics and KRaft metadata)."""
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        """The broker's own log file."""
        return self.home / "logs" / "server.log"

    @property
    def libs_dir(self) -> Path:
        """Where the Kafka jars of ``version`` are cached."""
        return self.cache_dir / f"kafka-{self.version}" / "libs"

    @property
    def _pid_path(self) -> Path:
        return self.home / "broker.pid"

    @property
    def _props_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def _stdout_path(self) -> Path:
        return self.home / "logs" / "stdout.log"

    # -- jars ------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Make sure the Kafka jars are cached; fetch them with ``mvn`` once.

        Returns the libs directory. Raises :class:`BrokerError` if ``mvn`` is
        missing or the fetch fails.
        """
        libs = self.libs_dir
        marker = libs.parent / ".complete"
        if marker.is_file() and self._jars_look_complete(libs):
            return libs
        mvn = shutil.which(self.mvn)
        if mvn is None:
            raise BrokerError(f"Apache Maven executable {self.mvn!r} not found, needed once to "
                              f"fetch the Apache Kafka {self.version} jars: {_MAVEN_INSTALL_HINT}")
        libs.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(libs.parent / ".lock", timeout=1800.0, what="the Kafka jar cache"):
            if marker.is_file() and self._jars_look_complete(libs):
                return libs  # another process fetched them meanwhile
            if self.progress:
                print(f"crowdguard: fetching Apache Kafka {self.version} jars with mvn into "
                      f"{libs} (one time)...", file=sys.stderr, flush=True)
            started = time.monotonic()
            pom = libs.parent / "pom.xml"
            pom.write_text(_pom_xml(self.version), encoding="utf-8")
            staging = libs.parent / "libs.partial"
            shutil.rmtree(staging, ignore_errors=True)
            cmd = [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
                   f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
            logger.info("broker.fetch_jars version=%s libs=%s", self.version, libs)
            try:
                done = subprocess.run(cmd, cwd=libs.parent, stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=1800)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise BrokerError(f"could not run {self.mvn!r} to fetch the Kafka jars: {exc}; "
                                  f"{_MAVEN_INSTALL_HINT}") from exc
            if done.returncode != 0 or not self._jars_look_complete(staging):
                output = (done.stdout + done.stderr).decode("utf-8", "replace")
                raise BrokerError(
                    f"mvn failed to fetch Apache Kafka {self.version} jars (exit "
                    f"{done.returncode}); check the version exists and Maven can reach its "
                    f"repository. mvn output (tail):\n{_tail_text(output, 30)}")
            shutil.rmtree(libs, ignore_errors=True)
            staging.rename(libs)
            marker.write_text(f"kafka {self.version}\n", encoding="utf-8")
            if self.progress:
                print(f"crowdguard: Kafka jars ready ({len(list(libs.glob('*.jar')))} jars, "
                      f"{time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
        return libs

    def _jars_look_complete(self, libs: Path) -> bool:
        return ((libs / f"kafka_{_SCALA_VERSION}-{self.version}.jar").is_file()
                and (libs / f"kafka-clients-{self.version}.jar").is_file()
                and any(libs.glob("slf4j-reload4j-*.jar")))

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> str:
        """Start the broker (if not running) and wait until it serves metadata.

        Idempotent: when this home's broker already runs, waits for it to be
        ready and returns the same bootstrap. Raises :class:`BrokerError` on a
        missing ``java``/``mvn``, a busy port, or a broker that does not get
        ready within ``timeout`` seconds (the message carries the log tail).
        Fetches the jars first if needed (see :meth:`ensure_jars`).
        """
        java = self._check_java()
        libs = self.ensure_jars()  # a one-time fetch does not count against ``timeout``
        deadline = time.monotonic() + timeout
        self.home.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.home / ".lock", timeout=timeout, what=f"broker home {self.home}"):
            pid = self._live_pid()
            if pid is not None:
                running_port = _configured_port(self._props_path)
                if running_port is not None and running_port != self.port:
                    raise BrokerError(
                        f"the broker in {self.home} already runs on port {running_port}, "
                        f"not {self.port}; stop it first")
                logger.info("broker.start already_running pid=%d bootstrap=%s",
                            pid, self.bootstrap)
                self._wait_ready(pid, deadline)
                return self.bootstrap
            for name, port in (("port", self.port), ("controller_port", self.controller_port)):
                # A broker that has just exited may still hold its port for a moment.
                settle = time.monotonic() + min(5.0, max(0.0, deadline - time.monotonic()))
                while _port_in_use(port) and time.monotonic() < settle:
                    time.sleep(0.2)
                if _port_in_use(port):
                    raise BrokerError(f"{name} 127.0.0.1:{port} is already in use by another "
                                      "process; pick a free port or stop that process")
            self._write_config()
            self._format_storage_if_needed(java, libs)
            pid = self._spawn(java, libs)
            logger.info("broker.spawned pid=%d bootstrap=%s home=%s",
                        pid, self.bootstrap, self.home)
            try:
                self._wait_ready(pid, deadline)
            except BrokerError:
                self._terminate(pid, 10.0)
                self._pid_path.unlink(missing_ok=True)
                raise
            logger.info("broker.ready pid=%d bootstrap=%s startup_s=%.1f", pid, self.bootstrap,
                        timeout - (deadline - time.monotonic()))
            return self.bootstrap

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the broker: SIGTERM (controlled shutdown), SIGKILL after ``timeout``.

        A no-op when it is not running; a stale pid file is removed.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.home / ".lock", timeout=timeout + 30.0,
                        what=f"broker home {self.home}"):
            pid = self._live_pid()
            if pid is None:
                self._pid_path.unlink(missing_ok=True)
                return
            self._terminate(pid, timeout)
            self._pid_path.unlink(missing_ok=True)

    def restart(self, timeout: float = 90.0) -> str:
        """Stop then start again on the same data dir (data is kept)."""
        self.stop(timeout=min(30.0, timeout))
        return self.start(timeout=timeout)

    def status(self) -> BrokerStatus:
        """Report whether this home's broker process runs, and where."""
        pid = self._live_pid()
        return BrokerStatus(running=pid is not None, pid=pid, bootstrap=self.bootstrap,
                            home=self.home, log_path=self.log_path)

    def wipe(self) -> None:
        """Stop the broker if running and delete its data dir (not the jar cache)."""
        self.stop()
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
            logger.info("broker.wiped data_dir=%s", self.data_dir)

    # -- internals -------------------------------------------------------------

    def _check_java(self) -> str:
        java = shutil.which(self.java)
        if java is None:
            raise BrokerError(f"Java executable {self.java!r} not found; the Kafka broker needs "
                              f"java: {_JAVA_INSTALL_HINT}")
        if self._java_checked == java:
            return java
        try:
            done = subprocess.run([java, "-version"], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(f"cannot run java {java!r}: {exc}; {_JAVA_INSTALL_HINT}") from exc
        text = (done.stderr + done.stdout).decode("utf-8", "replace")
        match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
        if done.returncode != 0 or match is None:
            raise BrokerError(f"java {java!r} does not work (`java -version` said: "
                              f"{text.strip()[:300]!r}); {_JAVA_INSTALL_HINT}")
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0_x" style
            major = int(match.group(2))
        if major < _MIN_JAVA:
            raise BrokerError(f"java {java!r} is version {major}; Apache Kafka {self.version} "
                              f"needs java {_MIN_JAVA}+: {_JAVA_INSTALL_HINT}")
        self._java_checked = java
        return java

    def _write_config(self) -> None:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(self._props_path, _server_properties(
            data_dir=self.data_dir, port=self.port, controller_port=self.controller_port,
            partitions=self.partitions))
        _write_atomic(self.home / "log4j.properties", _log4j_properties(self.log_path))

    def _jvm_base(self, java: str, libs: Path) -> list[str]:
        return [java, *_JVM_HEAP, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
                f"-Dkafka.logs.dir={self.log_path.parent}",
                "-cp", f"{libs}{os.sep}*"]

    def _format_storage_if_needed(self, java: str, libs: Path) -> None:
        if (self.data_dir / "meta.properties").is_file():
            return
        cluster_id = _new_cluster_id()
        cmd = [*self._jvm_base(java, libs), "kafka.tools.StorageTool", "format",
               "-t", cluster_id, "-c", str(self._props_path), "--ignore-formatted"]
        logger.info("broker.format cluster_id=%s data_dir=%s", cluster_id, self.data_dir)
        try:
            done = subprocess.run(cmd, cwd=self.home, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(
                f"formatting Kafka storage in {self.data_dir} failed: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode("utf-8", "replace")
            raise BrokerError(f"formatting Kafka storage in {self.data_dir} failed (exit "
                              f"{done.returncode}); try wipe(). Output:\n{_tail_text(output, 30)}"
                              f"\n{self._log_tail()}")

    def _spawn(self, java: str, libs: Path) -> int:
        cmd = [*self._jvm_base(java, libs), "kafka.Kafka", str(self._props_path)]
        with open(self._stdout_path, "ab") as out:
            out.write(f"\n--- starting broker {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n"
                      .encode())
            out.flush()
            try:
                proc = subprocess.Popen(cmd, cwd=self.home, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT,
                                        env=dict(os.environ), start_new_session=True,
                                        close_fds=True)
            except OSError as exc:
                raise BrokerError(f"could not start java {java!r}: {exc}; "
                                  f"{_JAVA_INSTALL_HINT}") from exc
        self._proc = proc
        _write_atomic(self._pid_path, f"{proc.pid}\n")
        return proc.pid

    def _wait_ready(self, pid: int, deadline: float) -> None:
        """Block until the broker answers a Metadata request listing itself."""
        last_error = "no answer yet"
        while True:
            if not self._is_our_broker(pid):
                raise BrokerError(f"the Kafka broker (pid {pid}) exited during startup; "
                                  f"see {self.log_path}.\n{self._log_tail()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(f"the Kafka broker (pid {pid}) was not ready on "
                                  f"{self.bootstrap} in time ({last_error}); see "
                                  f"{self.log_path}.\n{self._log_tail()}")
            try:
                brokers = _metadata_brokers("127.0.0.1", self.port, timeout=min(5.0, remaining))
            except OSError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if _NODE_ID in brokers:
                    return
                last_error = f"metadata lists brokers {sorted(brokers)}, not yet node {_NODE_ID}"
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def _terminate(self, pid: int, timeout: float) -> None:
        logger.info("broker.stop pid=%d signal=SIGTERM timeout_s=%.0f", pid, timeout)
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if self._wait_exit(pid, timeout):
            logger.info("broker.stopped pid=%d stop_s=%.1f", pid, time.monotonic() - started)
            return
        logger.warning("broker.stop pid=%d signal=SIGKILL reason=no exit after %.0fs",
                       pid, timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if not self._wait_exit(pid, _STOP_KILL_GRACE_S):
            raise BrokerError(f"the Kafka broker (pid {pid}) survived SIGKILL; stop it by hand")

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._is_our_broker(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _reap_own(self) -> bool:
        """Collect the exit status of the JVM this handle spawned; True if it exited."""
        if self._proc is None:
            return False
        if self._proc.poll() is None:
            return False
        logger.debug("broker.reaped pid=%d returncode=%s", self._proc.pid, self._proc.returncode)
        return True

    def _live_pid(self) -> int | None:
        """The pid from the pid file if that process is this home's broker."""
        self._reap_own()  # never leave an exited child of ours a zombie
        try:
            pid = int(self._pid_path.read_text(encoding="utf-8").split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if pid <= 0:
            return None
        if self._is_our_broker(pid):
            return pid
        logger.info("broker.stale_pid_file pid=%d path=%s", pid, self._pid_path)
        return None

    def _is_our_broker(self, pid: int) -> bool:
        """True if ``pid`` is alive (not a zombie) and runs this home's broker."""
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: its pid cannot be reused before we reap it.
            return not self._reap_own()
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False  # someone else's process: the pid was reused
        proc_dir = Path("/proc") / str(pid)
        if not proc_dir.is_dir():  # no procfs: reap if it is our exited child, trust kill(0)
            with contextlib.suppress(ChildProcessError, OSError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return False
            return True
        if _proc_exited(proc_dir):
            return False  # all threads gone: a zombie waiting for its parent
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            return False  # vanished meanwhile
        if not cmdline:  # exiting right now (memory already released), or a kernel thread
            return not _is_kernel_thread(proc_dir)
        return "kafka.Kafka" in cmdline and str(self._props_path) in cmdline

    def _log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.log_path, self._stdout_path):
            try:
                text = _read_tail(path, 64 * 1024)
            except OSError:
                continue
            if text.strip():
                parts.append(f"--- tail of {path} ---\n{_tail_text(text, lines)}")
        return "\n".join(parts) if parts else f"(no broker log at {self.log_path})"


# -- pure helpers -----------------------------------------------------------------


def _new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (22 chars).

    Like Kafka's own ``Uuid.randomUuid`` it never starts with ``-`` (which
    command-line parsers would take for an option) and is never all zeros.
    """
    while True:
        raw = secrets.token_bytes(16)
        text = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if not text.startswith("-") and any(raw):
            return text


def _prop_value(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n")


def _server_properties(*, data_dir: Path, port: int, controller_port: int,
                       partitions: int) -> str:
    """The broker's ``server.properties`` (single node, KRaft, loopback)."""
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": _NODE_ID,
        "controller.quorum.voters": f"{_NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": data_dir,
        "num.partitions": partitions,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
    }
    lines = ["# generated by crowdguard (service/broker.py); rewritten on every start"]
    lines += [f"{key}={_prop_value(value)}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def _log4j_properties(log_path: Path) -> str:
    """log4j 1.x (reload4j) config sending the broker's logs to ``log_path``."""
    return "\n".join([
        "# generated by crowdguard (service/broker.py)",
        "log4j.rootLogger=INFO, file",
        "log4j.appender.file=org.apache.log4j.RollingFileAppender",
        f"log4j.appender.file.File={_prop_value(log_path)}",
        "log4j.appender.file.MaxFileSize=20MB",
        "log4j.appender.file.MaxBackupIndex=3",
        "log4j.appender.file.layout=org.apache.log4j.PatternLayout",
        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n",
        "log4j.logger.kafka.request.logger=WARN",
        "log4j.logger.state.change.logger=WARN",
        "log4j.logger.kafka.authorizer.logger=WARN",
        "log4j.logger.org.apache.kafka.clients=WARN",
        "",
    ])


def _pom_xml(version: str) -> str:
    """A throwaway POM whose runtime dependencies are the Kafka broker's jars.

    It names no repository: ``mvn`` resolves from its own configuration.
    """
    deps = [("org.apache.kafka", f"kafka_{_SCALA_VERSION}", version),
            ("ch.qos.reload4j", "reload4j", _RELOAD4J_VERSION),
            ("org.slf4j", "slf4j-reload4j", _SLF4J_VERSION)]
    dep_xml = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>" for g, a, v in deps)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by crowdguard (service/broker.py): fetches the Apache Kafka broker jars -->
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.crowdguard</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dep_xml}
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>{_DEPENDENCY_PLUGIN_VERSION}</version>
      </plugin>
    </plugins>
  </build>
</project>
"""


def _configured_port(props_path: Path) -> int | None:
    """The PLAINTEXT port named in an existing ``server.properties``."""
    try:
        text = props_path.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"^listeners=.*?PLAINTEXT://[^:,]*:(\d+)", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def _proc_exited(proc_dir: Path) -> bool:
    """True if every thread of the process in ``proc_dir`` has exited (Linux procfs).

    The main thread of a JVM may show as a zombie while its other threads are
    still shutting down (and holding ports), so every task is checked.
    """
    try:
        tasks = list((proc_dir / "task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            stat = (task / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # that thread is gone
        if not stat[stat.rfind(")") + 2:].startswith(("Z", "X")):
            return False
    return True


def _is_kernel_thread(proc_dir: Path) -> bool:
    try:
        stat = (proc_dir / "stat").read_text(encoding="utf-8", errors="replace")
        flags = int(stat[stat.rfind(")") + 2:].split()[6])
    except (OSError, ValueError, IndexError):
        return False
    return bool(flags & 0x00200000)  # PF_KTHREAD


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _metadata_request(correlation_id: int) -> bytes:
    """A framed Kafka MetadataRequest v1 asking for no topics (brokers only)."""
    client_id = b"crowdguard-broker-probe"
    header = struct.pack(">hhih", 3, 1, correlation_id, len(client_id)) + client_id
    body = struct.pack(">i", 0)  # empty topic array: brokers and controller only
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def _parse_metadata_brokers(payload: bytes, correlation_id: int) -> set[int]:
    """Node ids listed in a MetadataResponse v1 payload (without the size prefix)."""
    try:
        (got_id,) = struct.unpack_from(">i", payload, 0)
        if got_id != correlation_id:
            raise OSError(errno.EPROTO, f"correlation id {got_id} != {correlation_id}")
        (count,) = struct.unpack_from(">i", payload, 4)
        offset = 8
        nodes: set[int] = set()
        for _ in range(max(count, 0)):
            node_id, host_len = struct.unpack_from(">ih", payload, offset)
            offset += 6 + max(host_len, 0)
            (_port,) = struct.unpack_from(">i", payload, offset)
            offset += 4
            (rack_len,) = struct.unpack_from(">h", payload, offset)
            offset += 2 + max(rack_len, 0)
            nodes.add(node_id)
        return nodes
    except struct.error as exc:
        raise OSError(errno.EPROTO, f"malformed metadata response: {exc}") from exc


def _metadata_brokers(host: str, port: int, timeout: float) -> set[int]:
    """Send a Metadata request; return the node ids of the brokers it lists."""
    correlation_id = secrets.randbelow(2**31 - 1)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(_metadata_request(correlation_id))
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        if not 0 < size < 16 * 1024 * 1024:
            raise OSError(errno.EPROTO, f"implausible response size {size}")
        return _parse_metadata_brokers(_recv_exact(sock, size), correlation_id)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise ConnectionResetError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_tail(path: Path, max_bytes: int) -> str:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        return fh.read().decode("utf-8", "replace")


def _tail_text(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@contextlib.contextmanager
def _file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, waiting at most ``timeout`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BrokerError(f"timed out waiting for the lock on {what} ({path}); "
                                      "is another crowdguard process busy with it?") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

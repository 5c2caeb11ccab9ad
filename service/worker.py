"""Process lifecycle: the stream worker (``crowdguard run``) and the demo (``crowdguard demo``).

``run_worker`` starts the local broker when no bootstrap is configured, loads
the model (failing fast), and runs the faust worker until SIGINT/SIGTERM, on
which faust drains the in-flight batch and commits before exiting.

``run_demo`` is the README's one-command experience: local broker, a worker
process, a replay of the bundled sample stream, and a live count of verdicts
read back from the flags topic; Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import orjson

from .errors import BrokerError, CrowdguardError
from .kafka import client_kwargs, ensure_topics
from .settings import Settings

__all__ = ["run_worker", "run_demo", "ensure_bootstrap", "SAMPLE_STREAM"]

log = logging.getLogger(__name__)

#: Invented submissions (written for this repository) used by the demo.
SAMPLE_STREAM = Path(__file__).resolve().parent / "samples" / "submissions.jsonl"


def _local_broker(settings: Settings):
    from .broker import LocalBroker

    return LocalBroker(settings.broker_home, port=settings.broker_port,
                       controller_port=settings.broker_controller_port,
                       partitions=settings.topic_partitions)


def ensure_bootstrap(settings: Settings) -> tuple[Settings, object | None]:
    """Settings with a bootstrap; the broker we started, if we had to start one."""
    if settings.kafka_bootstrap:
        return settings, None
    broker = _local_broker(settings)
    was_running = broker.status().running
    bootstrap = broker.start()
    log.info("using the local Kafka broker", extra={"bootstrap": bootstrap})
    return settings.model_copy(update={"kafka_bootstrap": bootstrap}), \
        (None if was_running else broker)


def run_worker(settings: Settings) -> int:
    """Run the stream worker in this process until it is told to stop."""
    import faust

    from .detector import Detector
    from .metrics import Metrics
    from .stream import build_app

    detector = Detector.for_settings(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings, started = ensure_bootstrap(settings)
    if settings.create_topics:
        asyncio.run(ensure_topics(settings, settings.topic_replication_factor))
    metrics = Metrics(max_worker_series=settings.max_worker_series,
                      max_task_series=settings.max_task_series,
                      min_n=settings.rate_min_submissions)
    metrics.set_model(detector.info.label, settings.device, ready=True)
    app = build_app(settings, detector, metrics)
    log.info("worker starting", extra={
        "bootstrap": settings.kafka_bootstrap, "group": settings.consumer_group,
        "topics": [settings.topic_submissions, settings.topic_flags], "model": detector.info.label,
        "device": settings.device, "batch_size": settings.batch_size, "web_port": settings.web_port})
    log.debug("settings", extra={"settings": settings.masked()})
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False, quiet=True)
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        if started is not None:
            started.stop()
    return code


# -- demo ------------------------------------------------------------------------------
def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/readyz"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CrowdguardError(f"the worker exited with code {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise CrowdguardError(f"the worker was not ready within {timeout:.0f} s ({url})")


async def _follow_flags(settings: Settings, expected: int, stop: asyncio.Event,
                        exit_when_done: bool) -> Counter:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(settings.topic_flags, bootstrap_servers=settings.kafka_bootstrap,
                                auto_offset_reset="latest", enable_auto_commit=False,
                                **client_kwargs(settings))
    await consumer.start()
    counts: Counter = Counter()
    seen: set[str] = set()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    flag = orjson.loads(rec.value)
                    if flag["submission_id"] in seen:
                        continue
                    seen.add(flag["submission_id"])
                    counts[flag["verdict"]] += 1
            line = " ".join(f"{v}={counts.get(v, 0)}" for v in ("llm", "human", "uncertain"))
            print(f"\rverdicts {len(seen)}/{expected}: {line}   ", end="", file=sys.stderr,
                  flush=True)
            if exit_when_done and len(seen) >= expected:
                break
    finally:
        await consumer.stop()
        print(file=sys.stderr)
    return counts


def run_demo(settings: Settings, *, sample: Path = SAMPLE_STREAM, fmt: str = "jsonl",
             exit_when_done: bool = False) -> int:
    """Broker + worker process + sample replay + live verdict counts, until Ctrl-C."""
    from .replay import iter_submissions, publish

    settings, started = ensure_bootstrap(settings)
    expected = sum(1 for s in iter_submissions(sample, fmt) if isinstance(s, dict))
    argv, secrets = settings.for_child()
    env = {**os.environ, **secrets}  # passed through to the child, not read here
    cmd = [sys.executable, "-m", "service.cli", "run", *argv, "--log-level", "WARNING"]
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own entry point
    stop = asyncio.Event()
    try:
        print(f"worker starting (pid {proc.pid}); loading model and joining the group...",
              file=sys.stderr)
        _wait_ready(settings.web_port, proc)
        base = f"http://127.0.0.1:{settings.web_port}"
        print(f"worker ready. flags: topic {settings.topic_flags} at {settings.kafka_bootstrap}; "
              f"metrics: {base}/metrics; health: {base}/healthz; "
              f"workers: {base}/workers/<id>", file=sys.stderr)

        async def main() -> Counter:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            follower = asyncio.create_task(_follow_flags(settings, expected, stop,
                                                         exit_when_done))
            await asyncio.sleep(1.0)
            res = await publish(sample, fmt, bootstrap=str(settings.kafka_bootstrap),
                                topic=settings.topic_submissions, rate=20.0, stamp_now=True,
                                client_kwargs=client_kwargs(settings))
            print(f"\rreplayed {res.sent} submissions from {sample.name}"
                  f"{f' ({res.skipped} rows skipped)' if res.skipped else ''}; "
                  "press Ctrl-C to stop", file=sys.stderr)
            return await follower

        counts = asyncio.run(main())
        print("final verdict counts: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())),
              file=sys.stderr)
        return 0
    except BrokerError:
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if started is not None:
            started.stop()
        print("stopped.", file=sys.stderr)

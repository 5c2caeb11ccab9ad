"""Helpers for stream tests: worker processes, producing and reading topics (real Kafka)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from service.broker import free_port
from service.settings import DEFAULT_MODEL_DIR

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Topics:
    """Unique topic names and consumer group for one test."""

    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def submissions(self) -> str:
        return f"t{self.prefix}.submissions"

    @property
    def flags(self) -> str:
        return f"t{self.prefix}.flags"

    @property
    def dead(self) -> str:
        return f"t{self.prefix}.dead-letter"

    @property
    def rates(self) -> str:
        return f"t{self.prefix}.worker-rates"

    @property
    def group(self) -> str:
        return f"g{self.prefix}"


class WorkerProc:
    """A ``crowdguard run`` process on its own web port."""

    def __init__(self, bootstrap: str, topics: Topics, tmp: Path, *, extra: list[str] | None = None,
                 model: Path = DEFAULT_MODEL_DIR) -> None:
        self.port = free_port()
        self.log_path = tmp / f"worker-{self.port}.log"
        cmd = [sys.executable, "-m", "service.cli", "run", "--kafka-bootstrap", bootstrap,
               "--topic-submissions", topics.submissions, "--topic-flags", topics.flags,
               "--topic-dead-letter", topics.dead, "--topic-worker-rates", topics.rates,
               "--consumer-group", topics.group, "--web-port", str(self.port),
               "--data-dir", str(tmp / f"faust-{self.port}"), "--model-dir", str(model),
               "--log-format", "json", "--log-library-level", "INFO",
               "--batch-window-s", "0.2", *(extra or [])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDGUARD_")}
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log,  # noqa: S603
                                     stderr=subprocess.STDOUT)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as resp:  # noqa: S310
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early ({self.proc.returncode}):\n{self.log()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-6000:]

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 90.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._log.close()


def submission(i: int, *, worker: str | None = None, task: str = "task-1", text: str | None = None,
               prefix: str = "s") -> dict:
    return {
        "submission_id": f"{prefix}-{i:05d}", "worker_id": worker or f"w-{i % 7}",
        "task_id": task,
        "text": text or (f"Answer number {i}: the people in the study who walked every day slept "
                         "a little longer and felt less tired, and nobody had any problems "
                         "from the walking, so the authors think it is a good idea."),
        "submitted_at": datetime.now(timezone.utc).isoformat(),
    }


async def produce(bootstrap: str, topic: str, values: list[bytes], *,
                  keys: list[bytes | None] | None = None, rate: float | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        futs = []
        for i, v in enumerate(values):
            futs.append(await producer.send(topic, v, key=keys[i] if keys else None))
            if rate:
                await asyncio.sleep(1 / rate)
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


def produce_sync(bootstrap: str, topic: str, values: list[bytes], **kw) -> None:
    asyncio.run(produce(bootstrap, topic, values, **kw))


def subs_bytes(subs: list[dict]) -> list[bytes]:
    return [orjson.dumps(s) for s in subs]


async def read_topic(bootstrap: str, topic: str, *, until: int, timeout: float,
                     key_of=lambda r: r.key) -> list:
    """Read ``topic`` from the beginning until ``until`` distinct keys were seen or timeout."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    records = []
    keys: set = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(keys) < until:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                for r in recs:
                    records.append(r)
                    keys.add(key_of(r))
    finally:
        await consumer.stop()
    return records


def read_sync(bootstrap: str, topic: str, *, until: int, timeout: float = 120.0) -> list:
    return asyncio.run(read_topic(bootstrap, topic, until=until, timeout=timeout))


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """Sum of the group's committed offsets over ``topic``'s partitions."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        total = 0
        for p in range(partitions):
            off = await consumer.committed(TopicPartition(topic, p))
            total += off or 0
        return total
    finally:
        await consumer.stop()

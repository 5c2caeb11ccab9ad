"""The local Apache Kafka broker, for real: start, produce, consume, restart, stop."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from service.broker import LocalBroker, free_port
from service.errors import BrokerError


async def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, want: int, timeout: float = 30.0
                   ) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got: list[tuple[bytes | None, bytes | None]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < want and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return got


def _fresh_topic() -> str:
    return f"cg-test-{uuid.uuid4().hex[:12]}"


def test_lifecycle_produce_consume_restart_stop(local_broker: LocalBroker) -> None:
    bootstrap = local_broker.bootstrap
    topic = _fresh_topic()
    asyncio.run(_produce(bootstrap, topic, b"k1", b"hello kafka"))
    assert asyncio.run(_consume(bootstrap, topic, want=1)) == [(b"k1", b"hello kafka")]

    status = local_broker.status()
    assert status.running and status.pid is not None
    assert status.bootstrap == bootstrap == f"127.0.0.1:{local_broker.port}"
    assert status.log_path.is_file()
    assert "Kafka Server started" in status.log_path.read_text(encoding="utf-8")

    assert local_broker.restart() == bootstrap
    restarted = local_broker.status()
    assert restarted.running and restarted.pid != status.pid
    assert asyncio.run(_consume(bootstrap, topic, want=1)) == [(b"k1", b"hello kafka")]

    local_broker.stop()
    stopped = local_broker.status()
    assert not stopped.running and stopped.pid is None
    assert not (local_broker.home / "broker.pid").exists()
    local_broker.stop()  # stopping a stopped broker is a no-op


def test_start_is_idempotent_and_found_by_another_handle(local_broker: LocalBroker) -> None:
    pid = local_broker.status().pid
    assert local_broker.start() == local_broker.bootstrap
    assert local_broker.status().pid == pid
    # A second handle on the same home (as another process would have) finds it.
    other = LocalBroker(local_broker.home, port=local_broker.port,
                        controller_port=local_broker.controller_port)
    assert other.status().running and other.status().pid == pid
    assert other.start() == local_broker.bootstrap
    assert other.status().pid == pid
    other.stop()
    assert not local_broker.status().running


def test_stale_pid_file_is_ignored(local_broker: LocalBroker) -> None:
    local_broker.stop()
    pid_file = local_broker.home / "broker.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a Kafka broker
    assert not local_broker.status().running
    assert local_broker.start() == local_broker.bootstrap
    assert int(pid_file.read_text()) != os.getpid()
    assert local_broker.status().running


def test_wipe_deletes_data(local_broker: LocalBroker) -> None:
    topic = _fresh_topic()
    asyncio.run(_produce(local_broker.bootstrap, topic, b"k", b"gone after wipe"))
    local_broker.wipe()
    assert not local_broker.status().running
    assert not (local_broker.home / "data").exists()
    local_broker.start()
    assert asyncio.run(_consume(local_broker.bootstrap, topic, want=1, timeout=5.0)) == []


def test_session_broker_round_trip(kafka_bootstrap: str) -> None:
    topic = _fresh_topic()
    asyncio.run(_produce(kafka_bootstrap, topic, b"s", b"session"))
    assert asyncio.run(_consume(kafka_bootstrap, topic, want=1)) == [(b"s", b"session")]


def test_missing_java_names_java(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "home", port=free_port(), controller_port=free_port(),
                         java=str(tmp_path / "no-such-dir" / "jre-binary"))
    with pytest.raises(BrokerError, match=r"(?i)java") as info:
        broker.start(timeout=10)
    assert "install" in str(info.value)
    assert not broker.status().running

"""Fixtures for integration tests that talk to a real Apache Kafka broker.

``kafka_bootstrap`` (session scope) uses ``CROWDGUARD_KAFKA_BOOTSTRAP`` when set
(an already running broker), else starts a private :class:`LocalBroker` on free
loopback ports for the session. ``local_broker`` gives a test its own started
broker (own home, own ports) that it may restart, stop or wipe.

Every test under ``tests/integration`` is marked ``integration``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.broker import LocalBroker, free_port

_HERE = Path(__file__).resolve().parent
BOOTSTRAP_ENV = "CROWDGUARD_KAFKA_BOOTSTRAP"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "integration: needs real external services (a Kafka broker, java, mvn)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def two_free_ports() -> tuple[int, int]:
    """Two distinct unused loopback ports (client port, controller port)."""
    port = free_port()
    controller_port = free_port()
    while controller_port == port:
        controller_port = free_port()
    return port, controller_port


def make_broker(home: Path) -> LocalBroker:
    """A not yet started broker in ``home`` on fresh free ports (shared jar cache)."""
    port, controller_port = two_free_ports()
    return LocalBroker(home, port=port, controller_port=controller_port)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a Kafka broker shared by the whole test session."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield external
        return
    broker = make_broker(tmp_path_factory.mktemp("kafka-session"))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture()
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A fresh private broker, started, stopped again after the test."""
    broker = make_broker(tmp_path_factory.mktemp("kafka-local"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()

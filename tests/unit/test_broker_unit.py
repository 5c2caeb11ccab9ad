"""Pure parts of service.broker: cluster ids, generated configs, the probe codec."""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import pytest

from service import broker as b
from service.errors import BrokerError


def _props(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines()
             if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def test_cluster_id_is_22_char_base64url_of_16_bytes() -> None:
    seen = set()
    for _ in range(500):
        cid = b._new_cluster_id()
        assert len(cid) == 22
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
        seen.add(cid)
    assert len(seen) == 500


def test_server_properties_single_node_kraft_loopback(tmp_path: Path) -> None:
    props = _props(b._server_properties(data_dir=tmp_path / "data", port=19092,
                                        controller_port=19093, partitions=6))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "data")
    assert props["num.partitions"] == "6"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"
    for key, value in props.items():  # loopback only
        if "://" in value:
            assert "0.0.0.0" not in value and "localhost" not in value, key


def test_log4j_writes_to_file_not_stdout(tmp_path: Path) -> None:
    text = b._log4j_properties(tmp_path / "logs" / "server.log")
    props = _props(text)
    assert props["log4j.rootLogger"] == "INFO, file"
    assert props["log4j.appender.file.File"] == str(tmp_path / "logs" / "server.log")
    assert "ConsoleAppender" not in text


def test_pom_names_dependencies_but_no_url() -> None:
    pom = b._pom_xml("3.9.1")
    assert "<artifactId>kafka_2.13</artifactId><version>3.9.1</version>" in pom
    assert "<artifactId>reload4j</artifactId>" in pom
    assert "<artifactId>slf4j-reload4j</artifactId>" in pom
    assert "http" not in pom.lower() and "repositor" not in pom.lower()


def test_default_version_and_paths(tmp_path: Path) -> None:
    broker = b.LocalBroker(tmp_path / "home", port=29092, controller_port=29093,
                           cache_dir=tmp_path / "cache")
    assert b.DEFAULT_KAFKA_VERSION == "3.9.1"
    assert broker.bootstrap == "127.0.0.1:29092"
    assert broker.ensure_jars.__doc__
    assert broker.libs_dir == (tmp_path / "cache" / "kafka-3.9.1" / "libs").resolve()
    status = broker.status()
    assert not status.running and status.pid is None
    assert status.log_path == (tmp_path / "home" / "logs" / "server.log").resolve()


def test_bad_arguments_raise_broker_error(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="differ"):
        b.LocalBroker(tmp_path, port=9092, controller_port=9092)
    with pytest.raises(BrokerError, match="partitions"):
        b.LocalBroker(tmp_path, partitions=0)
    with pytest.raises(BrokerError, match="version"):
        b.LocalBroker(tmp_path, version="3.9.1/../x")


def test_missing_mvn_names_maven(tmp_path: Path) -> None:
    broker = b.LocalBroker(tmp_path / "home", cache_dir=tmp_path / "empty-cache",
                           mvn=str(tmp_path / "no-mvn"), progress=False)
    with pytest.raises(BrokerError, match="(?i)maven"):
        broker.ensure_jars()


def test_missing_java_names_java(tmp_path: Path) -> None:
    broker = b.LocalBroker(tmp_path / "home", java=str(tmp_path / "nope"))
    with pytest.raises(BrokerError, match="(?i)java"):
        broker.start(timeout=1)


def test_stale_pid_file_reports_not_running(tmp_path: Path) -> None:
    import os
    broker = b.LocalBroker(tmp_path / "home")
    broker.home.mkdir(parents=True)
    (broker.home / "broker.pid").write_text(f"{os.getpid()}\n")  # alive, not kafka
    assert not broker.status().running
    (broker.home / "broker.pid").write_text("not a pid\n")
    assert not broker.status().running
    broker.stop()  # removes the stale file
    assert not (broker.home / "broker.pid").exists()


def test_metadata_probe_round_trip() -> None:
    request = b._metadata_request(42)
    size, api_key, api_version, corr = struct.unpack_from(">ihhi", request)
    assert (size, api_key, api_version, corr) == (len(request) - 4, 3, 1, 42)
    host = b"127.0.0.1"
    response = (struct.pack(">ii", 42, 2)
                + struct.pack(">ih", 1, len(host)) + host + struct.pack(">ih", 9092, -1)
                + struct.pack(">ih", 7, len(host)) + host + struct.pack(">ih", 9093, 2) + b"r1"
                + struct.pack(">ii", 1, 0))
    assert b._parse_metadata_brokers(response, 42) == {1, 7}
    with pytest.raises(OSError):
        b._parse_metadata_brokers(response, 41)
    with pytest.raises(OSError):
        b._parse_metadata_brokers(response[:12], 42)

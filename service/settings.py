"""The one settings object of crowdguard.

Every value can be set three ways, strongest first: a command-line flag
(``--batch-size 64``), an environment variable with the ``CROWDGUARD_`` prefix
(``CROWDGUARD_BATCH_SIZE=64``), or the default below. Nothing else in the
package reads the environment: the CLI builds :class:`Settings` once and passes
it down. Secrets are :class:`~pydantic.SecretStr` and print masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

__all__ = ["Settings", "flag_for", "load_settings", "DEFAULT_MODEL_DIR", "cpu_count"]

#: The model shipped in the repository (and baked into the image).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "crowdguard-detector"


def cpu_count() -> int:
    """CPUs this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """crowdguard configuration (env prefix ``CROWDGUARD_``; see README, Configuration)."""

    model_config = SettingsConfigDict(
        env_prefix="CROWDGUARD_", frozen=True, extra="forbid", protected_namespaces=()
    )

    # --- Kafka -----------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        None, description="Kafka bootstrap servers (host:port,...). Unset: start the local broker.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (PLAIN when unset and SASL is used).")
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (masked).")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for TLS.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key (mutual TLS).")
    topic_submissions: str = Field("crowdguard.submissions", description="Input topic.")
    topic_flags: str = Field("crowdguard.flags", description="Verdicts, keyed by submission_id.")
    topic_dead_letter: str = Field("crowdguard.dead-letter",
                                   description="Invalid input with the reason.")
    topic_worker_rates: str = Field("crowdguard.worker-rates",
                                    description="Worker threshold crossing events.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of topics crowdguard creates.")
    topic_replication_factor: int = Field(1, ge=1, description="Replication of topics it creates.")
    create_topics: bool = Field(True, description="Create missing topics at start-up.")
    consumer_group: str = Field("crowdguard", description="Consumer group (and faust app id).")

    # --- batching and inference -------------------------------------------------
    batch_size: int = Field(32, ge=1, le=4096, description="Largest micro-batch scored at once.")
    batch_window_s: float = Field(0.1, gt=0, le=60, description="Longest wait to fill a batch.")
    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="Model directory (ONNX, tokenizer, metadata).")
    device: Literal["cpu", "cuda"] = Field("cpu", description="cpu or cuda (needs onnxruntime-gpu).")
    precision: Literal["auto", "fp32"] = Field(
        "auto", description="Model file: auto (on cpu the model's CPU file, int8 unless training "
        "found int8 unfit; on cuda fp32) or fp32 (the fp32 file on either device).")
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 = CPUs available.")
    max_message_bytes: int = Field(1_000_000, ge=1024, description="Larger submissions are dead-lettered.")
    include_text: bool = Field(False, description="Copy the submission text into flags.")

    # --- per-worker rates ---------------------------------------------------------
    rate_window_s: float = Field(7 * 24 * 3600, gt=0, description="Rolling window of worker rates.")
    rate_step_s: float = Field(3600, gt=0, description="Step (hop) of the rolling window.")
    rate_threshold: float = Field(0.5, gt=0, le=1, description="LLM-use rate that raises a worker event.")
    rate_min_submissions: int = Field(5, ge=1, description="Submissions before a worker can be flagged.")
    max_worker_series: int = Field(500, ge=0, description="Cap on per-worker Prometheus series.")
    max_task_series: int = Field(100, ge=0, description="Cap on per-task Prometheus series.")

    # --- web and ops ----------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    web_port: int = Field(6066, ge=0, le=65535, description="Port of /metrics, /healthz, ...")
    web_advertised_host: str | None = Field(
        None, description="Host other replicas use to reach this one (pod IP); default web_host.")
    data_dir: Path = Field(Path(".cache") / "faust", description="Faust local state (table cache).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: Literal["json", "console"] = Field("console", description="json or console.")
    log_library_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = Field(
        None, description="Level of the faust, aiokafka and mode logs (rebalances, table "
        "recovery); default WARNING, or INFO when log_level is DEBUG.")

    # --- local broker (dev, tests, the demo) -----------------------------------------
    broker_home: Path = Field(Path.home() / ".cache" / "crowdguard" / "broker",
                              description="Data and logs of the local Kafka broker.")
    broker_port: int = Field(9092, ge=1, le=65535, description="Local broker client port.")
    broker_controller_port: int = Field(9093, ge=1, le=65535,
                                        description="Local broker KRaft controller port.")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_shape(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        for hp in v.split(","):
            host, sep, port = hp.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {v!r}")
        return v.strip()

    @property
    def intra_op_threads(self) -> int:
        return self.threads or cpu_count()

    def for_child(self) -> tuple[list[str], dict[str, str]]:
        """Command-line flags, plus environment entries for secrets (kept out of ``ps``),
        that give a ``crowdguard`` child process these same settings."""
        argv: list[str] = []
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            flag = flag_for(name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                env["CROWDGUARD_" + name.upper()] = value.get_secret_value()
            elif isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        return argv, env

    def masked(self) -> dict[str, Any]:
        """Settings as a dict safe to log (secrets stay masked)."""
        return {k: (str(v) if isinstance(v, (SecretStr, Path)) else v)
                for k, v in self.model_dump().items()}


def flag_for(name: str) -> str:
    """The command-line flag of setting ``name`` (``batch_size`` -> ``--batch-size``)."""
    return "--" + name.replace("_", "-")


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from flags (``overrides``, ``None`` = not given) and env."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings ({problems}); flags override CROWDGUARD_* variables")\
            from exc

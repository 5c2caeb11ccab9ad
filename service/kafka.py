"""Kafka client plumbing shared by the worker, replay and the demo (aiokafka side).

``client_kwargs`` turns the settings' security options into aiokafka keyword
arguments; ``ensure_topics`` creates crowdguard's topics when they are missing,
so a worker started before the first submission still gets its partitions.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from .errors import BrokerError
from .settings import Settings

__all__ = ["ssl_context", "client_kwargs", "ensure_topics"]

log = logging.getLogger(__name__)


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL, else ``None``."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        ctx = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
        if settings.kafka_ssl_certfile:
            ctx.load_cert_chain(str(settings.kafka_ssl_certfile),
                                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile
                                else None)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(f"cannot load Kafka TLS files: {exc}") from exc
    return ctx


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the configured security protocol."""
    kw: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    ctx = ssl_context(settings)
    if ctx is not None:
        kw["ssl_context"] = ctx
    if settings.kafka_security_protocol.startswith("SASL"):
        kw["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        kw["sasl_plain_username"] = settings.kafka_sasl_username
        kw["sasl_plain_password"] = (settings.kafka_sasl_password.get_secret_value()
                                     if settings.kafka_sasl_password else None)
    return kw


async def ensure_topics(settings: Settings, replication_factor: int = 1) -> list[str]:
    """Create the submissions, flags, dead-letter and worker-rates topics if missing."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError

    names = [settings.topic_submissions, settings.topic_flags, settings.topic_dead_letter,
             settings.topic_worker_rates]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap,
                                **client_kwargs(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(n, settings.topic_partitions,
                                                    replication_factor) for n in missing])
            except TopicAlreadyExistsError:
                pass  # another worker won the race
            log.info("created topics", extra={"topics": missing,
                                              "partitions": settings.topic_partitions})
        return missing
    except KafkaError as exc:
        raise BrokerError(f"cannot create topics on {settings.kafka_bootstrap}: {exc}") from exc
    finally:
        await admin.close()

"""Files to submissions: MTurk batch results, Prolific-style CSV and JSONL.

``iter_submissions`` converts a file into submission dicts of the wire schema
(see :mod:`service.schema`); ``publish`` sends them to the submissions topic.
A row that cannot be converted is reported with file and line and skipped
*loudly* (counted and returned), never silently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import orjson

from .errors import BrokerError, InputError
from .records import Record, read_records
from .signals import parse_mturk_answer, parse_prolific_log

__all__ = ["Format", "iter_submissions", "publish", "ReplayResult"]

log = logging.getLogger(__name__)

Format = Literal["mturk", "prolific", "jsonl"]
_TZ = {"PDT": -7, "PST": -8, "UTC": 0, "GMT": 0, "EDT": -4, "EST": -5}


def _mturk_time(value: str | None) -> str | None:
    """``Wed May 31 23:34:43 PDT 2023`` -> RFC 3339."""
    if not value:
        return None
    parts = value.split()
    if len(parts) != 6 or parts[4] not in _TZ:
        raise ValueError(f"unrecognised MTurk time {value!r}")
    naive = datetime.strptime(" ".join(parts[:4] + parts[5:]), "%a %b %d %H:%M:%S %Y")
    return naive.replace(tzinfo=timezone(timedelta(hours=_TZ[parts[4]]))).isoformat()


def _from_mturk(rec: Record) -> dict[str, Any]:
    f = rec.fields
    summary, events = parse_mturk_answer(f["Answer.taskAnswers"])
    return {
        "submission_id": f["AssignmentId"], "worker_id": f["WorkerId"], "task_id": f["HITId"],
        "text": summary, "source_text": f.get("Input.texts") or None, "events": events,
        "started_at": _mturk_time(f.get("AcceptTime")),
        "submitted_at": _mturk_time(f.get("SubmitTime")), "platform": "mturk",
    }


def _from_prolific(rec: Record) -> dict[str, Any]:
    f = rec.fields
    sid = f.get("submission_id") or f.get("SUBMISSION_ID") or f"{rec.source}:{rec.line}"
    return {
        "submission_id": sid,
        "worker_id": f.get("worker_id") or f.get("participant_id") or f.get("PARTICIPANT_ID"),
        "task_id": f.get("task_id") or f.get("study_id") or f.get("STUDY_ID") or "prolific",
        "text": f["text"], "source_text": f.get("source_text") or None,
        "events": parse_prolific_log(f["log_of_what_they_did"])
        if f.get("log_of_what_they_did") else None,
        "started_at": f.get("started_at") or None,
        "submitted_at": f.get("completed_at") or f.get("submitted_at") or None,
        "platform": "prolific",
    }


_CONVERT = {"mturk": _from_mturk, "prolific": _from_prolific, "jsonl": lambda r: r.fields}


def iter_submissions(path: str | Path, fmt: Format) -> Iterator[dict[str, Any] | InputError]:
    """Submission dicts in file order; an :class:`InputError` in place of a bad row."""
    convert = _CONVERT[fmt]
    for rec in read_records(path):
        if rec.error is not None:
            yield InputError(rec.error, source=rec.source, line=rec.line)
            continue
        try:
            yield convert(rec)
        except (KeyError, ValueError, TypeError) as exc:
            yield InputError(f"cannot convert {fmt} row: {exc!r}", source=rec.source,
                             line=rec.line)


@dataclass
class ReplayResult:
    sent: int = 0
    skipped: int = 0


async def publish(path: str | Path, fmt: Format, *, bootstrap: str, topic: str,
                  rate: float | None = None, stamp_now: bool = False,
                  client_kwargs: dict[str, Any] | None = None) -> ReplayResult:
    """Publish a file's submissions to ``topic`` (optionally ``rate`` per second)."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                **(client_kwargs or {}))
    result = ReplayResult()
    try:
        await producer.start()
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        futures = []
        for item in iter_submissions(path, fmt):
            if isinstance(item, InputError):
                log.warning("replay row skipped", extra={"error": str(item)})
                result.skipped += 1
                continue
            if stamp_now:
                item = {**item, "submitted_at": datetime.now(timezone.utc).isoformat()}
            key = str(item.get("submission_id", "")).encode()
            futures.append(await producer.send(topic, orjson.dumps(item), key=key))
            result.sent += 1
            if rate:
                await asyncio.sleep(1.0 / rate)
        await asyncio.gather(*futures)
    except KafkaError as exc:
        raise BrokerError(f"publishing to {topic} failed: {exc}") from exc
    finally:
        await producer.stop()
    return result

"""Wire formats: Submission in; Flag, DeadLetter and WorkerRateEvent out.

:func:`parse_submission` turns the raw bytes of a Kafka message into a
:class:`Submission` or raises :class:`~service.errors.InputError` whose
``reason`` is one of :data:`DEAD_LETTER_REASONS` (a small fixed set, so it can be
a metric label). Output records serialize with orjson.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from .errors import InputError

__all__ = [
    "Submission", "Flag", "DeadLetter", "parse_submission", "parse_time", "now_iso",
    "DEAD_LETTER_REASONS", "MAX_ID_CHARS", "dumps",
]

#: Every reason a message can be dead-lettered for (label values of the metric).
DEAD_LETTER_REASONS = (
    "oversized", "not_utf8", "not_json", "not_object", "missing_field", "wrong_type",
    "bad_id", "bad_timestamp", "empty_text", "processing_error",
)
MAX_ID_CHARS = 256
_REQUIRED = ("submission_id", "worker_id", "task_id", "text")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 / ISO 8601 string -> aware datetime (UTC assumed if naive); ``None`` passes."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 string, got {type(value).__name__}")
    s = value.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    dt = datetime.fromisoformat(s)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Submission:
    submission_id: str
    worker_id: str
    task_id: str
    text: str
    source_text: str | None = None
    started_at: datetime | None = None
    submitted_at: datetime | None = None
    events: Any = None  # raw keystroke/clipboard log; service.signals interprets it
    platform: str | None = None


def parse_submission(raw: bytes | None, *, max_bytes: int = 1_000_000) -> Submission:
    """Decode and validate one message value; :class:`InputError` says why not."""
    if raw is None:
        raise InputError("message has no value", reason="not_json")
    if len(raw) > max_bytes:
        raise InputError(f"message of {len(raw)} bytes exceeds the {max_bytes}-byte limit",
                         reason="oversized")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("message is not UTF-8", reason="not_utf8") from exc
        raise InputError(f"message is not JSON: {exc.msg}", reason="not_json") from exc
    if not isinstance(obj, dict):
        raise InputError(f"message is a JSON {type(obj).__name__}, not an object",
                         reason="not_object")
    missing = [k for k in _REQUIRED if k not in obj or obj[k] is None]
    if missing:
        raise InputError(f"missing required field(s): {', '.join(missing)}",
                         reason="missing_field")
    for key in (*_REQUIRED, "source_text", "platform"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], str):
            raise InputError(f"field {key!r} must be a string, got {type(obj[key]).__name__}",
                             reason="wrong_type")
    for key in ("submission_id", "worker_id", "task_id"):
        value = obj[key]
        if not value.strip():
            raise InputError(f"field {key!r} is empty", reason="bad_id")
        if len(value) > MAX_ID_CHARS:
            raise InputError(f"field {key!r} is {len(value)} characters (max {MAX_ID_CHARS})",
                             reason="bad_id")
    if not obj["text"].strip():
        raise InputError("field 'text' is empty", reason="empty_text")
    times: dict[str, datetime | None] = {}
    for key in ("started_at", "submitted_at"):
        try:
            times[key] = parse_time(obj.get(key))
        except ValueError as exc:
            raise InputError(f"field {key!r} is not an RFC 3339 timestamp: {exc}",
                             reason="bad_timestamp") from exc
    return Submission(
        submission_id=obj["submission_id"], worker_id=obj["worker_id"], task_id=obj["task_id"],
        text=obj["text"], source_text=obj.get("source_text"), started_at=times["started_at"],
        submitted_at=times["submitted_at"], events=obj.get("events"),
        platform=obj.get("platform"),
    )


@dataclass(frozen=True)
class Flag:
    """The verdict on one submission, published keyed by ``submission_id``."""

    submission_id: str
    worker_id: str
    task_id: str
    p_llm: float | None
    verdict: str
    reasons: list[str]
    signals: dict[str, Any]
    model: str
    scored_at: str
    submitted_at: str | None = None
    text: str | None = None
    #: distance of the text's features from the training data (``None``: model without the check)
    feature_distance: float | None = None

    def to_bytes(self) -> bytes:
        d = asdict(self)
        if d["text"] is None:
            del d["text"]
        return dumps(d)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Flag:
        d = orjson.loads(raw)
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class DeadLetter:
    """An input that could not be processed, with where it came from and why."""

    reason: str
    error: str
    topic: str
    partition: int
    offset: int
    value_b64: str
    key_b64: str | None = None
    at: str = field(default_factory=now_iso)

    @classmethod
    def of(cls, exc: InputError | Exception, *, topic: str, partition: int, offset: int,
           value: bytes | None, key: bytes | None) -> DeadLetter:
        reason = exc.reason if isinstance(exc, InputError) else "processing_error"
        return cls(reason=reason, error=str(exc), topic=topic, partition=partition,
                   offset=offset, value_b64=base64.b64encode(value or b"").decode(),
                   key_b64=base64.b64encode(key).decode() if key else None)

    def to_bytes(self) -> bytes:
        return dumps(asdict(self))

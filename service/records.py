"""Reading JSON, JSONL and CSV files of texts, record by record.

Every record keeps its position (1-based line for JSONL/CSV, 1-based element
for a JSON array) so that any problem can name the file and line. A record that
cannot be decoded is yielded with ``error`` set instead of stopping the file;
callers decide whether that is fatal (training) or reported in the output
(scoring). Nothing is ever dropped silently.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .errors import InputError

__all__ = ["Record", "read_records", "parse_label", "LABELS"]

#: Accepted label spellings, mapped to 1 (LLM-written) or 0 (human).
LABELS: dict[str, int] = {
    "llm": 1, "synthetic": 1, "ai": 1, "machine": 1, "generated": 1, "1": 1,
    "human": 0, "real": 0, "0": 0,
}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Record:
    """One input record: its fields, or why it could not be read."""

    source: str
    line: int
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def parse_label(value: Any, *, source: str, line: int) -> int:
    """``llm|synthetic`` -> 1, ``human|real`` -> 0; anything else is an :class:`InputError`."""
    key = str(value).strip().lower() if value is not None else ""
    if key not in LABELS:
        raise InputError(
            f"unknown label {value!r}; use one of human|llm (aliases real|synthetic)",
            source=source, line=line, reason="unknown_label")
    return LABELS[key]


def _format_of(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "json"
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def read_records(path: str | Path) -> Iterator[Record]:
    """Yield the records of a JSON (array), JSONL or CSV file, in file order.

    Raises :class:`InputError` only for problems with the file as a whole
    (missing, unreadable, not an array of objects); per-record problems come
    back as ``Record.error``.
    """
    path = Path(path)
    src = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", source=src,
                         reason="unreadable") from exc
    fmt = _format_of(path, data[:64])
    if fmt == "jsonl":
        yield from _jsonl(data, src)
    elif fmt == "json":
        yield from _json(data, src)
    else:
        yield from _csv(data, src)


def _jsonl(data: bytes, src: str) -> Iterator[Record]:
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            why = "not UTF-8" if _not_utf8(raw) else f"not valid JSON ({exc.msg})"
            yield Record(src, n, error=why)
            continue
        if not isinstance(obj, dict):
            yield Record(src, n, error=f"expected a JSON object, got {type(obj).__name__}")
            continue
        yield Record(src, n, obj)


def _json(data: bytes, src: str) -> Iterator[Record]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        why = "not UTF-8" if _not_utf8(data) else f"not valid JSON: {exc.msg}"
        raise InputError(f"{why} (line {exc.lineno}, column {exc.colno})", source=src,
                         line=exc.lineno, reason="bad_json") from exc
    if isinstance(obj, dict):  # {"data": [...]} or a single record
        lists = [v for v in obj.values() if isinstance(v, list)]
        obj = lists[0] if len(lists) == 1 else [obj]
    if not isinstance(obj, list):
        raise InputError("expected a JSON array of objects", source=src, reason="bad_json")
    for n, item in enumerate(obj, start=1):
        if isinstance(item, dict):
            yield Record(src, n, item)
        else:
            yield Record(src, n, error=f"element {n} is {type(item).__name__}, not an object")


def _csv(data: bytes, src: str) -> Iterator[Record]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"not UTF-8 (byte {exc.start}); re-save the file as UTF-8",
                         source=src, line=line, reason="not_utf8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    start = 1  # the line the record being read starts on
    try:
        if not reader.fieldnames:
            raise InputError("empty CSV file (no header row)", source=src, line=1,
                             reason="empty")
        start = reader.line_num + 1
        for row in reader:
            if None in row:  # more cells than header columns
                yield Record(src, start, error=f"{len(row[None])} more cells than header columns")
            else:
                yield Record(src, start, {k: v for k, v in row.items()})
            start = reader.line_num + 1
    except csv.Error as exc:
        # csv's own line count stops wherever the parser gave up (at the end of the
        # file for an unclosed quote), so name the line where the broken record starts
        raise InputError(f"CSV cannot be parsed ({exc}) in the record starting on this line; "
                         "check quoting", source=src, line=start, reason="bad_csv") from exc


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False

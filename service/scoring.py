"""Offline scoring and evaluation of files, on the same path as the stream.

``score_file`` yields one output row per input record, in input order: a
record that cannot be read or has no usable text still gets a row, with
``verdict: uncertain`` and the reason, so nothing is dropped.

A record may carry the task material (``source_text``) and a keystroke log
(``events``) as a stream submission does; they are then weighed exactly as the
stream weighs them (:func:`service.signals.judge`), so a file and the stream give
the same verdict for the same submission.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .detector import Detector, TextScore
from .errors import InputError
from .evaluation import summarize
from .records import Record, parse_label, read_records
from .signals import Signals, compute_signals, judge
from .verdict import Verdict, unfamiliar_reason

__all__ = ["ScoredRow", "score_records", "score_file", "evaluate_files", "read_labelled"]

log = logging.getLogger(__name__)

#: Fields an input record may carry its text in, first match wins.
TEXT_FIELDS = ("text", "summary", "answer")
ID_FIELDS = ("id", "submission_id")
#: Optional fields weighed as the stream weighs them.
SOURCE_FIELD, EVENTS_FIELD = "source_text", "events"


@dataclass(frozen=True)
class ScoredRow:
    record: Record
    verdict: Verdict
    score: TextScore | None = None
    signals: Signals | None = None

    def as_output(self) -> dict[str, Any]:
        rid = next((self.record.fields[k] for k in ID_FIELDS if k in self.record.fields), None)
        distance = None if self.score is None else self.score.distance
        return {
            "id": rid,
            "p_llm": None if self.verdict.p_llm is None else round(self.verdict.p_llm, 6),
            "verdict": self.verdict.verdict,
            "reasons": list(self.verdict.reasons),
            "feature_distance": None if distance is None else round(distance, 4),
        }


def _text_of(rec: Record) -> tuple[str | None, str | None]:
    """The record's text, or why it has none."""
    if rec.error is not None:
        return None, f"unreadable record ({rec.error})"
    for key in TEXT_FIELDS:
        if key in rec.fields:
            value = rec.fields[key]
            if not isinstance(value, str):
                return None, f"field {key!r} is {type(value).__name__}, not a string"
            return value, None
    return None, "missing field 'text'"


def read_labelled(path: str | Path) -> tuple[list[str], list[int]]:
    """The texts of a labelled file and their labels (1 = LLM), in file order.

    Raises :class:`InputError` naming the file and line of the first record
    without a usable text or label, so nothing is scored from a broken file.
    """
    texts: list[str] = []
    labels: list[int] = []
    for rec in read_records(path):
        text, label = _labelled(rec)
        texts.append(text)
        labels.append(label)
    return texts, labels


def _labelled(rec: Record) -> tuple[str, int]:
    """The record's text and label (1 = LLM); :class:`InputError` naming file and line."""
    text, problem = _text_of(rec)
    if problem is not None or text is None or not text.strip():
        raise InputError(problem or "empty text", source=rec.source, line=rec.line,
                         reason="unscorable")
    return text, parse_label(rec.fields.get("label", rec.fields.get("labels")),
                             source=rec.source, line=rec.line)


def _signals_of(rec: Record, text: str) -> Signals | None:
    """The record's behavioural signals, when it carries task text or events."""
    source = rec.fields.get(SOURCE_FIELD)
    events = rec.fields.get(EVENTS_FIELD)
    if source is not None and not isinstance(source, str):
        log.warning("field not used", extra={"where": rec.where, "reason": (
            f"field {SOURCE_FIELD!r} is {type(source).__name__}, not a string")})
        source = None
    if source is None and events is None:
        return None
    return compute_signals(text, events, source_text=source)


def score_records(detector: Detector, records: Iterable[Record], *,
                  chunk: int = 256) -> Iterator[ScoredRow]:
    """Score records in chunks (bounded memory), yielding rows in input order."""
    buf: list[Record] = []
    for rec in records:
        buf.append(rec)
        if len(buf) >= chunk:
            yield from _score_chunk(detector, buf)
            buf = []
    if buf:
        yield from _score_chunk(detector, buf)


def _score_chunk(detector: Detector, recs: list[Record]) -> Iterator[ScoredRow]:
    texts: list[str] = []
    slots: list[int] = []
    problems: dict[int, str] = {}
    found: list[str | None] = []
    for i, rec in enumerate(recs):
        text, problem = _text_of(rec)
        found.append(text)
        if problem is not None:
            problems[i] = problem
            log.warning("record not scored", extra={"where": rec.where, "reason": problem})
        elif text is not None and text.strip():
            texts.append(text)
            slots.append(i)
    scores = dict(zip(slots, detector.score(texts), strict=True))
    for i, rec in enumerate(recs):
        if i in problems:
            yield ScoredRow(rec, Verdict("uncertain", None, (problems[i],)))
        else:
            score = scores.get(i)
            text = found[i] or ""
            signals = _signals_of(rec, text)
            yield ScoredRow(rec, judge(text, score, detector.info, signals), score, signals)


def score_file(detector: Detector, path: str | Path) -> Iterator[ScoredRow]:
    return score_records(detector, read_records(path))


def evaluate_files(detector: Detector, paths: Iterable[str | Path], *,
                   group_field: str = "group") -> dict[str, Any]:
    """Metrics per file and per ``group_field`` value (also ``data_type`` if present).

    For a model with the familiarity check each entry also has
    ``unfamiliar_share`` (texts beyond its threshold) and
    ``without_familiarity``: the verdict figures had the check been off, so
    its effect is measured on the same texts.
    """
    report: dict[str, Any] = {"model": detector.info.label, "files": {}}
    info = detector.info
    checked = info.checks_familiarity
    for path in paths:
        rows = list(score_file(detector, path))
        y: list[int] = []
        p: list[float] = []
        v: list[str] = []
        v_off: list[str] = []
        far: list[bool] = []
        groups: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            rec = row.record
            text, label = _labelled(rec)
            y.append(label)
            p.append(row.verdict.p_llm if row.verdict.p_llm is not None else 0.5)
            v.append(row.verdict.verdict)
            if checked:
                v_off.append(judge(text, row.score, info, row.signals,
                                   familiarity=False).verdict)
                far.append(row.score is not None
                           and unfamiliar_reason(row.score, info) is not None)
            g = rec.fields.get(group_field)
            if g is not None:
                groups[str(g)].append(len(y) - 1)
        arrays = (np.array(y), np.array(p), np.array(v), np.array(v_off), np.array(far))
        entry: dict[str, Any] = {"all": _figures(*arrays, np.arange(len(y)), checked)}
        if groups:
            entry["groups"] = {g: _figures(*arrays, np.array(ix), checked)
                               for g, ix in sorted(groups.items())}
        report["files"][str(path)] = entry
    return report


def _figures(y: np.ndarray, p: np.ndarray, v: np.ndarray, v_off: np.ndarray, far: np.ndarray,
             ix: np.ndarray, checked: bool) -> dict[str, Any]:
    """``summarize`` of rows ``ix``, plus the familiarity figures when the model has the check."""
    out = summarize(y[ix], p[ix], v[ix])
    if checked:
        out["unfamiliar_share"] = round(float(far[ix].mean()), 6) if ix.size else None
        off = summarize(y[ix], p[ix], v_off[ix])
        out["without_familiarity"] = {k: off[k] for k in (
            "llm_verdict_fpr", "llm_verdict_tpr", "uncertain_share")}
        out["without_familiarity"]["ci95"] = {
            k: off["ci95"][k] for k in ("llm_verdict_fpr", "llm_verdict_tpr")}
    return out

"""Loading labelled training files, splitting off a validation set or cutting folds.

Training is strict: a record that cannot be read, has no or empty text, or an
unknown label stops training with an :class:`~service.errors.InputError` that
names the file and line. Texts go through :func:`~service.text.clean_artifacts`
then :func:`~service.text.normalize` (what the model will see at inference),
then :class:`~service.text.LineBreakRepair` with the word counts of all files
read together; identical texts are kept once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..records import parse_label, read_records
from ..text import LineBreakRepair, clean_artifacts, normalize

__all__ = ["Example", "FileInfo", "Dataset", "file_sha256", "load_dataset", "record_label",
           "split_folds", "split_validation"]

log = logging.getLogger(__name__)

#: Column names accepted for the label, first match wins (GPTurk uses ``labels``).
LABEL_FIELDS = ("label", "labels")


@dataclass(frozen=True)
class Example:
    """One training text after cleaning, with its label (1 = LLM) and origin."""

    text: str
    label: int
    source: str
    line: int
    group: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` of the record, for messages."""
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class FileInfo:
    """A training file as recorded in the model metadata."""

    file: str
    sha256: str
    records: int


@dataclass
class Dataset:
    """Deduplicated examples of all files plus what was read."""

    examples: list[Example] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)
    duplicates: int = 0
    #: texts whose words glued at lost line breaks were split (:class:`LineBreakRepair`)
    repaired: int = 0

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def labels(self) -> list[int]:
        return [e.label for e in self.examples]


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, as a model's metadata records its training files."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}", source=str(path),
                         reason="unreadable") from exc
    return digest.hexdigest()


def record_label(fields: dict[str, object], source: str, line: int) -> int:
    """The record's label (0 human, 1 LLM) from the first of :data:`LABEL_FIELDS` present.

    Raises :class:`InputError` naming ``source`` and ``line`` when none is
    present or the value is not a known label.
    """
    key = next((k for k in LABEL_FIELDS if k in fields), None)
    if key is None:
        raise InputError("record has no 'label' (or 'labels') field", source=source,
                         line=line, reason="missing_label")
    return parse_label(fields[key], source=source, line=line)


def _example(fields: dict[str, object], source: str, line: int,
             group_field: str | None) -> Example:
    raw = fields.get("text")
    if raw is None:
        raise InputError("record has no 'text' field", source=source, line=line,
                         reason="missing_text")
    if not isinstance(raw, str):
        raise InputError(f"'text' must be a string, got {type(raw).__name__}", source=source,
                         line=line, reason="bad_text")
    text = normalize(clean_artifacts(raw))
    if not text:
        raise InputError("text is empty; remove the record or fill it in", source=source,
                         line=line, reason="empty_text")
    label = record_label(fields, source, line)
    group: str | None = None
    if group_field is not None:
        value = fields.get(group_field)
        if value is None or str(value).strip() == "":
            raise InputError(f"record has no {group_field!r} field (needed to group the split)",
                             source=source, line=line, reason="missing_group")
        group = str(value)
    return Example(text=text, label=label, source=source, line=line, group=group)


def load_dataset(paths: Sequence[str | Path], *, group_field: str | None = None) -> Dataset:
    """Read, clean, validate and deduplicate the labelled texts of ``paths``.

    Raises :class:`InputError` (naming ``file:line``) on the first bad record,
    and when the same text appears with both labels.
    """
    if not paths:
        raise InputError("no training files given", reason="no_data")
    data = Dataset()
    read: list[Example] = []
    for path in map(Path, paths):
        count = 0
        for record in read_records(path):
            count += 1
            if record.error is not None:
                raise InputError(record.error, source=record.source, line=record.line,
                                 reason="bad_record")
            read.append(_example(record.fields, record.source, record.line, group_field))
        if count == 0:
            raise InputError("file has no records", source=str(path), reason="empty")
        data.files.append(FileInfo(file=path.name, sha256=file_sha256(path), records=count))
        log.info("read %d records from %s", count, path)
    repair = LineBreakRepair(ex.text for ex in read)
    seen: dict[str, Example] = {}
    for ex in read:
        text = repair(ex.text)
        if text != ex.text:
            data.repaired += 1
            ex = dataclasses.replace(ex, text=text)
        first = seen.get(ex.text)
        if first is None:
            seen[ex.text] = ex
            data.examples.append(ex)
        elif first.label != ex.label:
            raise InputError(f"same text labelled differently at {first.where}; "
                             "fix one of the labels", source=ex.source, line=ex.line,
                             reason="conflicting_label")
        else:
            data.duplicates += 1
    if data.repaired:
        log.info("put back spaces lost with line breaks in %d texts", data.repaired)
    if data.duplicates:
        log.info("dropped %d duplicate texts", data.duplicates)
    return data


def split_validation(examples: Sequence[Example], val_fraction: float,
                     seed: int) -> tuple[list[Example], list[Example]]:
    """Split into (train, validation), stratified by label, reproducible for a seed.

    Without groups each label contributes ``round(n * val_fraction)`` texts
    (at least one when it has two or more). With groups (``Example.group``
    set) whole groups go to validation, shuffled, until each label reaches its
    share, so validation measures texts on unseen groups (e.g. new tasks).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = random.Random(seed)
    grouped = any(e.group is not None for e in examples)
    val_ids: set[int] = set()
    if grouped:
        groups: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            groups.setdefault(str(ex.group), []).append(i)
        names = sorted(groups)
        rng.shuffle(names)
        want = {c: round(sum(e.label == c for e in examples) * val_fraction) for c in (0, 1)}
        have = {0: 0, 1: 0}
        for name in names:
            if all(have[c] >= want[c] for c in (0, 1)):
                break
            if len(val_ids) + len(groups[name]) >= len(examples):
                continue  # never put everything in validation
            val_ids.update(groups[name])
            for i in groups[name]:
                have[examples[i].label] += 1
    else:
        for cls in (0, 1):
            idx = [i for i, e in enumerate(examples) if e.label == cls]
            rng.shuffle(idx)
            k = round(len(idx) * val_fraction)
            if len(idx) >= 2:
                k = min(max(k, 1), len(idx) - 1)
            else:
                k = 0
            val_ids.update(idx[:k])
    train = [e for i, e in enumerate(examples) if i not in val_ids]
    val = [e for i, e in enumerate(examples) if i in val_ids]
    return train, val


def split_folds(examples: Sequence[Example], folds: int, seed: int) -> list[int]:
    """The fold (``0 .. folds - 1``) of each example, for cross-fitting; reproducible for a seed.

    With groups (``Example.group`` set) whole groups share a fold: the groups,
    shuffled, go one by one to the fold with the fewest texts so far, so each
    fold's texts are on groups (e.g. tasks) its model never saw. Without groups
    each label is shuffled and dealt out in turn, so every fold holds both labels
    in about their overall shares. Raises :class:`InputError` when there are
    fewer groups, or texts of a label, than folds.
    """
    if folds < 2:
        raise ValueError(f"folds must be 2 or more, got {folds}")
    rng = random.Random(seed)
    fold_of = [0] * len(examples)
    if any(e.group is not None for e in examples):
        groups: dict[str, list[int]] = {}
        for i, ex in enumerate(examples):
            groups.setdefault(str(ex.group), []).append(i)
        if len(groups) < folds:
            raise InputError(f"{len(groups)} groups cannot fill {folds} folds; lower --folds "
                             "or drop --group-field", reason="too_few_groups")
        names = sorted(groups)
        rng.shuffle(names)
        sizes = [0] * folds
        for name in names:
            k = sizes.index(min(sizes))
            sizes[k] += len(groups[name])
            for i in groups[name]:
                fold_of[i] = k
        return fold_of
    for cls in (0, 1):
        idx = [i for i, e in enumerate(examples) if e.label == cls]
        if len(idx) < folds:
            raise InputError(f"{len(idx)} {('human', 'llm')[cls]} texts cannot fill {folds} "
                             "folds; lower --folds or add data", reason="too_few_texts")
        rng.shuffle(idx)
        for n, i in enumerate(idx):
            fold_of[i] = n % folds
    return fold_of

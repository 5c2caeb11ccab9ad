"""The model directory: what it must hold and what its metadata says.

A model directory holds ``crowdguard-model.json`` (the metadata written by
``crowdguard train``), the tokenizer (``tokenizer.json``) and one or two ONNX
files: ``model.int8.onnx`` for CPU and, optionally, ``model.onnx`` (fp32) for
the GPU path; models trained since 0.2.0 also hold ``familiarity.npz``, the
features of their training texts (:mod:`.familiarity`).
:func:`load_model_info` checks all of it up front and says what
is missing, so a worker never starts with a half-usable model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import ModelError

__all__ = ["METADATA_FILE", "FORMAT", "ModelInfo", "Thresholds", "Calibration", "Familiarity",
           "load_model_info"]

METADATA_FILE = "crowdguard-model.json"
FORMAT = 1


@dataclass(frozen=True)
class Calibration:
    """``p_llm = sigmoid(a * margin + b)``, margin = logit[llm] - logit[human]."""

    method: str = "platt"
    a: float = 1.0
    b: float = 0.0


@dataclass(frozen=True)
class Thresholds:
    """``llm`` at or above ``llm``; ``human`` at or below ``human``; ``uncertain`` between."""

    llm: float = 0.5
    human: float = 0.5
    target_fpr: float | None = None


@dataclass(frozen=True)
class Familiarity:
    """A text whose feature distance exceeds ``threshold`` is unlike the training data.

    ``quantile`` is the share of validation texts at or below the threshold.
    """

    threshold: float
    quantile: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """Validated metadata of a model directory."""

    path: Path
    name: str
    version: str
    max_length: int
    files: dict[str, str]
    calibration: Calibration
    thresholds: Thresholds
    min_words: int = 15
    min_english: float = 0.2
    familiarity: Familiarity | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name@version``, as flags and metrics report it."""
        return f"{self.name}@{self.version}"

    def file(self, role: str) -> Path:
        return self.path / self.files[role]


def _need(meta: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in meta:
        raise ModelError(f"{where}: metadata lacks {key!r}; re-create the model with `crowdguard train`")
    value = meta[key]
    if not isinstance(value, kind):
        raise ModelError(f"{where}: metadata field {key!r} has the wrong type ({type(value).__name__})")
    return value


def load_model_info(path: str | Path) -> ModelInfo:
    """Read and check a model directory; raise :class:`ModelError` saying what to fix."""
    root = Path(path)
    if not root.is_dir():
        raise ModelError(
            f"model directory {root} does not exist; pass --model DIR (CROWDGUARD_MODEL_DIR) "
            "pointing at the output of `crowdguard train`")
    meta_path = root / METADATA_FILE
    try:
        meta = orjson.loads(meta_path.read_bytes())
    except FileNotFoundError as exc:
        raise ModelError(f"{root} holds no {METADATA_FILE}; is it a crowdguard model directory?") \
            from exc
    except orjson.JSONDecodeError as exc:
        raise ModelError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path} must hold a JSON object")
    fmt = meta.get("format")
    if fmt != FORMAT:
        raise ModelError(f"{meta_path}: model format {fmt!r}, this crowdguard reads format {FORMAT}")
    files = _need(meta, "files", dict, meta_path)
    for role in ("cpu", "tokenizer"):
        if role not in files:
            raise ModelError(f"{meta_path}: files.{role} is missing")
    for role, name in files.items():
        if not (root / name).is_file():
            raise ModelError(f"{root}: {role} file {name!r} named in the metadata is missing "
                             "(was the directory copied whole? large files may be Git LFS pointers)")
    cal = meta.get("calibration") or {}
    thr = meta.get("thresholds") or {}
    abstain = meta.get("abstain") or {}
    fam = meta.get("familiarity")
    if ("familiarity" in files) != isinstance(fam, dict):
        raise ModelError(f"{meta_path}: files.familiarity and the familiarity entry must come "
                         "together; re-create the model with `crowdguard train`")
    try:
        familiarity = None if fam is None else Familiarity(
            float(fam["threshold"]),
            None if fam.get("quantile") is None else float(fam["quantile"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: malformed familiarity entry: {exc}") from exc
    if familiarity is not None and not (math.isfinite(familiarity.threshold)
                                        and familiarity.threshold >= 0.0):
        raise ModelError(f"{meta_path}: familiarity threshold must be a finite number >= 0, "
                         f"got {familiarity.threshold}")
    try:
        calibration = Calibration(str(cal.get("method", "platt")), float(cal.get("a", 1.0)),
                                  float(cal.get("b", 0.0)))
        thresholds = Thresholds(float(thr.get("llm", 0.5)), float(thr.get("human", 0.5)),
                                thr.get("target_fpr"))
        info = ModelInfo(
            path=root,
            name=str(_need(meta, "name", str, meta_path)),
            version=str(_need(meta, "version", str, meta_path)),
            max_length=int(_need(meta, "max_length", int, meta_path)),
            files={str(k): str(v) for k, v in files.items()},
            calibration=calibration,
            thresholds=thresholds,
            min_words=int(abstain.get("min_words", 15)),
            min_english=float(abstain.get("min_english", 0.2)),
            familiarity=familiarity,
            validation=dict(meta.get("validation") or {}),
            raw=meta,
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: malformed calibration/thresholds/abstain: {exc}") from exc
    if not 0.0 <= thresholds.human <= thresholds.llm <= 1.0:
        raise ModelError(f"{meta_path}: thresholds must satisfy 0 <= human <= llm <= 1, "
                         f"got human={thresholds.human} llm={thresholds.llm}")
    return info

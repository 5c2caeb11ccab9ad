"""What model a crowdguard process serves, and proof that it runs here.

``crowdguard model`` loads the model exactly as ``score``, ``evaluate`` and
``run`` do (same settings, same loader, so the same fail-fast errors), then
:func:`describe` reports what was loaded: the model's label, its members for a
panel (and a panel's validation figures as served), the ONNX file each serves
on this device with its size and int8 weight width, calibration, thresholds,
familiarity threshold, abstention limits, the validation figures recorded at
training, and whether this CPU's int8 kernels saturate with 8-bit weights.
:func:`check` scores one fixed text through the whole verdict path and times
it. An operator runs it in the image, on the node, before pointing a worker at
a topic.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .detector import Detector
from .detector.backend import int8_saturates
from .detector.model_dir import ModelInfo, int8_weight_bits
from .signals import judge

__all__ = ["CHECK_TEXT", "describe", "check"]

#: Scored by :func:`check`: plain prose long enough to pass the abstention limits.
CHECK_TEXT = (
    "The researchers followed a group of adults for five years and compared those who walked "
    "every day with those who did not. People who walked had fewer heart problems, although "
    "the authors note that other habits could explain part of the difference, so they call "
    "for a randomized trial before any advice is given."
)

#: Validation figures worth showing; the metadata holds more.
_VALIDATION_KEYS = ("n", "n_human", "n_llm", "auroc", "tpr_at_5pct_fpr", "llm_verdict_fpr",
                    "llm_verdict_tpr", "uncertain_share", "ece")


def describe(detector: Detector) -> dict[str, Any]:
    """The loaded model, as a JSON-ready dict (see the module docstring)."""
    info = detector.info
    members = getattr(detector, "members", None) or (detector,)
    return {
        "model": info.label,
        "path": str(info.path),
        "kind": info.raw.get("kind", "model"),
        "rule": info.raw.get("rule") if info.members else None,
        "veto": list(info.veto) if info.members else None,
        "text_only_veto": list(info.text_only_veto) if info.members else None,
        "device": next((m.session.device for m in members if m.session is not None), "cpu"),
        "precision": detector.precision,
        "size_bytes": _dir_bytes(info.path),
        "int8_saturates_here": int8_saturates(),
        "validation": _validation(info) if info.members else None,
        "models": [_single(m) for m in members],
    }


def check(detector: Detector, text: str = CHECK_TEXT) -> dict[str, Any]:
    """Score ``text`` through the verdict path; its verdict, ``p_llm`` and seconds taken."""
    start = time.perf_counter()
    score = detector.score([text])[0]
    verdict = judge(text, score, detector.info, None)
    return {
        "seconds": round(time.perf_counter() - start, 4),
        "tokens": score.tokens,
        "p_llm": None if verdict.p_llm is None else round(verdict.p_llm, 6),
        "verdict": verdict.verdict,
        "reasons": list(verdict.reasons),
    }


def _single(detector: Detector) -> dict[str, Any]:
    info: ModelInfo = detector.info
    raw = info.raw
    role = "cpu" if detector.precision == "int8" else "fp32"
    served = info.file(role)
    quant = raw.get("quantization") or {}
    out: dict[str, Any] = {
        "model": info.label,
        "directory": info.path.name,
        "base": (raw.get("base") or {}).get("name"),
        "file": served.name,
        "file_bytes": served.stat().st_size,
        "providers": detector.session.providers if detector.session is not None else [],
        "max_length": info.max_length,
        "calibration": {"method": info.calibration.method, "a": info.calibration.a,
                        "b": info.calibration.b},
        "thresholds": {"llm": info.thresholds.llm, "human": info.thresholds.human,
                       "target_fpr": info.thresholds.target_fpr},
        "abstain": {"min_words": info.min_words, "min_english": info.min_english},
        "familiarity_threshold": None if info.familiarity is None else info.familiarity.threshold,
        "validation": _validation(info),
        "agreement_int8_fp32": raw.get("agreement_int8_fp32"),
    }
    if role == "cpu" and info.files["cpu"] != info.files.get("fp32") and quant:
        out["int8_weight_bits"] = int8_weight_bits(raw)
        if quant.get("embedding_bits"):
            out["embedding_bits"] = quant["embedding_bits"]
    return out


def _validation(info: ModelInfo) -> dict[str, Any]:
    return {k: info.validation[k] for k in _VALIDATION_KEYS if k in info.validation}


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

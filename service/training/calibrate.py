"""Calibration, thresholds and validation figures of an exported model directory.

Scores the held-out validation texts through the runtime's own inference path
(:class:`service.detector.Detector`, int8 model) so the calibration matches
exactly what the service will compute, fits Platt scaling on the raw margins,
chooses the verdict thresholds, and measures how far the int8 model strays
from the fp32 one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CrowdguardError, TrainingError
from ..evaluation import (auroc, choose_thresholds, fit_platt, fpr_resolvable, platt_probability,
                          summarize, verdicts_for)
from ..settings import cpu_count

__all__ = ["CalibrationResult", "calibrate", "calibrate_margins", "held_out_margins"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CalibrationResult:
    """What :func:`calibrate` adds to the model metadata."""

    a: float
    b: float
    thresholds: dict[str, float]
    validation: dict[str, Any]
    agreement: dict[str, Any]
    cpu_precision: str = "int8"  # "fp32" when int8 quantization broke the model

    def metadata(self, target_fpr: float) -> dict[str, Any]:
        """The ``calibration``, ``thresholds``, ``validation`` and ``agreement_int8_fp32`` entries."""
        return {
            "calibration": {"method": "platt", "a": self.a, "b": self.b},
            "thresholds": {"llm": self.thresholds["llm"], "human": self.thresholds["human"],
                           "target_fpr": target_fpr},
            "validation": self.validation,
            "agreement_int8_fp32": self.agreement,
        }


def _margins(model_dir: Path, texts: Sequence[str], precision: str) -> np.ndarray:
    from ..detector import Detector

    try:
        det = Detector.load(model_dir, device="cpu", calibrated=False, precision=precision,
                            threads=cpu_count())
        return np.asarray(det.margins(list(texts)), dtype=np.float64)
    except CrowdguardError as exc:
        raise TrainingError(f"scoring validation texts with the {precision} model failed: {exc}")\
            from exc


#: How much validation AUROC int8 may lose against fp32 before training serves fp32 instead.
#: Both checks below need MIN_PER_CLASS validation texts per class: with fewer, one swapped
#: pair moves the AUROC, and one changed verdict the share, past the tolerance.
MAX_INT8_AUROC_LOSS = 0.05
MIN_PER_CLASS = 10
#: The largest share of validation verdicts int8 may change against fp32 (both read with
#: the calibration and thresholds fitted on int8) before training serves fp32 instead.
#: A model can keep its ranking and still move scores across the thresholds: the 4-bit
#: multilingual-e5-small, in 7-bit int8, changed 66% of its verdicts at an AUROC loss
#: under 0.05; MiniLM's int8 changes under 1%.
MAX_INT8_VERDICT_CHANGE = 0.10


def quantization_damage(y: np.ndarray, z_int8: np.ndarray, z_fp32: np.ndarray, *,
                        verdict_change: float = 0.0) -> str | None:
    """Why the int8 model is unfit, or None.

    Unfit: it ranks validation texts clearly worse than fp32, or it changes more
    than :data:`MAX_INT8_VERDICT_CHANGE` of their verdicts (``verdict_change``).
    Judged only with at least :data:`MIN_PER_CLASS` validation texts per class.
    """
    if min(int(y.sum()), int(y.size - y.sum())) < MIN_PER_CLASS:
        log.info("too few validation texts per class to compare int8 with fp32")
        return None
    if verdict_change > MAX_INT8_VERDICT_CHANGE:
        return f"int8 changes {100 * verdict_change:.0f}% of the validation verdicts of fp32"
    a8, a32 = auroc(y, z_int8), auroc(y, z_fp32)
    if a8 is not None and a32 is not None and a8 < a32 - MAX_INT8_AUROC_LOSS:
        return f"validation AUROC {a32:.3f} in fp32 but {a8:.3f} in int8"
    return None


def _fit(z: np.ndarray, y: np.ndarray, target_fpr: float,
         target_fnr: float) -> tuple[float, float, dict[str, float]]:
    a, b = fit_platt(z, y)
    thresholds = choose_thresholds(y, platt_probability(z, a, b), target_fpr=target_fpr,
                                   target_fnr=target_fnr)
    return a, b, thresholds


def _agreement(z_int8: np.ndarray, z_fp32: np.ndarray, a: float, b: float,
               thresholds: dict[str, float]) -> dict[str, Any]:
    p_int8 = platt_probability(z_int8, a, b)
    p_fp32 = platt_probability(z_fp32, a, b)
    differ = np.mean(np.asarray(verdicts_for(p_fp32, thresholds))
                     != np.asarray(verdicts_for(p_int8, thresholds)))
    return {
        "n": int(z_int8.size),
        "verdicts_differ": round(float(differ), 6),
        "max_abs_dp": round(float(np.max(np.abs(p_int8 - p_fp32))), 6),
    }


def _warn_if_fpr_unresolvable(n_human: int, target_fpr: float) -> None:
    if not fpr_resolvable(n_human, target_fpr):
        log.warning("only %d human texts in the validation part: the llm threshold goes above "
                    "all of their scores, and a false-positive rate of %g cannot be checked on "
                    "them (that needs at least %d); add human texts or raise --val-fraction",
                    n_human, target_fpr, int(np.ceil(1 / target_fpr - 1e-9)))


def held_out_margins(model_dir: Path, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Raw margins of held-out ``texts`` by the model in ``model_dir``: (int8, fp32).

    ``model_dir`` must already hold loadable metadata (the identity
    calibration is fine): the runtime loader reads it to find the files.
    """
    z_int8 = _margins(model_dir, texts, "int8")
    if not np.isfinite(z_int8).all():
        raise TrainingError("the int8 model produced non-finite scores; training diverged "
                            "(lower the learning rate)")
    return z_int8, _margins(model_dir, texts, "fp32")


def calibrate(model_dir: Path, texts: Sequence[str], labels: Sequence[int], *,
              target_fpr: float = 0.01, target_fnr: float = 0.05) -> CalibrationResult:
    """Fit calibration and thresholds on validation ``texts`` scored by the model in ``model_dir``.

    ``model_dir`` must already hold loadable metadata (the identity
    calibration is fine): the runtime loader reads it to find the files.
    """
    if not texts:
        raise TrainingError("no validation texts to calibrate on; raise val_fraction "
                            "or add training data")
    z_int8, z_fp32 = held_out_margins(model_dir, texts)
    return calibrate_margins(labels, z_int8, z_fp32, target_fpr=target_fpr,
                             target_fnr=target_fnr)


def calibrate_margins(labels: Sequence[int], z_int8: np.ndarray, z_fp32: np.ndarray, *,
                      target_fpr: float = 0.01, target_fnr: float = 0.05) -> CalibrationResult:
    """Calibration, thresholds and figures from held-out texts' raw margins (int8 and fp32).

    The margins may come from the model itself (a validation split) or from
    models that each held the texts out (cross-fitting, ``train --folds``).
    """
    y = np.asarray(labels, dtype=np.int64)
    _warn_if_fpr_unresolvable(int(np.sum(y == 0)), target_fpr)
    a, b, thresholds = _fit(z_int8, y, target_fpr, target_fnr)
    agreement = _agreement(z_int8, z_fp32, a, b, thresholds)
    damage = quantization_damage(y, z_int8, z_fp32,
                                 verdict_change=agreement["verdicts_differ"])
    if damage:
        log.warning("int8 quantization broke this model (%s): the CPU path will serve fp32, "
                    "about 4 times larger and slower", damage)
        a, b, thresholds = _fit(z_fp32, y, target_fpr, target_fnr)
        agreement = _agreement(z_int8, z_fp32, a, b, thresholds)
    z_cpu = z_fp32 if damage else z_int8
    p_cpu = platt_probability(z_cpu, a, b)
    validation = summarize(y, p_cpu, verdicts_for(p_cpu, thresholds))
    log.info("calibration a=%.4f b=%.4f thresholds llm=%.4f human=%.4f; int8/fp32 verdicts "
             "differ on %.1f%%", a, b, thresholds["llm"], thresholds["human"],
             100 * agreement["verdicts_differ"])
    return CalibrationResult(a, b, thresholds, validation, agreement,
                             cpu_precision="fp32" if damage else "int8")

"""Building a model directory's familiarity check after export.

The features of the training texts are computed through the runtime's own
inference path (the CPU file, as the service computes them) and kept as a
:class:`~service.detector.familiarity.TrainingFeatures` reference; the
threshold is the ``quantile`` of the distances of the held-out validation
texts: texts like the training data exceed it about ``1 - quantile`` of the
time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..detector.familiarity import FAMILIARITY_FILE, TrainingFeatures
from ..errors import CrowdguardError, TrainingError
from ..settings import cpu_count

__all__ = ["fit_familiarity", "held_out_distances", "DEFAULT_QUANTILE", "DEFAULT_K"]

log = logging.getLogger(__name__)

#: Share of validation texts that stay within the threshold.
DEFAULT_QUANTILE = 0.99
#: Nearest training texts the distance averages over.
DEFAULT_K = 10


def _features(det: Any, texts: Sequence[str]) -> np.ndarray:
    try:
        return det.features(list(texts))
    except CrowdguardError as exc:
        raise TrainingError(f"computing features for the familiarity check failed: {exc}") \
            from exc


def _load(model_dir: Path) -> Any:
    from ..detector import Detector

    try:
        return Detector.load(model_dir, device="cpu", calibrated=False, threads=cpu_count())
    except CrowdguardError as exc:
        raise TrainingError(f"loading {model_dir} for the familiarity check failed: {exc}") \
            from exc


def _reference(train_x: np.ndarray, k: int) -> TrainingFeatures:
    try:
        return TrainingFeatures.fit(train_x, k=k)
    except ValueError as exc:
        raise TrainingError(f"cannot keep the training features: {exc}") from exc


def held_out_distances(model_dir: Path, train_texts: Sequence[str], held_texts: Sequence[str],
                       *, k: int = DEFAULT_K) -> np.ndarray:
    """Distances of ``held_texts`` from ``train_texts``, both in the features of ``model_dir``.

    For cross-fitting (``train --folds``): each fold's model measures the texts it
    held out, and the pooled distances choose the served model's threshold.
    """
    det = _load(model_dir)
    return _reference(_features(det, train_texts), k).distances(_features(det, held_texts))


def fit_familiarity(model_dir: Path, train_texts: Sequence[str],
                    val_texts: Sequence[str] | None = None, *,
                    held_out: np.ndarray | None = None, quantile: float = DEFAULT_QUANTILE,
                    k: int = DEFAULT_K, layer: int | None = None) -> dict[str, Any]:
    """Write ``familiarity.npz`` into ``model_dir``; return the metadata's ``familiarity`` entry.

    The threshold is the ``quantile`` of the distances of ``val_texts`` measured
    here, or of ``held_out``, distances already measured (:func:`held_out_distances`).
    ``model_dir`` must already hold loadable metadata naming the CPU file;
    ``layer`` (recorded in the entry) is the encoder layer the features come from.
    """
    if not 0.5 <= quantile < 1.0:
        raise TrainingError(f"familiarity quantile must be in [0.5, 1), got {quantile}")
    if (val_texts is None) == (held_out is None):
        raise TrainingError("fit_familiarity needs either validation texts or held-out "
                            "distances")
    det = _load(model_dir)
    ref = _reference(_features(det, train_texts), k)
    ref.save(model_dir / FAMILIARITY_FILE)
    val_d = ref.distances(_features(det, val_texts)) if held_out is None else held_out
    threshold = float(np.quantile(val_d, quantile))
    entry = {
        "method": "knn-cosine",
        "features": "mean of encoder layer hidden states" if layer is None
        else f"mean of encoder layer {layer} hidden states",
        "threshold": round(threshold, 6),
        "quantile": quantile,
        "k": ref.k,
        "dim": ref.dim,
        "train_texts": int(ref.reference.shape[0]),
        "validation_median": round(float(np.median(val_d)), 6),
    }
    if layer is not None:
        entry["layer"] = layer
    log.info("familiarity threshold %.4f (validation quantile %.2f, median %.4f; %d training "
             "texts, k=%d)", threshold, quantile, entry["validation_median"],
             entry["train_texts"], ref.k)
    return entry

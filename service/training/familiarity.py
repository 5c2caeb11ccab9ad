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

__all__ = ["fit_familiarity", "held_out_distances", "record_familiarity", "DEFAULT_QUANTILE",
           "DEFAULT_K"]

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
                       *, k: int = DEFAULT_K) -> tuple[TrainingFeatures, np.ndarray]:
    """The reference of ``train_texts`` and the distances of ``held_texts`` from it.

    Both in the features of ``model_dir``'s CPU file, as the service computes them.
    ``model_dir`` must already hold loadable metadata naming that file.
    """
    det = _load(model_dir)
    ref = _reference(_features(det, train_texts), k)
    return ref, ref.distances(_features(det, held_texts))


def record_familiarity(model_dir: Path, ref: TrainingFeatures, held_out: np.ndarray, *,
                       quantile: float = DEFAULT_QUANTILE,
                       layer: int | None = None) -> dict[str, Any]:
    """Save ``ref`` into ``model_dir``; return the metadata's ``familiarity`` entry.

    The threshold is the ``quantile`` of the held-out distances ``held_out``: a
    model's own validation texts, or, for cross-fitting (``train --folds``), the
    pooled distances each fold model measured on the fold it held out.
    ``layer`` (recorded in the entry) is the encoder layer the features come from.
    """
    if not 0.5 <= quantile < 1.0:
        raise TrainingError(f"familiarity quantile must be in [0.5, 1), got {quantile}")
    ref.save(model_dir / FAMILIARITY_FILE)
    threshold = float(np.quantile(held_out, quantile))
    entry = {
        "method": "knn-cosine",
        "features": "mean of encoder layer hidden states" if layer is None
        else f"mean of encoder layer {layer} hidden states",
        "threshold": round(threshold, 6),
        "quantile": quantile,
        "k": ref.k,
        "dim": ref.dim,
        "train_texts": int(ref.reference.shape[0]),
        "validation_median": round(float(np.median(held_out)), 6),
    }
    if layer is not None:
        entry["layer"] = layer
    log.info("familiarity threshold %.4f (validation quantile %.2f, median %.4f; %d training "
             "texts, k=%d)", threshold, quantile, entry["validation_median"],
             entry["train_texts"], ref.k)
    return entry


def fit_familiarity(model_dir: Path, train_texts: Sequence[str], val_texts: Sequence[str], *,
                    quantile: float = DEFAULT_QUANTILE, k: int = DEFAULT_K,
                    layer: int | None = None) -> dict[str, Any]:
    """Write ``familiarity.npz`` into ``model_dir``; return the metadata's ``familiarity`` entry.

    ``model_dir`` must already hold loadable metadata naming the CPU file;
    ``layer`` (recorded in the entry) is the encoder layer the features come from.
    """
    ref, val_d = held_out_distances(model_dir, train_texts, val_texts, k=k)
    return record_familiarity(model_dir, ref, val_d, quantile=quantile, layer=layer)

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

__all__ = ["fit_familiarity", "DEFAULT_QUANTILE", "DEFAULT_K"]

log = logging.getLogger(__name__)

#: Share of validation texts that stay within the threshold.
DEFAULT_QUANTILE = 0.99
#: Nearest training texts the distance averages over.
DEFAULT_K = 10


def fit_familiarity(model_dir: Path, train_texts: Sequence[str], val_texts: Sequence[str], *,
                    quantile: float = DEFAULT_QUANTILE, k: int = DEFAULT_K,
                    layer: int | None = None) -> dict[str, Any]:
    """Write ``familiarity.npz`` into ``model_dir``; return the metadata's ``familiarity`` entry.

    ``model_dir`` must already hold loadable metadata naming the CPU file;
    ``layer`` (recorded in the entry) is the encoder layer the features come from.
    """
    from ..detector import Detector

    if not 0.5 <= quantile < 1.0:
        raise TrainingError(f"familiarity quantile must be in [0.5, 1), got {quantile}")
    try:
        det = Detector.load(model_dir, device="cpu", calibrated=False, threads=cpu_count())
        train_x = det.features(list(train_texts))
        val_x = det.features(list(val_texts))
    except CrowdguardError as exc:
        raise TrainingError(f"computing features for the familiarity check failed: {exc}") \
            from exc
    try:
        ref = TrainingFeatures.fit(train_x, k=k)
    except ValueError as exc:
        raise TrainingError(f"cannot keep the training features: {exc}") from exc
    ref.save(model_dir / FAMILIARITY_FILE)
    val_d = ref.distances(val_x)
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

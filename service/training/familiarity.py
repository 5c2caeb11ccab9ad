"""Fitting a model directory's feature distribution (the familiarity check) after export.

The features of the training texts are computed through the runtime's own
inference path (the CPU file, as the service computes them), a
:class:`~service.detector.familiarity.FeatureDistribution` is fitted on them,
and the threshold is the ``quantile`` of the distances of the held-out
validation texts: texts like the training data exceed it about
``1 - quantile`` of the time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..detector.familiarity import FAMILIARITY_FILE, FeatureDistribution
from ..errors import CrowdguardError, TrainingError
from ..settings import cpu_count

__all__ = ["fit_familiarity", "DEFAULT_QUANTILE"]

log = logging.getLogger(__name__)

#: Share of validation texts that stay within the threshold.
DEFAULT_QUANTILE = 0.99


def fit_familiarity(model_dir: Path, train_texts: Sequence[str], train_labels: Sequence[int],
                    val_texts: Sequence[str], *, quantile: float = DEFAULT_QUANTILE,
                    shrinkage: float = 0.1) -> dict[str, Any]:
    """Write ``familiarity.npz`` into ``model_dir``; return the metadata's ``familiarity`` entry.

    ``model_dir`` must already hold loadable metadata naming the CPU file.
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
        dist = FeatureDistribution.fit(train_x, np.asarray(train_labels), shrinkage=shrinkage)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise TrainingError(f"cannot fit the training feature distribution: {exc}") from exc
    dist.save(model_dir / FAMILIARITY_FILE)
    val_d = dist.distances(val_x)
    train_d = dist.distances(train_x)
    threshold = float(np.quantile(val_d, quantile))
    entry = {
        "method": "mahalanobis",
        "threshold": round(threshold, 4),
        "quantile": quantile,
        "shrinkage": shrinkage,
        "dim": dist.dim,
        "train_texts": len(train_texts),
        "validation_median": round(float(np.median(val_d)), 4),
        "train_median": round(float(np.median(train_d)), 4),
        "train_above": round(float(np.mean(train_d > threshold)), 6),
    }
    log.info("familiarity threshold %.2f (validation quantile %.2f; median distance: "
             "train %.2f, validation %.2f)", threshold, quantile, entry["train_median"],
             entry["validation_median"])
    return entry

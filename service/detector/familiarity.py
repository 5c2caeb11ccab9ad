"""How unlike the model's training data a text is: a Mahalanobis distance on its features.

A classifier fine-tuned on some domains and writers still gives confident
scores to writing it never saw (essays by non-native English writers are the
known case), and those scores are where false accusations come from. So a
model directory may carry the distribution of its training texts' *features*
(the vector the classification head reads): one mean per class and a shared,
shrunk covariance (Lee et al. 2018). A text's distance is the smaller of its
two Mahalanobis distances to the class means. ``crowdguard train`` sets the
threshold at a high quantile of the distances of its held-out validation
texts, so about ``1 - quantile`` of texts like the training data exceed it; a
text beyond it gets no ``llm`` or ``human`` verdict (see :mod:`service.verdict`).

Training fits the distribution on the features of the CPU file (int8 as a
rule); the fp32 file of the GPU path gives features that differ from them by
the int8 rounding only.

Pure numpy, shared by the runtime (:class:`~service.detector.Detector`) and by
training, which fits it with :meth:`FeatureDistribution.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError

__all__ = ["FEATURES_OUTPUT", "FAMILIARITY_FILE", "FeatureDistribution"]

#: Name of the ONNX graph output that holds the classification head's input.
FEATURES_OUTPUT = "features"
FAMILIARITY_FILE = "familiarity.npz"


@dataclass(frozen=True)
class FeatureDistribution:
    """Class means (``[classes, dim]``) and the precision matrix (``[dim, dim]``) of features."""

    means: np.ndarray
    precision: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, *,
            shrinkage: float = 0.1) -> FeatureDistribution:
        """Fit class means and a covariance shared by the classes, shrunk towards its trace.

        ``shrinkage`` mixes the covariance with ``trace/dim * I`` so that a few
        thousand texts give a well-conditioned precision matrix.
        """
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels)
        if x.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(f"features {x.shape} and labels {y.shape} do not match")
        classes = np.unique(y)
        if classes.size < 2 or x.shape[0] <= classes.size:
            raise ValueError("fitting needs texts of both classes")
        if not 0.0 <= shrinkage < 1.0:
            raise ValueError(f"shrinkage must be in [0, 1), got {shrinkage}")
        means = np.stack([x[y == c].mean(axis=0) for c in classes])
        centered = x - means[np.searchsorted(classes, y)]
        cov = centered.T @ centered / (x.shape[0] - classes.size)
        dim = cov.shape[0]
        target = max(float(np.trace(cov)) / dim, 1e-6)  # identical texts: no spread at all
        cov = (1.0 - shrinkage) * cov + shrinkage * target * np.eye(dim)
        precision = np.linalg.inv(cov)
        return cls(means.astype(np.float32), ((precision + precision.T) / 2).astype(np.float32))

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``features`` to the nearest class mean."""
        x = np.atleast_2d(np.asarray(features, dtype=np.float32))
        if x.shape[1] != self.dim:
            raise ValueError(f"features have {x.shape[1]} dimensions, the distribution {self.dim}")
        diff = x[:, None, :] - self.means[None, :, :]            # [n, classes, dim]
        sq = np.einsum("ncd,de,nce->nc", diff, self.precision, diff)
        return np.sqrt(np.maximum(sq.min(axis=1), 0.0)).astype(np.float64)

    # -- files ----------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        with path.open("wb") as f:
            np.savez(f, means=self.means, precision=self.precision)
        return path

    @classmethod
    def load(cls, path: Path) -> FeatureDistribution:
        try:
            with np.load(path, allow_pickle=False) as npz:
                means, precision = npz["means"], npz["precision"]
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"cannot read the feature distribution {path}: {exc}") from exc
        if means.ndim != 2 or precision.shape != (means.shape[1], means.shape[1]):
            raise ModelError(f"{path}: means {means.shape} and precision {precision.shape} "
                             "do not fit together; re-create the model with `crowdguard train`")
        return cls(means.astype(np.float32), precision.astype(np.float32))

"""How unlike the model's training data a text is: its distance to the nearest training texts.

A classifier fine-tuned on some genres and writers still gives confident
scores to writing it never saw (essays by non-native English writers are the
known case), and those scores are where false accusations come from. So a
model directory may carry the *features* of its training texts: the
attention-masked mean of the hidden states of an early encoder layer (a third
of the way up), L2-normalized. Early layers keep what kind of text it is; the
classifier's own input (the pooled last layer) has been bent towards
human-vs-LLM by fine-tuning and lands an unfamiliar text in one of the two
classes, where it looks familiar. A text's distance is one minus its mean
cosine similarity to its ``k`` nearest training texts. ``crowdguard train``
sets the threshold at a high quantile of the distances of its held-out
validation texts, so about ``1 - quantile`` of texts like the training data
exceed it; a text beyond it gets no ``llm`` or ``human`` verdict (see
:mod:`service.verdict`).

Measured when this was chosen (a model trained on DetectRL only, the 99%
quantile): 97% of GPTurk's crowd summaries, a genre it never saw, lay beyond
the threshold, while none of the GPTurk summaries of *unseen abstracts* did
once summaries of other abstracts were among the training texts: the check
tells a new kind of writing from a new topic (an exploratory check on fp32
features). Distance on the classifier's own input (Mahalanobis, the first
version) found 17% of the new genre's human summaries unfamiliar, and none of
the 16 that model accused.

Training stores the features of the CPU file (int8 as a rule); the fp32 file
of the GPU path gives features that differ from them by the int8 rounding.

Pure numpy, shared by the runtime (:class:`~service.detector.Detector`) and by
training, which builds it with :meth:`TrainingFeatures.fit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError

__all__ = ["FEATURES_OUTPUT", "FAMILIARITY_FILE", "TrainingFeatures"]

#: Name of the ONNX graph output that holds a text's features.
FEATURES_OUTPUT = "features"
FAMILIARITY_FILE = "familiarity.npz"


def _normalized(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass(frozen=True)
class TrainingFeatures:
    """Unit-length features of the training texts (``[n, dim]``) and the ``k`` of the distance.

    Held in float32 (about 6 MB for 4,000 texts of 384 values); saved in float16.
    """

    reference: np.ndarray
    k: int = 10

    @property
    def dim(self) -> int:
        return int(self.reference.shape[1])

    @classmethod
    def fit(cls, features: np.ndarray, *, k: int = 10, max_texts: int = 20_000,
            seed: int = 0) -> TrainingFeatures:
        """Keep (at most ``max_texts``, drawn at random) training features, normalized."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] < 1:
            raise ValueError(f"features must be [texts, dim] with texts >= 1, got {x.shape}")
        if not 1 <= k:
            raise ValueError(f"k must be >= 1, got {k}")
        if x.shape[0] > max_texts:
            x = x[np.random.default_rng(seed).choice(x.shape[0], max_texts, replace=False)]
        return cls(_normalized(x), min(k, x.shape[0]))

    def distances(self, features: np.ndarray, *, chunk: int = 256) -> np.ndarray:
        """One minus the mean cosine similarity of each row to its ``k`` nearest training texts."""
        x = _normalized(features)
        if x.shape[1] != self.dim:
            raise ValueError(f"features have {x.shape[1]} dimensions, the reference {self.dim}")
        ref = self.reference
        out = np.empty(x.shape[0], dtype=np.float64)
        for start in range(0, x.shape[0], chunk):
            sims = x[start:start + chunk] @ ref.T
            top = np.partition(sims, sims.shape[1] - self.k, axis=1)[:, -self.k:]
            out[start:start + chunk] = 1.0 - top.mean(axis=1)
        return np.maximum(out, 0.0)

    # -- files ----------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        with path.open("wb") as f:
            np.savez_compressed(f, reference=self.reference.astype(np.float16),
                                k=np.array(self.k))
        return path

    @classmethod
    def load(cls, path: Path) -> TrainingFeatures:
        try:
            with np.load(path, allow_pickle=False) as npz:
                reference, k = npz["reference"], int(npz["k"])
        except (OSError, KeyError, ValueError) as exc:
            raise ModelError(f"cannot read the training features {path}: {exc}") from exc
        if reference.ndim != 2 or reference.shape[0] < 1 or not 1 <= k <= reference.shape[0]:
            raise ModelError(f"{path}: reference {reference.shape} with k={k} is not usable; "
                             "re-create the model with `crowdguard train`")
        return cls(reference.astype(np.float32), k)

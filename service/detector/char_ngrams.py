"""A character n-gram model: TF-IDF of character 2-5-grams within words, and a linear layer.

Not an encoder: no tokenizer and no ONNX file, about 1 MB, and hundreds of
texts a second on one core. It fails on other writing than the encoders do, so
it serves as a panel's second *veto* member: beside the MiniLM veto it removed
most of the accusations that a second seed of that veto let through
(docs/detector-results.md#char-ngram-veto).

Its directory holds ``crowdguard-model.json`` with ``"kind": "char-ngrams"``
and ``char_ngrams.npz`` (``files.cpu``, also named as ``files.fp32``: one file
serves every precision). The file holds the n-grams (``vocab``: UTF-8, one per
line), their inverse document frequencies (``idf``), the weights (``coef``)
and the bias (``intercept``). A text is normalized (:func:`service.text.normalize`),
lower-cased and cut at ``max_length`` characters; each word, padded with one
space on each side, gives its n-grams of 2 to 5 characters (a word shorter
than ``n`` gives itself once, as scikit-learn's ``char_wb`` analyzer does).
Each known n-gram weighs ``(1 + log count) * idf``, the vector is scaled to
unit length, and its dot product with ``coef`` plus ``intercept`` is the
margin, calibrated like an encoder's (:class:`~.model_dir.Calibration`).
``crowdguard train --base char-ngrams`` writes such a directory
(:mod:`service.training.char_ngrams`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..text import normalize
from .detector import Detector, TextScore
from .model_dir import CHAR_NGRAMS_KIND, ModelInfo

__all__ = ["CHAR_NGRAMS_KIND", "WEIGHTS_FILE", "NGRAM_RANGE", "CharNgramWeights",
           "CharNgramDetector", "char_ngrams", "text_for_ngrams"]

WEIGHTS_FILE = "char_ngrams.npz"
NGRAM_RANGE = (2, 5)


def text_for_ngrams(text: str, max_chars: int) -> tuple[str, bool]:
    """The text as the model reads it (normalized, lower-cased, cut), and whether it was cut."""
    clean = normalize(text).lower()
    return clean[:max_chars], len(clean) > max_chars


def char_ngrams(text: str, lo: int = NGRAM_RANGE[0], hi: int = NGRAM_RANGE[1]) -> list[str]:
    """The character ``lo``-``hi``-grams of each whitespace-separated word, padded with spaces."""
    out: list[str] = []
    for word in text.split():
        w = f" {word} "
        size = len(w)
        for n in range(lo, hi + 1):
            if size <= n:
                out.append(w)  # a short word counts once, whole
                break
            out.extend(w[i:i + n] for i in range(size - n + 1))
    return out


@dataclass(frozen=True)
class CharNgramWeights:
    """The n-grams, their idf, the weights and the bias of one model."""

    vocab: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray
    intercept: float

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray, int]:
        """(n-gram indices, unit-length TF-IDF values, n-grams read) of an already cut text."""
        grams = char_ngrams(text)
        counts = Counter(g for g in grams if g in self.vocab)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64), len(grams)
        idx = np.fromiter((self.vocab[g] for g in counts), dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        vals = (1.0 + np.log(tf)) * self.idf[idx]
        return idx, vals / np.linalg.norm(vals), len(grams)

    def margin(self, idx: np.ndarray, vals: np.ndarray) -> float:
        return float(vals @ self.coef[idx]) + self.intercept

    def save(self, path: Path) -> None:
        order = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez_compressed(
            path, vocab=np.frombuffer("\n".join(order).encode("utf-8"), dtype=np.uint8),
            idf=self.idf.astype(np.float32), coef=self.coef.astype(np.float32),
            intercept=np.float64(self.intercept))

    @classmethod
    def load(cls, path: Path) -> CharNgramWeights:
        """Read and check ``path``; :class:`ModelError` saying what is wrong."""
        try:
            with np.load(path) as z:
                raw = {k: z[k] for k in ("vocab", "idf", "coef", "intercept")}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{path}: not a char n-gram weights file ({exc}); re-create the "
                             "model with `crowdguard train --base char-ngrams`") from exc
        grams = bytes(raw["vocab"]).decode("utf-8").split("\n") if raw["vocab"].size else []
        idf = raw["idf"].astype(np.float64)
        coef = raw["coef"].astype(np.float64)
        if not (len(grams) == idf.size == coef.size) or len(set(grams)) != len(grams):
            raise ModelError(f"{path}: {len(grams)} n-grams, {idf.size} idf values and "
                             f"{coef.size} weights (or repeated n-grams); the file is damaged")
        intercept = float(raw["intercept"])
        if not (np.isfinite(idf).all() and np.isfinite(coef).all() and math.isfinite(intercept)):
            raise ModelError(f"{path}: non-finite weights; the file is damaged")
        return cls({g: i for i, g in enumerate(grams)}, idf, coef, intercept)


class CharNgramDetector(Detector):
    """The scoring interface of :class:`~.detector.Detector` over a char n-gram model.

    It runs in numpy on the CPU whatever device or precision is asked for, and
    has no familiarity check (``distance`` is ``None``).
    """

    def __init__(self, info: ModelInfo, weights: CharNgramWeights, *,
                 calibrated: bool = True) -> None:  # noqa: D107
        self.info = info
        self.weights = weights
        self.familiarity = None
        self.session = None
        self.calibrated = calibrated
        self.precision = "fp32"  # float weights; files.cpu and files.fp32 name the one file
        self.batch_size = 256

    @classmethod
    def from_info(cls, info: ModelInfo, *, calibrated: bool = True) -> CharNgramDetector:
        return cls(info, CharNgramWeights.load(info.file("cpu")), calibrated=calibrated)

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        return [self._score_one(t) for t in texts]

    def features(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelError(f"{self.info.path} is a char n-gram model; it has no familiarity "
                         "features")

    def _score_one(self, text: str) -> TextScore:
        cut, truncated = text_for_ngrams(text, self.info.max_length)
        idx, vals, read = self.weights.vector(cut)
        margin = self.weights.margin(idx, vals)
        return TextScore(self._calibrate(margin), margin, read, truncated, None)

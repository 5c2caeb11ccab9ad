"""``crowdguard train --base char-ngrams``: fit a char n-gram model (:mod:`service.detector.char_ngrams`).

The same data handling as the encoders' training (:func:`~.data.load_dataset`,
the seeded :func:`~.data.split_validation`, so a char n-gram model trained on
an encoder's files with its seed holds out the same texts), then:

1. the n-grams of the training part seen in at least two texts, the
   :data:`MAX_FEATURES` most frequent kept, with smoothed inverse document
   frequencies ``ln((1 + n) / (1 + df)) + 1``;
2. an L2-penalized logistic regression on the unit-length TF-IDF vectors
   (full-batch L-BFGS in torch, the bias not penalized) for each penalty of
   :data:`C_GRID`, keeping the one with the lowest log loss on the validation part;
3. Platt calibration, thresholds and validation figures on the validation part
   (:func:`~.calibrate.calibrate_margins`, as for an encoder).

Its settings are those of the probe that measured the idea first, scikit-learn's
common choices (docs/detector-results.md#char-ngram-veto), and are not options.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..detector.char_ngrams import (NGRAM_RANGE, WEIGHTS_FILE, CharNgramWeights, char_ngrams,
                                    text_for_ngrams)
from ..detector.model_dir import CHAR_NGRAMS_KIND, load_model_info
from ..errors import InputError, TrainingError
from .calibrate import calibrate_margins
from .data import Example, load_dataset
from .export import metadata_header, write_metadata, write_model_card
from .train import ABSTAIN, LABEL_NAMES, TARGET_FNR, checked_split, dev_version

__all__ = ["CHAR_NGRAMS_BASE", "C_GRID", "MAX_FEATURES", "MAX_CHARS", "MIN_DF",
           "train_char_ngrams", "vocabulary"]

log = logging.getLogger(__name__)

#: The ``--base`` name that selects this model.
CHAR_NGRAMS_BASE = CHAR_NGRAMS_KIND
#: Penalties tried (scikit-learn's ``C``: larger is weaker).
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
MAX_FEATURES = 300_000
MIN_DF = 2
#: Characters of a text read (an encoder reads its first 256 tokens, about 1,000 characters).
MAX_CHARS = 10_000


def vocabulary(texts: Sequence[str]) -> tuple[dict[str, int], np.ndarray]:
    """The n-grams kept (index by n-gram, sorted) and their smoothed idf."""
    df: Counter[str] = Counter()
    tf: Counter[str] = Counter()
    for text in texts:
        grams = Counter(char_ngrams(text))
        df.update(grams.keys())
        tf.update(grams)
    kept = [g for g, d in df.items() if d >= MIN_DF]
    kept.sort(key=lambda g: (-tf[g], g))
    kept = sorted(kept[:MAX_FEATURES])
    if not kept:
        raise InputError("no character n-gram occurs in two training texts; add training data",
                         reason="no_features")
    n = len(texts)
    idf = np.array([np.log((1 + n) / (1 + df[g])) + 1.0 for g in kept], dtype=np.float64)
    return {g: i for i, g in enumerate(kept)}, idf


def _rows(weights: CharNgramWeights, texts: Sequence[str]) -> tuple[np.ndarray, ...]:
    """COO parts (rows, columns, values) of the unit-length TF-IDF vectors of ``texts``."""
    rows, cols, vals = [], [], []
    for r, text in enumerate(texts):
        idx, v, _ = weights.vector(text)
        rows.append(np.full(idx.size, r, dtype=np.int64))
        cols.append(idx)
        vals.append(v)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def _fit_logistic(coo: tuple[np.ndarray, ...], shape: tuple[int, int], y: np.ndarray,
                  c: float) -> tuple[np.ndarray, float]:
    """Weights and bias minimizing ``sum(log loss) + |w|^2 / (2 c)`` (full-batch L-BFGS)."""
    import torch

    rows, cols, vals = coo
    x = torch.sparse_coo_tensor(np.stack([rows, cols]), vals, shape, dtype=torch.float64,
                                check_invariants=True)
    x = x.coalesce()
    target = torch.as_tensor(y, dtype=torch.float64)
    w = torch.zeros(shape[1], 1, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=2000, tolerance_grad=1e-7,
                            tolerance_change=1e-12, history_size=20,
                            line_search_fn="strong_wolfe")
    n = float(shape[0])

    def closure() -> Any:
        opt.zero_grad()
        z = torch.sparse.mm(x, w).squeeze(1) + b
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, target, reduction="sum")
                + 0.5 * (w * w).sum() / c) / n
        loss.backward()
        return loss

    opt.step(closure)
    coef = w.detach().numpy()[:, 0].copy()
    if not np.isfinite(coef).all():
        raise TrainingError("the logistic regression diverged (non-finite weights)")
    return coef, float(b.detach()[0])


def _log_loss(y: np.ndarray, z: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, -np.where(y == 1, z, -z))))


def train_char_ngrams(data: list[Path], out: Path, *, seed: int = 13,
                      val_fraction: float = 0.15, target_fpr: float = 0.01,
                      name: str = "crowdguard-detector", version: str | None = None,
                      group_field: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Fit, calibrate and write a char n-gram model into ``out``; return its metadata.

    ``out`` receives ``char_ngrams.npz``, ``crowdguard-model.json`` and
    ``MODEL_CARD.md``. Raises :class:`InputError` for bad training data and
    :class:`TrainingError` for everything else that goes wrong.
    """
    for option, value in (("target_fpr", target_fpr), ("val_fraction", val_fraction)):
        if not 0.0 < value < 1.0:
            raise TrainingError(f"{option} must be in (0, 1), got {value}")
    if out.exists() and any(out.iterdir()):
        raise TrainingError(f"{out} exists and is not empty; give a new directory")
    if version is None:
        version = dev_version()
    started = time.monotonic()
    dataset = load_dataset(data, group_field=group_field)
    train, val = checked_split(dataset.examples, val_fraction, seed)
    log.info("training a char n-gram model on %d texts, validating on %d", len(train), len(val))
    cut = [_cut(e) for e in tqdm(train, desc="reading", unit="text", disable=not progress)]
    vocab, idf = vocabulary(cut)
    zeros = np.zeros(len(vocab))
    featurizer = CharNgramWeights(vocab, idf, zeros, 0.0)
    x_train = _rows(featurizer, cut)
    x_val = _rows(featurizer, [_cut(e) for e in val])
    y_train = np.array([e.label for e in train], dtype=np.int64)
    y_val = np.array([e.label for e in val], dtype=np.int64)
    best: tuple[float, float, np.ndarray, float] | None = None
    searched = []
    for c in tqdm(C_GRID, desc="fitting", unit="penalty", disable=not progress):
        coef, bias = _fit_logistic(x_train, (len(train), len(vocab)), y_train, c)
        z = _margins(x_val, len(val), coef, bias)
        loss = _log_loss(y_val, z)
        searched.append({"C": c, "validation_log_loss": round(loss, 6)})
        log.info("C=%g: validation log loss %.4f", c, loss)
        if best is None or loss < best[0]:
            best = (loss, c, coef, bias)
    assert best is not None
    _, c, coef, bias = best
    weights = CharNgramWeights(vocab, idf, coef, bias)
    z_val = _margins(x_val, len(val), coef, bias)
    result = calibrate_margins(y_val, z_val, z_val, target_fpr=target_fpr,
                               target_fnr=TARGET_FNR)
    out.mkdir(parents=True, exist_ok=True)
    weights.save(out / WEIGHTS_FILE)
    meta: dict[str, Any] = {
        **metadata_header(name, version, CHAR_NGRAMS_KIND),
        "base": {"name": CHAR_NGRAMS_BASE},
        "max_length": MAX_CHARS,
        "labels": list(LABEL_NAMES),
        "ngrams": {"range": list(NGRAM_RANGE), "analyzer": "characters within words",
                   "min_df": MIN_DF, "max_features": MAX_FEATURES, "kept": len(vocab),
                   "C": c, "searched": searched},
        "training": {
            "data": [{"file": f.file, "sha256": f.sha256, "records": f.records}
                     for f in dataset.files],
            "seed": seed,
            "val_fraction": val_fraction,
            "train_records": len(train),
            "val_records": len(val),
            "line_break_repaired": dataset.repaired,
            "duplicates_dropped": dataset.duplicates,
            "seconds": round(time.monotonic() - started, 1),
            **({"group_field": group_field} if group_field is not None else {}),
        },
        "files": {"cpu": WEIGHTS_FILE, "fp32": WEIGHTS_FILE},
        "abstain": dict(ABSTAIN),
    }
    entries = result.metadata(target_fpr)
    del entries["agreement_int8_fp32"]  # one file serves every precision
    meta.update(entries)
    write_metadata(out, meta)
    write_model_card(out, meta)
    load_model_info(out)  # what the runtime will read
    log.info("char n-gram model written to %s in %.1f s (%d n-grams, C=%g; validation AUROC %s)",
             out, time.monotonic() - started, len(vocab), c, meta["validation"].get("auroc"))
    return meta


def _cut(example: Example) -> str:
    return text_for_ngrams(example.text, MAX_CHARS)[0]


def _margins(coo: tuple[np.ndarray, ...], n: int, coef: np.ndarray, bias: float) -> np.ndarray:
    rows, cols, vals = coo
    z = np.zeros(n, dtype=np.float64)
    np.add.at(z, rows, vals * coef[cols])
    return z + bias

"""Would the task's source text and the answer's length help a cross-fitted model? An experiment, not part of the service.

A crowd answer summarizes a source (on GPTurk, an NEJM abstract) that the
stream's records can carry as ``source_text``. This probe asks whether three
cheap numbers about an answer add to the encoder's margin:

- the share of its 4-word phrases found in the source (``c4``), and its square;
- the share of its words found in the source (``c1``), and its square;
- the log of its length in words (``len``).

It takes a panel trained by ``crowdguard train --folds K`` on a GPTurk split's
train file, rebuilds its folds (the recorded seed and, with ``--group-field``,
groups), scores every training text with the one fold model that never saw
it (out of fold) and every test text with the mean margin of all fold models
(as the served panel averages them), then fits a logistic regression on the
out-of-fold rows for each feature set and applies it to the test file. Test
texts never reach a fit. Sources come from GPTurk's ``qids.csv`` (``HITId`` to
``question``).

Needs scikit-learn, which no extra of crowdguard installs
(``.venv/bin/pip install scikit-learn``).

Usage: python scripts/probe_source_features.py --model DIR --gpturk DIR --split inductive|transductive [--group-field HITId]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.detector import Detector  # noqa: E402
from service.records import read_records  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.training.data import load_dataset, record_label, split_folds  # noqa: E402

FEATURE_SETS = ("m", "m+c4", "m+c4+c1", "m+len", "m+c4+len", "m+c4+c1+len", "c4+c1+len")
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def phrase_share(text: str, source: str, n: int) -> float:
    """Share of the ``n``-word phrases of ``text`` that occur in ``source``."""
    w, s = words(text), words(source)
    seen = set(zip(*[s[i:] for i in range(n)]))
    grams = list(zip(*[w[i:] for i in range(n)]))
    return float(np.mean([g in seen for g in grams])) if grams else 0.0


def features(texts, sources, margins, kind: str) -> np.ndarray:
    rows = []
    for text, source, margin in zip(texts, sources, margins, strict=True):
        row = [margin] if kind.startswith("m") else []
        if "c4" in kind:
            c4 = phrase_share(text, source, 4)
            row += [c4, c4 * c4]
        if "c1" in kind:
            c1 = phrase_share(text, source, 1)
            row += [c1, c1 * c1]
        if "len" in kind:
            row.append(np.log(max(len(words(text)), 1)))
        rows.append(row)
    return np.array(rows, dtype=np.float64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a panel made by train --folds")
    ap.add_argument("--gpturk", type=Path, required=True, help="the GPTurk data directory")
    ap.add_argument("--split", choices=("inductive", "transductive"), required=True)
    ap.add_argument("--group-field", help="the --group-field the panel was trained with")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    meta = json.loads((args.model / "crowdguard-model.json").read_text())
    cross_fit = meta.get("cross_fit")
    if not cross_fit:
        ap.error(f"{args.model} was not trained with --folds")
    source_of = {r["HITId"]: r["question"] for r in csv.DictReader(open(args.gpturk / "qids.csv"))}
    # HITId is read for every text (to find its source); it groups the folds only if asked
    examples = load_dataset([args.gpturk / f"train_{args.split}.json"], group_field="HITId").examples
    hits = [e.group for e in examples]
    fold_of = split_folds([dataclasses.replace(e, group=e.group if args.group_field else None)
                           for e in examples], cross_fit["folds"], cross_fit["seed"])
    members = sorted((p for p in args.model.iterdir() if p.name.startswith("fold-")),
                     key=lambda p: int(p.name.split("-")[1]))
    detectors = [Detector.load(m, threads=cpu_count()) for m in members]
    oof = np.zeros(len(examples))
    for k, det in enumerate(detectors):
        idx = [i for i in range(len(examples)) if fold_of[i] == k]
        oof[idx] = det.margins([examples[i].text for i in idx])
    y = np.array([e.label for e in examples])
    test = [r.fields for r in read_records(args.gpturk / f"test_{args.split}.json")]
    test_texts = [r["text"] for r in test]
    test_y = np.array([record_label(r, "test", i) for i, r in enumerate(test, 1)])
    test_m = np.mean([det.margins(test_texts) for det in detectors], axis=0)
    test_src = [source_of[r["HITId"]] for r in test]
    train_src = [source_of[h] for h in hits]
    train_texts = [e.text for e in examples]

    print(f"{args.model} on GPTurk {args.split}: {len(examples)} training texts out of fold, "
          f"{len(test)} test texts\n")
    print("| features | out of fold: AUROC / log loss | test: errors (humans accused) / accuracy / AUROC |")
    print("|---|---|---|")
    for kind in FEATURE_SETS:
        x_train = features(train_texts, train_src, oof, kind)
        fit = LogisticRegression(max_iter=1000).fit(x_train, y)
        p_oof = fit.predict_proba(x_train)[:, 1]
        p = fit.predict_proba(features(test_texts, test_src, test_m, kind))[:, 1]
        loss = -np.mean(y * np.log(p_oof) + (1 - y) * np.log(1 - p_oof))
        wrong = (p >= 0.5) != test_y
        print(f"| {kind} | {roc_auc_score(y, p_oof):.3f} / {loss:.3f} | {int(wrong.sum())} "
              f"({int((wrong & (test_y == 0)).sum())}) / {1 - wrong.mean():.3f} / "
              f"{roc_auc_score(test_y, p):.4f} |")
    lengths = {lab: np.percentile([len(words(t)) for t, v in zip(test_texts, test_y) if v == lab],
                                  [10, 50, 90]) for lab in (0, 1)}
    print(f"\ntest answers' words, 10th / 50th / 90th percentile: human {lengths[0]}, LLM {lengths[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Would a word-pattern model beside the encoder help? An experiment, not part of the service.

Rebuilds a trained model directory's own training / validation split (its
seed and ``val_fraction``, from the same data files), fits a TF-IDF n-gram
logistic regression on the training part only, fits the combination
``a * margin + c * lexical + b`` on the validation part only, and reports on
a held-out file: the encoder alone, the n-gram model alone, and the
combination (AUROC, TPR at 5% FPR, accuracy at p >= 0.5).

Needs scikit-learn, which no extra of crowdguard installs
(``.venv/bin/pip install scikit-learn``).

Usage: python scripts/probe_lexical_ensemble.py --model DIR --test FILE --data TRAIN_FILE [...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.detector import Detector  # noqa: E402
from service.evaluation import ranking_metrics  # noqa: E402
from service.records import LABELS, read_records  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.training.data import load_dataset, split_validation  # noqa: E402

ANALYZERS = [("char_wb", (2, 5)), ("word", (1, 2)), ("char_wb", (1, 4))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--data", type=Path, nargs="+", required=True,
                    help="the files the model was trained on")
    args = ap.parse_args()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    meta = json.loads((args.model / "crowdguard-model.json").read_bytes())
    tr = meta["training"]
    ds = load_dataset(args.data, group_field=tr.get("group_field"))
    train, val = split_validation(ds.examples, tr["val_fraction"], tr["seed"])
    texts, labels = [], []
    for rec in read_records(args.test):
        label = str(rec.fields.get("label", rec.fields.get("labels", ""))).lower()
        if rec.error or not rec.fields.get("text") or label not in LABELS:
            raise SystemExit(f"{rec.source}:{rec.line}: {rec.error or 'needs text and a label'}")
        texts.append(str(rec.fields["text"]))
        labels.append(LABELS[label])
    y = np.array(labels)
    det = Detector.load(args.model, device="cpu", calibrated=False, threads=cpu_count())
    z_val, z = det.margins([e.text for e in val]), det.margins(texts)
    y_val = np.array([e.label for e in val])

    def report(name: str, s: np.ndarray) -> dict:
        out = {**ranking_metrics(y, s, digits=4),
               "accuracy": round(float(((s > 0) == y).mean()), 4)}
        print(name, out)
        return out

    results = {"encoder": report("encoder", z)}
    for analyzer, ngrams in ANALYZERS:
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ngrams, sublinear_tf=True,
                              min_df=3, max_features=100_000)
        lex = LogisticRegression(C=10, max_iter=3000).fit(
            vec.fit_transform([e.text for e in train]), [e.label for e in train])
        l_val = lex.decision_function(vec.transform([e.text for e in val]))
        l_test = lex.decision_function(vec.transform(texts))
        comb = LogisticRegression(C=1.0).fit(np.stack([z_val, l_val], 1), y_val)
        name = f"{analyzer}{ngrams}"
        results[name] = {"ngrams": report(f"{name} alone", l_test),
                         "combined": report(f"{name} + encoder",
                                            comb.decision_function(np.stack([z, l_test], 1)))}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A character n-gram model as a panel's veto: beside or in place of its MiniLM veto. An experiment, not part of the service.

A panel (``crowdguard panel --veto NAME``) accuses a text only when every
member's own thresholds say ``llm``; its veto member votes but is left out of
``p_llm``. The veto member of 0.10.0 is a MiniLM model (25.2 MB, a third of
the panel's compute), and a second seed of its recipe accused 16 held-out human
texts where the shipped seed accused 2 (docs/detector-results.md#veto-member-v4-seed-7).
This probe asks whether a much smaller model of another kind can take or share
that job:

1. It rebuilds the veto member's seeded split of its training files
   (``--data``, in the member's order; ``--seed``, ``--val-fraction``), fits a
   TF-IDF model of character 2-5-grams within words (scikit-learn's
   ``char_wb``, sublinear counts, at most 300,000 n-grams seen in two texts or
   more) with a logistic regression on the training part, its penalty picked
   from a fixed grid by log loss on the validation part, then Platt scaling and
   the verdict thresholds on the validation part, as ``crowdguard train`` fits
   them (``service.evaluation``, target false-positive rate 1%).
2. It scores the validation part and every ``--test`` file with the panel
   (``PANEL_DIR``) and with every other ``--member DIR`` (e.g. another seed of
   the veto member), then gives each text the verdict of the panel's rule
   (``service.verdict``: the reply formula, abstaining, unfamiliar texts, then
   all members agree) for several sets of voters: as served, without the veto,
   with the character model in place of the veto or beside it, and the same
   for each other member. The served verdict is checked against
   :func:`service.verdict.decide` for every text.

It prints, per file and set of voters, the human texts given ``llm``, the LLM
texts given ``llm`` and the ``uncertain`` count, and writes them to ``--out``.
``p_llm`` and every ranking figure are the panel's in all sets (vetoes are left
out of ``p_llm``), so only verdicts are compared. Needs scikit-learn, which is
not a dependency of crowdguard.

Usage: python scripts/probe_char_veto.py PANEL_DIR --data FILE [FILE ...]
       --test FILE [FILE ...] [--member NAME=DIR ...] [--seed N] [--val-fraction F]
       [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.detector import Detector, ModelInfo  # noqa: E402
from service.errors import CrowdguardError  # noqa: E402
from service.evaluation import (auroc, choose_thresholds, fit_platt,  # noqa: E402
                                platt_probability, verdicts_for)
from service.scoring import read_labelled  # noqa: E402
from service.settings import cpu_count  # noqa: E402
from service.text import assistant_reply_formula  # noqa: E402
from service.training.data import load_dataset, split_validation  # noqa: E402
from service.verdict import abstain_reason, decide, unfamiliar_reason  # noqa: E402

C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
CHAR = "char-ngrams"


class CharModel:
    """TF-IDF character n-grams and a logistic regression, with Platt scaling and thresholds."""

    def __init__(self, train_texts: Sequence[str], train_y: np.ndarray,
                 val_texts: Sequence[str], val_y: np.ndarray) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                   min_df=2, max_features=300_000, dtype=np.float32)
        x_train = self.vec.fit_transform(train_texts)
        x_val = self.vec.transform(val_texts)
        best = None
        for c in C_GRID:
            clf = LogisticRegression(C=c, max_iter=3000).fit(x_train, train_y)
            z = clf.decision_function(x_val)
            loss = float(np.mean(np.logaddexp(0.0, -np.where(val_y == 1, z, -z))))
            print(f"  C={c:g}: validation AUROC {auroc(val_y, z):.4f}, log loss {loss:.4f}",
                  file=sys.stderr)
            if best is None or loss < best[0]:
                best = (loss, c, clf)
        _, self.c, self.clf = best
        z = self.clf.decision_function(x_val)
        self.a, self.b = fit_platt(z, val_y)
        self.thresholds = choose_thresholds(val_y, platt_probability(z, self.a, self.b),
                                            target_fpr=0.01, target_fnr=0.05)
        self.features = x_train.shape[1]

    def verdicts(self, texts: Sequence[str]) -> list[str]:
        z = self.clf.decision_function(self.vec.transform(texts))
        return verdicts_for(platt_probability(z, self.a, self.b), self.thresholds)


def _label(p: float, info: ModelInfo) -> str:
    t = info.thresholds
    return "llm" if p >= t.llm else "human" if p <= t.human else "uncertain"


def _member_votes(detector: Detector, texts: Sequence[str]) -> list[str]:
    """``unfamiliar`` or the member's own verdict by its thresholds, per text."""
    return ["unfamiliar" if unfamiliar_reason(s, detector.info) is not None
            else _label(s.p_llm, detector.info) for s in detector.score(texts)]


def _rule(fixed: str | None, votes: Sequence[str]) -> str:
    """The panel rule given the text-level outcome (``fixed``) and each voter's vote."""
    if fixed is not None:
        return fixed
    if "unfamiliar" in votes:
        return "uncertain"
    return votes[0] if len(set(votes)) == 1 else "uncertain"


def score_file(panel: Detector, others: dict[str, Detector], char: CharModel,
               texts: Sequence[str], labels: Sequence[int]) -> tuple[dict[str, dict], int]:
    """Per set of voters: accused humans, LLM texts given ``llm``, ``uncertain``; and the check count."""
    info = panel.info
    names = [m.member_name for m in info.members]
    veto = [n for n in names if n in info.veto]
    votes: dict[str, list[str]] = {n: [] for n in names}
    fixed: list[str | None] = []
    check = 0
    for i in range(0, len(texts), 64):
        chunk = texts[i:i + 64]
        for text, score in zip(chunk, panel.score(chunk), strict=True):
            formula = assistant_reply_formula(text) if abstain_reason(text, info) is None else None
            fixed.append("llm" if formula else "uncertain" if abstain_reason(text, info) else None)
            for n, ms, mi in zip(names, score.members, info.members, strict=True):
                votes[n].append("unfamiliar" if unfamiliar_reason(ms, mi) is not None
                                else _label(ms.p_llm, mi))
            served = _rule(fixed[-1], [votes[n][-1] for n in names])
            check += served == decide(text, score, info).verdict
    votes[CHAR] = char.verdicts(texts)
    for name, det in others.items():
        votes[name] = _member_votes(det, texts)
    scorers = [n for n in names if n not in veto]
    sets = {"served": names, "no veto": scorers, f"{CHAR} for the veto": scorers + [CHAR],
            f"served + {CHAR}": names + [CHAR]}
    for name in others:
        sets[f"{name} for the veto"] = scorers + [name]
        sets[f"{name} + {CHAR} for the veto"] = scorers + [name, CHAR]
    y = np.asarray(labels)
    out = {}
    for key, voters in sets.items():
        v = np.array([_rule(f, [votes[n][i] for n in voters]) for i, f in enumerate(fixed)])
        out[key] = {"humans_llm": int(np.sum((v == "llm") & (y == 0))),
                    "llm_llm": int(np.sum((v == "llm") & (y == 1))),
                    "uncertain": int(np.sum(v == "uncertain"))}
    return out, check


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("panel", help="panel directory with a veto member")
    ap.add_argument("--data", nargs="+", required=True,
                    help="the veto member's training files, in its order")
    ap.add_argument("--test", nargs="+", required=True, help="labelled files to score")
    ap.add_argument("--member", action="append", default=[], metavar="NAME=DIR",
                    help="another model directory to try as the veto (repeatable)")
    ap.add_argument("--seed", type=int, default=13, help="the veto member's seed (default 13)")
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    try:
        panel = Detector.load(args.panel, threads=cpu_count())
        if not panel.info.veto:
            raise SystemExit(f"{args.panel}: the panel has no veto member")
        others = {}
        for spec in args.member:
            name, _, path = spec.partition("=")
            others[name] = Detector.load(path, threads=cpu_count())
        data = load_dataset(args.data)
        train, val = split_validation(data.examples, args.val_fraction, args.seed)
        t0 = time.monotonic()
        char = CharModel([e.text for e in train], np.array([e.label for e in train]),
                         [e.text for e in val], np.array([e.label for e in val]))
        print(f"{CHAR}: {char.features} n-grams, C={char.c:g}, thresholds {char.thresholds}, "
              f"fitted in {time.monotonic() - t0:.0f} s", file=sys.stderr)
        files = {"validation of the veto member's split": (
            [e.text for e in val], [e.label for e in val])}
        for path in args.test:
            files[path] = read_labelled(path)
        report = {"char_model": {"C": char.c, "features": char.features,
                                 "thresholds": char.thresholds},
                  "files": {}}
        for path, (texts, labels) in files.items():
            t0 = time.monotonic()
            figures, check = score_file(panel, others, char, texts, labels)
            if check != len(texts):
                raise SystemExit(f"{path}: the rule reproduced decide() on {check} of "
                                 f"{len(texts)} texts; the probe is out of date")
            n_h, n_l = labels.count(0), labels.count(1)
            report["files"][path] = {"humans": n_h, "llm": n_l, "sets": figures}
            print(f"{path}: {n_h} human, {n_l} LLM texts ({time.monotonic() - t0:.0f} s)")
            for key, f in figures.items():
                print(f"  {key:42s} humans llm {f['humans_llm']:4d}   LLM texts llm "
                      f"{f['llm_llm']:4d}   uncertain {f['uncertain']:4d}")
    except CrowdguardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Combine two models' calibrated ``p_llm`` on one labelled file. An experiment, not part of the service.

``A`` and ``B`` are the JSONL outputs of ``crowdguard score --model DIR FILE --out OUT``
for two models on the same labelled ``FILE`` (one line per record, in input
order). Prints, for each model and for three label-free combinations of the two
(mean probability, mean logit, the smaller probability), ``service.evaluation``'s
figures: AUROC, TPR at 1% and 5% FPR, accuracy; and for each model and for the
AND rule on verdicts (``llm`` only where both say ``llm``, ``human`` only where
both say ``human``, otherwise ``uncertain``) the ``llm`` verdict FPR and TPR
and the share ``uncertain``.

Usage: python scripts/probe_score_pair.py FILE A B
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.errors import CrowdguardError  # noqa: E402
from service.evaluation import summarize  # noqa: E402
from service.records import parse_label, read_records  # noqa: E402

SCORE_FIGURES = ("auroc", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr", "accuracy")
VERDICT_FIGURES = ("llm_verdict_fpr", "llm_verdict_tpr", "uncertain_share")


def labels(path: Path) -> np.ndarray:
    y = []
    for rec in read_records(path):
        if rec.error:
            raise SystemExit(f"{rec.where}: {rec.error}")
        y.append(parse_label(rec.fields.get("label", rec.fields.get("labels")),
                             source=rec.source, line=rec.line))
    return np.array(y)


def scores(path: Path, n: int) -> tuple[np.ndarray, list[str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if len(rows) != n:
        raise SystemExit(f"{path}: {len(rows)} lines for {n} labelled records; "
                         "score the same file with `crowdguard score`")
    missing = [i + 1 for i, r in enumerate(rows) if r.get("p_llm") is None]
    if missing:
        raise SystemExit(f"{path}:{missing[0]}: no p_llm ({len(missing)} records not scored)")
    return np.array([r["p_llm"] for r in rows], dtype=float), [r["verdict"] for r in rows]


def and_rule(va: list[str], vb: list[str]) -> list[str]:
    return [x if x == z and x in ("llm", "human") else "uncertain" for x, z in zip(va, vb)]


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(q / (1 - q))


def main() -> int:
    if len(sys.argv) != 4:
        raise SystemExit(__doc__.strip().splitlines()[-1])
    test, a, b = (Path(x) for x in sys.argv[1:])
    try:
        y = labels(test)
    except CrowdguardError as exc:
        raise SystemExit(str(exc)) from exc
    pa, va = scores(a, y.size)
    pb, vb = scores(b, y.size)
    none = ["uncertain"] * y.size  # combined scores have no verdicts of their own
    out = {}
    for name, p, v in [("A", pa, va), ("B", pb, vb), ("mean p", (pa + pb) / 2, none),
                       ("mean logit", 1 / (1 + np.exp(-(logit(pa) + logit(pb)) / 2)), none),
                       ("min p", np.minimum(pa, pb), none)]:
        out[name] = {k: summarize(y, p, v)[k] for k in SCORE_FIGURES}
    for name, v in [("A", va), ("B", vb), ("AND rule", and_rule(va, vb))]:
        out[f"{name} verdicts"] = {k: summarize(y, pa, v)[k] for k in VERDICT_FIGURES}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How often an honest writer who pastes their own answer would be accused: verdicts as if every text were pasted.

The behaviour fusion (:func:`service.signals.fuse`) lets a large paste from
outside the task lower the bar of ``llm`` from the model's ``llm`` threshold to
the midpoint of its thresholds. A worker who drafts the answer elsewhere (a
word processor, a notes app) and pastes it leaves exactly that trace. This
script scores labelled files with a model and gives each text three verdicts:

* ``text``: the text alone (:func:`service.verdict.decide`), as ``evaluate`` does;
* ``pasted``: the served fusion, with a keystroke log that shows the whole
  answer pasted from outside the task in one paste (:func:`service.signals.judge`);
* ``pasted, panel score only``: the same, with the panel's members left out of
  the paste rule (``held_back=None``), as crowdguard served panels until
  2026-12-07, for comparison. For a single model it equals ``pasted``.

It prints, per file, the count of ``llm`` verdicts on human texts (with the
95% upper bound of their rate) and on LLM texts under each.

Usage: python scripts/paste_fpr.py [--model DIR] FILE [FILE ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.detector import Detector  # noqa: E402
from service.errors import CrowdguardError  # noqa: E402
from service.evaluation import binomial_interval  # noqa: E402
from service.scoring import read_labelled  # noqa: E402
from service.settings import DEFAULT_MODEL_DIR, cpu_count  # noqa: E402
from service.signals import Signals, fuse, judge  # noqa: E402
from service.verdict import decide  # noqa: E402

WAYS = ("text", "pasted", "pasted, panel score only")


def pasted(text: str) -> Signals:
    """A log that shows ``text`` pasted whole, in one paste from outside the task."""
    return Signals(events_available=True, n_pastes=1, paste_share=1.0, foreign_paste_share=1.0,
                   foreign_paste_chars=len(text), typed_share=0.0)


def verdicts(detector: Detector, path: Path) -> tuple[list[int], dict[str, list[str]]]:
    texts, y = read_labelled(path)
    info = detector.info
    out: dict[str, list[str]] = {way: [] for way in WAYS}
    for text, score in zip(texts, detector.score(texts), strict=True):
        alone = decide(text, score, info)
        out["text"].append(alone.verdict)
        out["pasted"].append(judge(text, score, info, pasted(text)).verdict)
        out["pasted, panel score only"].append(
            fuse(alone, pasted(text), info.thresholds).verdict)
    return y, out


def count(y: list[int], v: list[str], label: int) -> str:
    n = sum(1 for t in y if t == label)
    k = sum(1 for t, w in zip(y, v, strict=True) if t == label and w == "llm")
    if not n:
        return "-"
    high = (binomial_interval(k, n) or (0.0, 1.0))[1]
    return f"{k}/{n} ({k / n:.1%}, <= {high:.1%})" if label == 0 else f"{k}/{n} ({k / n:.1%})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    ap.add_argument("files", type=Path, nargs="+", help="labelled files (text, label)")
    args = ap.parse_args()
    try:
        detector = Detector.load(args.model, threads=cpu_count())
        print(f"{detector.info.label}: llm verdicts on human / LLM texts")
        for path in args.files:
            y, out = verdicts(detector, path)
            for way in WAYS:
                print(f"  {path.name} {way}: human {count(y, out[way], 0)}; "
                      f"LLM {count(y, out[way], 1)}")
    except CrowdguardError as exc:
        raise SystemExit(str(exc)) from exc
    return 0


if __name__ == "__main__":
    sys.exit(main())

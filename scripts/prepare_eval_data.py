"""Write evaluation files (JSONL with text, label, group) from the shared data sets.

The held-out evaluations in the model card run ``crowdguard evaluate`` on these:

* DetectRL files: the lost-newline artifact (``nn``) is cleaned exactly as training
  cleans it, the spaces lost with line breaks are put back as training puts them
  back (with the word counts of both files together), and ``group`` is the human
  domain (abstract, document, story, content) or ``llm:<attack>`` for LLM texts,
  so per-group metrics show the false positive rate per human domain and the
  detection rate per attack;
* GPTurk ``base.json``: ``group`` is the label (real, synthetic).

Usage: python scripts/prepare_eval_data.py SHARED_DATA_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.text import LineBreakRepair, clean_artifacts, normalize  # noqa: E402


def main(data: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    files = {src: json.loads(src.read_text())
             for src in sorted((data / "detectrl").glob("*.json"))}
    for rows in files.values():
        for r in rows:
            r["text"] = normalize(clean_artifacts(r["text"]))
    repair = LineBreakRepair(r["text"] for rows in files.values() for r in rows)
    for src, rows in files.items():
        dst = out / (src.stem + ".clean.jsonl")
        with dst.open("w") as f:
            for r in rows:
                group = r["data_type"] if r["label"] == "human" else "llm:" + r["data_type"]
                f.write(json.dumps({"text": repair(r["text"]), "label": r["label"],
                                    "group": group, "llm_type": r["llm_type"]}) + "\n")
        print(f"{dst} ({len(rows)} records)")
    base = data / "gpturk" / "base.json"
    if base.exists():
        dst = out / "gpturk_base.jsonl"
        with dst.open("w") as f:
            for r in json.loads(base.read_text()):
                f.write(json.dumps({"text": r["text"], "label": r["labels"],
                                    "group": r["labels"]}) + "\n")
        print(dst)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))

"""Write evaluation files (JSONL with text, label, group) from the shared data sets.

The held-out evaluations in the model card run ``crowdguard evaluate`` on these:

* DetectRL files: the lost-newline artifact (``nn``) is cleaned exactly as training
  cleans it, the spaces lost with line breaks are put back as training puts them
  back (with the word counts of both files together), and ``group`` is the human
  domain (abstract, document, story, content) or ``llm:<attack>`` for LLM texts,
  so per-group metrics show the false positive rate per human domain and the
  detection rate per attack;
* GPTurk ``base.json``: ``group`` is the label (real, synthetic);
* the 16 NEJM abstracts the GPTurk workers summarized (``abstracts_final.csv``, matched
  to their ``HITId`` through ``qids.csv``, row by row, titles checked): each paragraph
  of at least 15 words after the title, labelled ``human`` (scientists wrote them),
  ``group`` ``abstract-paragraph``, in ``gpturk_abstract_paragraphs.jsonl`` and split
  by the abstracts of GPTurk's inductive split into ``..._train_inductive.jsonl`` and
  ``..._test_inductive.jsonl`` (usable as training files too: they hold ``text`` and
  ``label``);
* the 48 assignments of the 2023 MTurk batch, labelled by what their keystroke logs
  show, not by anyone reading them: ``llm`` when at least half of the answer was
  pasted from outside the task (``group`` ``foreign-paste``), ``human`` when typed by
  hand (``typed``: at least 80% of it typed, at most 20% pasted) or pasted from the
  task's own abstract (``task-text-paste``: at least 80% of it); answers that fit
  none are left out. A foreign paste is strong evidence, not proof, of an LLM;
* ``*_with_task.jsonl``: GPTurk ``base.json``, the inductive test file and the 2023
  batch again, each text with its task's abstract as ``source_text`` (from
  ``qids.csv``, or the batch's own ``Input.texts``) and no keystroke log, as a
  platform that sends the task text but no log would send them: ``crowdguard score``
  and ``evaluate`` then weigh the task text as the stream does.

Usage: python scripts/prepare_eval_data.py SHARED_DATA_DIR OUT_DIR
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.replay import iter_submissions  # noqa: E402
from service.signals import (FOREIGN_PASTE_MIN_SHARE, TYPED_MAX_PASTE_SHARE,  # noqa: E402
                             TYPED_MIN_SHARE, compute_signals)
from service.text import LineBreakRepair, clean_artifacts, normalize  # noqa: E402

#: Paragraphs shorter than this many words (headings, one-line conclusions) are left out.
MIN_PARAGRAPH_WORDS = 15
#: An answer at least this share pasted from the task's abstract counts as the abstract's text.
TASK_PASTE_MIN_SHARE = 0.8


def _write(dst: Path, rows: Iterable[dict]) -> int:
    n = 0
    with dst.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
            n += 1
    print(f"{dst} ({n} records)")
    return n


def abstract_paragraphs(gpturk: Path) -> list[dict]:
    """The paragraphs of the source abstracts, each with its abstract's ``HITId``."""
    with (gpturk / "abstracts_final.csv").open(newline="") as f:
        texts = [r["texts"] for r in csv.DictReader(f)]
    with (gpturk / "qids.csv").open(newline="") as f:
        qids = list(csv.DictReader(f))
    if len(texts) != len(qids):
        raise SystemExit(f"{gpturk}: {len(texts)} abstracts but {len(qids)} qids")
    rows = []
    for text, q in zip(texts, qids):
        title, *body = [p.strip() for p in text.split("\n\n") if p.strip()]
        if normalize(title) != normalize(q["question"].split("\n")[0]):
            raise SystemExit(f"{gpturk}: abstract {title[:40]!r} does not match {q['HITId']}")
        rows += [{"text": normalize(p), "label": "human", "group": "abstract-paragraph",
                  "HITId": q["HITId"]} for p in body if len(p.split()) >= MIN_PARAGRAPH_WORDS]
    return rows


def task_texts(gpturk: Path) -> dict[str, str]:
    """``HITId`` -> the abstract the workers summarized (``qids.csv``)."""
    with (gpturk / "qids.csv").open(newline="") as f:
        return {r["HITId"]: r["question"] for r in csv.DictReader(f)}


def _behaviour_label(s: dict) -> tuple[str, str] | None:
    def at(v: str | None) -> datetime | None:
        return datetime.fromisoformat(v) if v else None
    sig = compute_signals(s["text"], s["events"], source_text=s["source_text"],
                          started_at=at(s["started_at"]), submitted_at=at(s["submitted_at"]))
    if (sig.foreign_paste_share or 0) >= FOREIGN_PASTE_MIN_SHARE:
        return "llm", "foreign-paste"
    if (sig.typed_share or 0) >= TYPED_MIN_SHARE and (sig.paste_share or 0) <= TYPED_MAX_PASTE_SHARE:
        return "human", "typed"
    if (sig.pasted_from_source_share or 0) >= TASK_PASTE_MIN_SHARE:
        return "human", "task-text-paste"
    return None


def mturk_by_behaviour(batch: Path) -> list[dict]:
    """The 2023 batch's answers labelled by their keystroke logs (see the module doc).

    Each row keeps its task text under ``task`` for :func:`main` to pass on or drop.
    """
    rows = []
    for s in iter_submissions(batch, "mturk"):
        labelled = None if not isinstance(s, dict) else _behaviour_label(s)
        if labelled:
            rows.append({"text": s["text"], "label": labelled[0], "group": labelled[1],
                         "task": s["source_text"]})
    return rows


def _with_task(rows: Iterable[dict], tasks: dict[str, str] | None = None) -> Iterator[dict]:
    for r in rows:
        out = {k: v for k, v in r.items() if k != "task"}
        if tasks is not None and r["HITId"] not in tasks:
            raise SystemExit(f"HITId {r['HITId']} is not in qids.csv")
        out["source_text"] = r["task"] if tasks is None else tasks[r["HITId"]]
        yield out


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
    gpturk = data / "gpturk"
    if (gpturk / "qids.csv").exists():
        tasks = task_texts(gpturk)
        for name in ("base", "test_inductive"):
            if (gpturk / f"{name}.json").exists():
                rows = [{"text": r["text"], "label": r["labels"], "group": r["labels"],
                         "HITId": r["HITId"]}
                        for r in json.loads((gpturk / f"{name}.json").read_text())]
                _write(out / f"gpturk_{name}_with_task.jsonl", _with_task(rows, tasks))
    if (gpturk / "abstracts_final.csv").exists() and (gpturk / "qids.csv").exists():
        paragraphs = abstract_paragraphs(gpturk)
        _write(out / "gpturk_abstract_paragraphs.jsonl", paragraphs)
        for split in ("train_inductive", "test_inductive"):
            if (gpturk / f"{split}.json").exists():
                hits = {r["HITId"] for r in json.loads((gpturk / f"{split}.json").read_text())}
                _write(out / f"gpturk_abstract_paragraphs_{split}.jsonl",
                       (r for r in paragraphs if r["HITId"] in hits))
    batch = gpturk / "Batch_5083843_batch_results.csv"
    if batch.exists():
        rows = mturk_by_behaviour(batch)
        _write(out / "mturk2023_by_behaviour.jsonl",
               ({k: v for k, v in r.items() if k != "task"} for r in rows))
        _write(out / "mturk2023_by_behaviour_with_task.jsonl", _with_task(rows))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))

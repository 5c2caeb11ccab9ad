"""Copy a labelled file with learner-like errors put into its texts: misspellings, or grammar slips.

DetectRL's attacked LLM texts (``adversarial_character_llm``, ``adversarial_word_llm``
and both) carry misspellings and odd word choices, and no human text there
does, so a model trained on them can learn "errors mean LLM". Essays by
learners of English are full of errors. This script puts such errors into
texts whose authorship is known (human texts stay human-written: the errors
are mechanical, no model writes them) to measure whether a detector's
verdicts move with them (``crowdguard evaluate`` on the copy and on the
original), and to make training texts in which errors are not a label signal.

``--kind``:

* ``typos``: in each word of four letters or more, with probability ``--rate``,
  one letter inserted, deleted, doubled, or swapped with its neighbour (the
  kinds of DetectRL's character attack, without its look-alike letters);
* ``grammar``: slips common in learner English, each with probability ``--rate``
  where it can apply: an article (``a``, ``an``, ``the``) dropped, the number of a
  common verb switched (``is``/``are``, ``was``/``were``, ``has``/``have``,
  ``does``/``do``), one common preposition put for another;
* ``both``: ``grammar``, then ``typos``.

The text is changed word by word; spacing, punctuation and every other field of
a record are kept, and ``noise`` records the kind and rate. Deterministic for a
``--seed``. Records without a text are refused with their file and line.

Usage: python scripts/make_learner_noise.py IN OUT [--kind typos|grammar|both]
       [--rate R] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.errors import CrowdguardError  # noqa: E402
from service.records import read_records  # noqa: E402
from service.scoring import TEXT_FIELDS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collect_nonnative_texts import write_rows  # noqa: E402

KINDS = ("typos", "grammar", "both")
WORD = re.compile(r"[A-Za-z]+")
ARTICLES = {"a", "an", "the"}
VERB_NUMBER = {"is": "are", "are": "is", "was": "were", "were": "was", "has": "have",
               "have": "has", "does": "do", "do": "does"}
PREPOSITIONS = ("in", "on", "at", "to", "for", "of", "with", "from")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _case_like(new: str, old: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    if old[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def misspell(word: str, rng: random.Random) -> str:
    """One letter of ``word`` inserted, deleted, doubled or swapped with its neighbour."""
    i = rng.randrange(1, len(word) - 1)  # keep the first and last letters
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + rng.choice(LETTERS) + word[i:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def _typos(text: str, rate: float, rng: random.Random) -> str:
    def sub(m: re.Match[str]) -> str:
        w = m.group(0)
        return misspell(w, rng) if len(w) >= 4 and rng.random() < rate else w
    return WORD.sub(sub, text)


def _grammar(text: str, rate: float, rng: random.Random) -> str:
    # an article dropped takes the space after it along
    def article(m: re.Match[str]) -> str:
        return "" if rng.random() < rate else m.group(0)
    text = re.sub(r"\b(?:[Aa]n?|[Tt]he) (?=[A-Za-z])", article, text)

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        low = w.lower()
        if low in VERB_NUMBER and rng.random() < rate:
            return _case_like(VERB_NUMBER[low], w)
        if low in PREPOSITIONS and rng.random() < rate:
            return _case_like(rng.choice([p for p in PREPOSITIONS if p != low]), w)
        return w
    return WORD.sub(word, text)


def add_noise(text: str, kind: str, rate: float, rng: random.Random) -> str:
    """``text`` with errors of ``kind`` (one of :data:`KINDS`) at ``rate``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind in ("grammar", "both"):
        text = _grammar(text, rate, rng)
    if kind in ("typos", "both"):
        text = _typos(text, rate, rng)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="a labelled file (JSON, JSONL or CSV)")
    ap.add_argument("out", type=Path, help="the JSONL file to write")
    ap.add_argument("--kind", choices=KINDS, default="both")
    ap.add_argument("--rate", type=float, default=0.1,
                    help="probability of an error where one can go (default 0.1)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    if not 0.0 < args.rate <= 1.0:
        ap.error("--rate must be in (0, 1]")
    rng = random.Random(args.seed)
    rows = []
    try:
        for rec in read_records(args.src):
            if rec.error:
                raise SystemExit(f"{rec.where}: {rec.error}")
            field = next((k for k in TEXT_FIELDS if isinstance(rec.fields.get(k), str)), None)
            if field is None or not rec.fields[field].strip():
                raise SystemExit(f"{rec.where}: no text (a non-empty string in one of "
                                 f"{', '.join(TEXT_FIELDS)})")
            row = dict(rec.fields)
            row[field] = add_noise(row[field], args.kind, args.rate, rng)
            row["noise"] = f"{args.kind} {args.rate:g}"
            rows.append(row)
    except CrowdguardError as exc:
        raise SystemExit(str(exc)) from exc
    write_rows(rows, args.out, noun=f"texts with {args.kind} at rate {args.rate:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

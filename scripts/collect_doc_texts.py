"""Write held-out human texts of a domain no model here trained on: software documentation.

Every model of this project trains on GPTurk's medical summaries and DetectRL's abstracts,
news, stories and reviews. The documentation that ships with this machine's software is
human writing of another kind, by many writers (some of them writing English as a second
language), mostly written before LLM assistants were common. This script cuts it into prose
paragraphs, labels them ``human`` and writes JSONL (``id``, ``text``, ``label``, ``group``,
``origin``) for ``crowdguard evaluate --group-field group``. Sources (``group``):

* ``python-reference``: the Python Language and Library Reference excerpts that CPython
  ships as ``pydoc_data.topics`` (the text ``help()`` shows);
* ``python-docstrings``: docstrings of the standard library's modules, classes and
  functions (tests, IDLE, lib2to3, turtledemo and site-packages left out);
* ``debian-readme``: the README and ``*.txt`` files under ``/usr/share/doc`` (gzip too);
* ``perl-diagnostics``: the explanations in Perl's ``perldiag.pod``;
* ``vim-user-manual``: the chapters of Vim's user manual (``usr_*.txt``), by section;
  most of it was written by Bram Moolenaar, whose first language was Dutch: one
  writer, and the nearest this machine has to English written as a second language;
* ``nodejs-api``: the Markdown API documentation of Node.js, by many contributors.

Only plain paragraphs are kept: no indented lines (code, grammar, option lists), no lists,
headings or tables, 40 to 300 words, mostly letters and mostly lower case. At most
``--per-file`` paragraphs come from one file (or one reference topic), so a few long
documents do not stand for a whole source, and at most ``--per-source`` from each source,
drawn with ``--seed``. Identical paragraphs are kept once. A file that cannot be read (not
UTF-8, a broken gzip, no permission) is skipped with a line on standard error saying why.
Nothing here is training data:
the output is an evaluation file, written to a path you give (keep it out of git).

Usage: python scripts/collect_doc_texts.py OUT.jsonl [--per-source N] [--per-file N]
       [--seed N] [--doc-root DIR] [--stdlib DIR] [--perldiag FILE] [--vim-doc DIR]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import random
import re
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

MIN_WORDS, MAX_WORDS = 40, 300
MIN_LETTER_SHARE = 0.8
MAX_UPPER_SHARE = 0.2
#: Standard library parts that are tests, tools or vendored code rather than library docs.
STDLIB_SKIP = {"test", "idlelib", "lib2to3", "turtledemo", "site-packages", "ensurepip",
               "tkinter", "pydoc_data", "__pycache__", "config-3.11-x86_64-linux-gnu"}
_FENCE = re.compile(r"^\s*(```|~~~)")
_NOT_PROSE = re.compile(r">>>|::=|\{|\}|==|->|\$ |\bdef |\breturn |#include|https?://")
_BLANK = re.compile(r"\n\s*\n")


def prose_paragraphs(text: str) -> Iterator[str]:
    """The plain prose paragraphs of ``text``, each joined into one line."""
    kept, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        kept.append("" if fenced else line)
    for block in _BLANK.split("\n".join(kept)):
        block = block.strip("\n")
        lines = block.splitlines()
        if not lines or any(ln[:1].isspace() for ln in lines):
            continue
        if not (lines[0][:1].isalpha() and lines[0][:1].isupper()):
            continue
        para = " ".join(ln.strip() for ln in lines)
        if _is_prose(para):
            yield para


def _is_prose(para: str) -> bool:
    words = para.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS or _NOT_PROSE.search(para):
        return False
    chars = [c for c in para if not c.isspace()]
    letters = [c for c in chars if c.isalpha()]
    if len(letters) < MIN_LETTER_SHARE * len(chars):
        return False
    if sum(c.isupper() for c in letters) > MAX_UPPER_SHARE * len(letters):
        return False
    return len(re.findall(r"[a-z][.!?](\s|$)", para)) >= 2


def _skip(path: Path, why: str) -> None:
    print(f"skipped {path}: {why}", file=sys.stderr)


def _read(path: Path) -> str:
    """The file's text (gunzipped when it ends in .gz); ``""`` after saying why it cannot be."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        return raw.decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:   # BadGzipFile is an OSError
        _skip(path, f"{type(exc).__name__}: {exc}")
        return ""


def python_reference() -> Iterator[tuple[str, str]]:
    from pydoc_data.topics import topics

    for name, text in sorted(topics.items()):
        yield f"pydoc_data.topics:{name}", text


def python_docstrings(stdlib: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(stdlib.rglob("*.py")):
        if STDLIB_SKIP & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (OSError, SyntaxError, ValueError) as exc:
            _skip(path, f"not read as Python: {exc}")
            continue
        docs = [ast.get_docstring(node) for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                     ast.AsyncFunctionDef))]
        yield str(path.relative_to(stdlib)), "\n\n".join(d for d in docs if d)


def debian_readmes(doc_root: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(doc_root.rglob("*")):
        name = path.name.lower()
        if path.is_file() and not path.is_symlink() and (
                name.startswith("readme") or name.endswith((".txt", ".txt.gz"))):
            yield str(path), _read(path)


def perl_diagnostics(pod: Path) -> Iterator[tuple[str, str]]:
    # One entry per message (=item); other pod commands and verbatim lines are not prose.
    text = re.sub(r"[A-Z]<(?:<+\s)?([^<>]*?)(?:\s>+)?>", r"\1", _read(pod))
    text = re.sub(r"^\([A-Z](?: [^)]*)?\)\s*", "", text, flags=re.M)   # (F), (W syntax) ...
    for i, entry in enumerate(re.split(r"^=item .*$", text, flags=re.M)):
        yield f"{pod}#{i}", "\n".join("" if ln.startswith("=") else ln
                                      for ln in entry.splitlines())


def vim_user_manual(doc_dir: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(doc_dir.glob("usr_*.txt")):
        text = _read(path)
        text = re.sub(r"\s>$", "", text, flags=re.M)            # "example follows" marks
        text = re.sub(r"^ {3}(?=\S)", "\n", text, flags=re.M)   # indented paragraph starts
        text = re.sub(r"\|([^|\s]+)\|", r"\1", text)             # help links
        for i, section in enumerate(re.split(r"^={20,}$", text, flags=re.M)):
            yield f"{path}#{i}", section


def nodejs_api(api_dir: Path) -> Iterator[tuple[str, str]]:
    for path in sorted(api_dir.glob("*.md")):
        text = re.sub(r"<!--.*?-->", "", _read(path), flags=re.S)
        text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)      # [link][ref]
        yield str(path), re.sub(r"`([^`]*)`", r"\1", text)             # `code` spans


def collect(sources: dict[str, Iterable[tuple[str, str]]], *, per_source: int, per_file: int,
            seed: int) -> list[dict]:
    """Rows for every source: at most ``per_file`` paragraphs a file, ``per_source`` a source."""
    rng, seen, rows = random.Random(seed), set(), []
    for group, docs in sources.items():
        pool = []
        for origin, text in docs:
            paras = [p for p in dict.fromkeys(prose_paragraphs(text)) if p not in seen]
            for p in rng.sample(paras, min(per_file, len(paras))):
                seen.add(p)
                pool.append((origin, p))
        for i, (origin, p) in enumerate(rng.sample(pool, min(per_source, len(pool)))):
            rows.append({"id": f"{group}-{i}", "text": p, "label": "human", "group": group,
                         "origin": origin})
        print(f"{group}: {min(per_source, len(pool))} of {len(pool)} paragraphs", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-source", type=int, default=400)
    ap.add_argument("--per-file", type=int, default=3)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--doc-root", type=Path, default=Path("/usr/share/doc"))
    ap.add_argument("--stdlib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    ap.add_argument("--perldiag", type=Path, default=next(
        iter(sorted(Path("/usr/share/perl").glob("*/pod/perldiag.pod"))), None))
    ap.add_argument("--vim-doc", type=Path, default=next(
        iter(sorted(Path("/usr/share/vim").glob("vim*/doc"))), None))
    args = ap.parse_args(argv)
    for flag, path in (("--doc-root", args.doc_root), ("--stdlib", args.stdlib),
                       ("--perldiag", args.perldiag), ("--vim-doc", args.vim_doc)):
        if path is not None and not path.exists():
            ap.error(f"{flag} {path}: no such file or directory")
    sources: dict[str, Iterable[tuple[str, str]]] = {
        "python-reference": python_reference(),
        "python-docstrings": python_docstrings(args.stdlib),
        "debian-readme": debian_readmes(args.doc_root),
    }
    if args.perldiag is not None:
        sources["perl-diagnostics"] = perl_diagnostics(args.perldiag)
    if args.vim_doc is not None:
        sources["vim-user-manual"] = vim_user_manual(args.vim_doc)
    if (args.doc_root / "nodejs" / "api").is_dir():
        sources["nodejs-api"] = nodejs_api(args.doc_root / "nodejs" / "api")
    rows = collect(sources, per_source=args.per_source, per_file=args.per_file, seed=args.seed)
    with args.out.open("w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} texts to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

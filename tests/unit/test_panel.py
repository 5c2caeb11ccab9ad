"""Panels of models: the directory format, the all-agree rule, veto members, scoring through
members, and the validation texts of members trained on different files."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from service.cli import main
from service.detector import Detector
from service.detector.detector import TextScore
from service.detector.model_dir import (METADATA_FILE, Calibration, Familiarity, ModelInfo,
                                        Thresholds, load_model_info, logit, mean_logit)
from service.errors import InputError, ModelError
from service.settings import DEFAULT_MODEL_DIR
from service.signals import Signals, judge, member_below_midpoint
from service.training.data import file_sha256, load_dataset, split_validation
from service.training.panel import build_panel, parse_member, shared_validation
from service.verdict import decide, unfamiliar_reason

PROSE = ("The walkers in this study slept for longer and they said that they were less tired "
         "during the day than the people who did not walk at all.")


def _info(name: str, llm: float, human: float, familiarity: float | None = None) -> ModelInfo:
    return ModelInfo(path=Path(name), name="m", version="1", max_length=256, files={},
                     calibration=Calibration(), thresholds=Thresholds(llm=llm, human=human),
                     familiarity=None if familiarity is None else Familiarity(familiarity))


A = _info("minilm", llm=0.9, human=0.3, familiarity=0.2)
B = _info("e5", llm=0.8, human=0.1)
PANEL = replace(_info("panel", llm=0.85, human=0.2), members=(A, B))


def _panel_score(pa: float, pb: float, da: float | None = 0.1) -> TextScore:
    members = (TextScore(pa, 0.0, 40, False, da), TextScore(pb, 0.0, 40, False, None))
    p = mean_logit([pa, pb])
    return TextScore(p, logit(p), 40, False, None, members)


def single_model_dir() -> Path:
    """A single-model directory shipped in the repository (the default, or its first member)."""
    return load_model_info(DEFAULT_MODEL_DIR).singles[0].path


def test_mean_logit_joins_probabilities_in_logit_space() -> None:
    assert mean_logit([0.3, 0.3]) == pytest.approx(0.3)
    assert mean_logit([0.9, 0.1]) == pytest.approx(0.5)
    assert mean_logit([0.99, 0.5]) == pytest.approx(1 / (1 + math.exp(-logit(0.99) / 2)))
    assert 0.0 < mean_logit([0.0, 1.0 - 1e-12]) < 1.0  # extremes stay finite


@pytest.mark.parametrize(("pa", "pb", "verdict", "head"), [
    (0.95, 0.85, "llm", "all 2 models say llm"),
    (0.95, 0.5, "uncertain", "the 2 models disagree"),      # e5 alone cannot accuse ...
    (0.5, 0.99, "uncertain", "the 2 models disagree"),      # ... nor can minilm
    (0.2, 0.05, "human", "all 2 models say human"),
    (0.2, 0.15, "uncertain", "the 2 models disagree"),      # human for one, between for other
    (0.5, 0.5, "uncertain", "all 2 models say uncertain"),
])
def test_all_agree_rule(pa: float, pb: float, verdict: str, head: str) -> None:
    v = decide(PROSE, _panel_score(pa, pb), PANEL)
    assert v.verdict == verdict
    assert v.reasons[0].startswith(head) and "panel score" in v.reasons[0]
    # every member's score and verdict is a reason of its own
    assert v.reasons[1].startswith(f"model minilm: text score {pa:.2f}")
    assert v.reasons[2].startswith(f"model e5: text score {pb:.2f}")
    assert v.p_llm == pytest.approx(mean_logit([pa, pb]))


def test_a_text_unlike_any_members_training_data_gets_no_verdict() -> None:
    far = _panel_score(0.95, 0.95, da=0.5)
    assert unfamiliar_reason(far, PANEL) == ("unlike the model's training data: feature "
                                             "distance 0.500 > 0.200 (model minilm)")
    v = decide(PROSE, far, PANEL)
    assert v.verdict == "uncertain" and "not used" in v.reasons[1]
    # evaluation's "check off" figures decide without it
    assert decide(PROSE, far, PANEL, familiarity=False).verdict == "llm"
    assert PANEL.checks_familiarity and not B.checks_familiarity
    assert PANEL.singles == (A, B) and B.singles == (B,)
    assert unfamiliar_reason(_panel_score(0.95, 0.95), PANEL) is None


def test_parse_member() -> None:
    assert parse_member("e5=runs/x") == ("e5", Path("runs/x"))
    assert parse_member("runs/minilm/") == ("minilm", Path("runs/minilm/"))
    with pytest.raises(InputError, match="plain directory name"):
        parse_member("a/b=runs/x")


def test_a_panel_of_one_model_twice_scores_as_that_model(tmp_path: Path) -> None:
    src = single_model_dir()
    out = tmp_path / "panel"
    meta = build_panel([("a", src), ("b", src)], out, name="pair", version="t1")
    assert meta["members"] == ["a", "b"] and meta["rule"] == "all-agree"
    info = load_model_info(out)
    assert info.label == "pair@t1" and [m.member_name for m in info.members] == ["a", "b"]
    assert info.thresholds.llm == pytest.approx(info.members[0].thresholds.llm)
    assert "(panel)" in (out / "MODEL_CARD.md").read_text(encoding="utf-8")

    texts = [PROSE, "This study investigates the efficacy of a novel intervention, demonstrating "
                    "significant improvements in sleep quality and daytime fatigue among adults."]
    single = Detector.load(src)
    panel = Detector.load(out)
    for s, ps in zip(single.score(texts), panel.score(texts), strict=True):
        assert ps.p_llm == pytest.approx(s.p_llm, abs=1e-9)
        assert [m.p_llm for m in ps.members] == [s.p_llm, s.p_llm]
        assert [m.distance for m in ps.members] == [s.distance, s.distance]
        assert decide(PROSE, ps, panel.info).verdict == decide(PROSE, s, single.info).verdict

    # the command line builds the same, and refuses to overwrite
    assert main(["panel", "--member", f"a={src}", "--member", f"b={src}",
                 "--out", str(tmp_path / "cli"), "--version", "t1"]) == 0
    assert main(["panel", "--member", f"a={src}", "--member", f"b={src}",
                 "--out", str(tmp_path / "cli"), "--version", "t1"]) == 2


def test_panel_validation_refuses_data_the_members_were_not_trained_on(tmp_path: Path) -> None:
    src = single_model_dir()
    other = tmp_path / "other.jsonl"
    other.write_bytes(orjson.dumps({"text": PROSE, "label": "human"}) + b"\n")
    with pytest.raises(InputError, match="differ from those the members were trained on"):
        build_panel([("a", src), ("b", src)], tmp_path / "p", name="p", version="1",
                    data=[other])
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.partial").exists()


def _write_panel(root: Path, meta: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "crowdguard-model.json").write_bytes(orjson.dumps(meta))
    return root


@pytest.mark.parametrize(("edit", "message"), [
    ({"members": ["a"]}, "two or more member directories"),
    ({"members": ["a", "a"]}, "named twice"),
    ({"members": ["a", "../b"]}, "directly inside the panel directory"),
    ({"rule": "majority"}, "unknown panel rule"),
    ({"kind": "forest"}, "unknown model kind"),
    ({"members": ["a", "missing"]}, "does not exist"),
    ({"veto": ["x"]}, "\"veto\" lists members of the panel"),
    ({"veto": "a"}, "\"veto\" lists members of the panel"),
    ({"veto": ["a", "b"]}, "every member is a veto member"),
])
def test_broken_panel_directories_are_explained(tmp_path: Path, edit: dict, message: str) -> None:
    import shutil

    root = tmp_path / "panel"
    root.mkdir()
    for name in ("a", "b"):
        shutil.copytree(single_model_dir(), root / name)
    meta = {"format": 1, "kind": "panel", "name": "p", "version": "1", "members": ["a", "b"],
            **edit}
    with pytest.raises(ModelError, match=message):
        load_model_info(_write_panel(root, meta))


def test_a_panel_cannot_be_a_member(tmp_path: Path) -> None:
    src = single_model_dir()
    inner = tmp_path / "inner"
    build_panel([("a", src), ("b", src)], inner, name="p", version="1")
    with pytest.raises(ModelError, match="a member must be a single model"):
        build_panel([("a", src), ("b", inner)], tmp_path / "outer", name="p", version="1")


C = _info("nonnative", llm=0.7, human=0.4)
VETO_PANEL = replace(_info("panel", llm=0.85, human=0.2), members=(A, B, C), veto=("nonnative",))


def _veto_score(pa: float, pb: float, pc: float) -> TextScore:
    members = (TextScore(pa, 0.0, 40, False, 0.1), TextScore(pb, 0.0, 40, False, None),
               TextScore(pc, 0.0, 40, False, None))
    p = mean_logit([pa, pb])  # what Panel.score gives: the veto member's score left out
    return TextScore(p, logit(p), 40, False, None, members)


@pytest.mark.parametrize(("pc", "verdict", "head"), [
    (0.9, "llm", "all 3 models say llm"),
    (0.5, "uncertain", "the 3 models disagree"),   # the veto member blocks the accusation
])
def test_a_veto_member_votes_but_does_not_score(pc: float, verdict: str, head: str) -> None:
    assert VETO_PANEL.scorers == (A, B)
    v = decide(PROSE, _veto_score(0.95, 0.85, pc), VETO_PANEL)
    assert v.verdict == verdict and v.reasons[0].startswith(head)
    assert v.reasons[3].startswith(f"model nonnative (veto): text score {pc:.2f}")
    assert v.p_llm == pytest.approx(mean_logit([0.95, 0.85]))
    # it blocks human verdicts the same way: all must agree
    assert decide(PROSE, _veto_score(0.2, 0.05, pc), VETO_PANEL).verdict == "uncertain"


FOREIGN_PASTE = Signals(events_available=True, n_pastes=1, paste_share=1.0,
                        foreign_paste_share=0.9, foreign_paste_chars=450, typed_share=0.0)


@pytest.mark.parametrize(("pa", "pb", "pc", "verdict", "held_by"), [
    (0.8, 0.75, 0.6, "llm", None),             # every member at or above its midpoint
    (0.8, 0.75, 0.5, "uncertain", "model nonnative (veto) scores 0.50 < 0.55"),
    (0.55, 0.99, 0.9, "uncertain", "model minilm scores 0.55 < 0.60"),
])
def test_a_foreign_paste_lowers_every_members_bar_veto_included(
        pa: float, pb: float, pc: float, verdict: str, held_by: str | None) -> None:
    # text alone: uncertain; the panel score is above the midpoint of the panel's thresholds
    score = _veto_score(pa, pb, pc)
    assert decide(PROSE, score, VETO_PANEL).verdict == "uncertain"
    assert score.p_llm >= (VETO_PANEL.thresholds.llm + VETO_PANEL.thresholds.human) / 2
    v = judge(PROSE, score, VETO_PANEL, FOREIGN_PASTE)
    assert v.verdict == verdict and v.p_llm == score.p_llm
    if held_by is None:
        assert v.reasons[-1].endswith("uncertain -> llm")
        assert member_below_midpoint(score, VETO_PANEL) is None
    else:
        assert held_by in v.reasons[-1] and v.reasons[-1].endswith("kept uncertain")
    # a single model has no members to hold it back
    assert member_below_midpoint(score.members[0], A) is None


TEXT_ONLY_PANEL = replace(VETO_PANEL, text_only_veto=("nonnative",))


def test_a_text_only_veto_member_blocks_the_text_verdict_but_not_the_paste_rule() -> None:
    # the veto member says human: on the text alone it blocks llm, as any veto member
    score = _veto_score(0.95, 0.85, 0.3)
    v = decide(PROSE, score, TEXT_ONLY_PANEL)
    assert v.verdict == "uncertain"
    assert v.reasons[3].startswith("model nonnative (veto, text only): text score 0.30")
    # with a large paste from outside the task, only the other members must clear their bar
    assert member_below_midpoint(score, TEXT_ONLY_PANEL) is None
    pasted = judge(PROSE, score, TEXT_ONLY_PANEL, FOREIGN_PASTE)
    assert pasted.verdict == "llm" and pasted.reasons[-1].endswith("uncertain -> llm")
    # where it is an ordinary veto member, the same paste is held back by it
    assert judge(PROSE, score, VETO_PANEL, FOREIGN_PASTE).verdict == "uncertain"
    # a scoring member below its midpoint still holds the paste back
    held = judge(PROSE, _veto_score(0.55, 0.99, 0.3), TEXT_ONLY_PANEL, FOREIGN_PASTE)
    assert held.verdict == "uncertain" and "model minilm scores 0.55 < 0.60" in held.reasons[-1]


def test_text_only_veto_members_are_written_loaded_and_shown(tmp_path: Path) -> None:
    src = single_model_dir()
    out = tmp_path / "panel"
    meta = build_panel([("a", src), ("b", src), ("v", src), ("w", src)], out, name="quad",
                       version="q1", veto=["v"], text_only_veto=["w"])
    assert meta["veto"] == ["v", "w"] and meta["text_only_veto"] == ["w"]
    info = load_model_info(out)
    assert info.veto == ("v", "w") and info.text_only_veto == ("w",)
    assert [m.member_name for m in info.scorers] == ["a", "b"]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| `v` (veto) |" in card and "| `w` (veto, text only) |" in card
    assert "every member but the text-only veto member `w`, which blocks verdicts" in card
    with pytest.raises(InputError, match="--text-only-veto x: not a member name"):
        build_panel([("a", src), ("b", src)], tmp_path / "p2", name="p", version="1",
                    text_only_veto=["x"])
    # the metadata may only name veto members as text-only
    meta = orjson.loads((out / METADATA_FILE).read_bytes())
    meta["text_only_veto"] = ["a"]
    (out / METADATA_FILE).write_bytes(orjson.dumps(meta))
    with pytest.raises(ModelError, match="\"text_only_veto\" lists veto members"):
        load_model_info(out)


def test_a_panel_with_a_veto_member_ranks_texts_as_the_others_do(tmp_path: Path) -> None:
    src = single_model_dir()
    out = tmp_path / "panel"
    meta = build_panel([("a", src), ("b", src), ("v", src)], out, name="trio", version="t1",
                       veto=["v", "v"])
    assert meta["veto"] == ["v"]
    info = load_model_info(out)
    assert info.veto == ("v",) and [m.member_name for m in info.scorers] == ["a", "b"]
    assert info.thresholds.llm == pytest.approx(info.members[0].thresholds.llm)
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| `v` (veto) |" in card and "the veto member `v` left out" in card
    single, panel = Detector.load(src), Detector.load(out)
    texts = [PROSE, PROSE + " They also ate more vegetables."]
    for s, ps in zip(single.score(texts), panel.score(texts), strict=True):
        assert ps.p_llm == pytest.approx(s.p_llm, abs=1e-9) and len(ps.members) == 3
    with pytest.raises(InputError, match="--veto x: not a member name"):
        build_panel([("a", src), ("b", src)], tmp_path / "p2", name="p", version="1",
                    veto=["x"])
    with pytest.raises(InputError, match="at least one must score"):
        build_panel([("a", src), ("b", src)], tmp_path / "p3", name="p", version="1",
                    veto=["a", "b"])
    # the command line takes --veto
    assert main(["panel", "--member", f"a={src}", "--member", f"b={src}", "--veto", "b",
                 "--out", str(tmp_path / "cli"), "--version", "t1"]) == 0
    assert load_model_info(tmp_path / "cli").veto == ("b",)


def _texts_file(path: Path, tag: str, n: int) -> Path:
    lines = [orjson.dumps({"text": f"{tag} text number {i} about walking and sleep, {kind}.",
                           "label": kind})
             for kind in ("human", "llm") for i in range(n)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _meta(files: list[Path], seed: int) -> dict:
    return {"name": f"m{seed}", "training": {
        "data": [{"file": f.name, "sha256": file_sha256(f)} for f in files],
        "seed": seed, "val_fraction": 0.25, "group_field": None}}


def test_panel_validation_keeps_the_texts_no_member_trained_on(tmp_path: Path) -> None:
    f1 = _texts_file(tmp_path / "one.jsonl", "first", 8)
    f2 = _texts_file(tmp_path / "two.jsonl", "second", 8)
    a, b = _meta([f1], 1), _meta([f1, f2], 2)
    # members split alike: exactly their shared split
    _, held = split_validation(load_dataset([f1]).examples, 0.25, 1)
    assert [e.text for e in shared_validation([a, a], [f1])] == [e.text for e in held]
    # members trained on different files: what one held out and none trained on
    train_a, val_a = split_validation(load_dataset([f1]).examples, 0.25, 1)
    train_b, val_b = split_validation(load_dataset([f1, f2]).examples, 0.25, 2)
    trained = {e.text for e in train_a + train_b}
    want = list(dict.fromkeys(e.text for e in val_a + val_b if e.text not in trained))
    got = [e.text for e in shared_validation([a, b], [f1, f2])]
    assert got == want and got and not set(got) & trained
    assert any(e.source.endswith("two.jsonl") for e in shared_validation([a, b], [f1, f2]))
    with pytest.raises(InputError, match="two.jsonl not given unchanged"):
        shared_validation([a, b], [f1])
    with pytest.raises(InputError, match="no member trained on two.jsonl"):
        shared_validation([a, a], [f1, f2])
    with pytest.raises(InputError, match="m9 has no training record"):
        shared_validation([a, {"name": "m9"}], [f1])

from pathlib import Path

from service.detector.detector import TextScore
from service.detector.model_dir import Calibration, ModelInfo, Thresholds
from service.verdict import decide

INFO = ModelInfo(path=Path("."), name="m", version="1", max_length=256, files={},
                 calibration=Calibration(), thresholds=Thresholds(llm=0.9, human=0.2),
                 min_words=15, min_english=0.2)
PROSE = ("The walkers in this study slept for longer and they said that they were less tired "
         "during the day than the people who did not walk at all.")


def _s(p, truncated=False):
    return TextScore(p_llm=p, margin=0.0, tokens=256 if truncated else 40, truncated=truncated)


def test_thresholds_make_three_verdicts_with_reasons():
    assert decide(PROSE, _s(0.95), INFO).verdict == "llm"
    assert decide(PROSE, _s(0.05), INFO).verdict == "human"
    mid = decide(PROSE, _s(0.5), INFO)
    assert mid.verdict == "uncertain" and "between thresholds" in mid.reasons[0]
    assert all(decide(PROSE, _s(p), INFO).reasons for p in (0.0, 0.5, 1.0))


def test_short_and_non_english_texts_abstain():
    short = decide("Too short to say.", _s(0.99), INFO)
    assert short.verdict == "uncertain" and "too short" in short.reasons[0]
    german = ("Die Teilnehmer schliefen durchschnittlich zweiundzwanzig Minuten länger und "
              "berichteten weniger Müdigkeit tagsüber, ohne schwerwiegende Nebenwirkungen.")
    v = decide(german, _s(0.99), INFO)
    assert v.verdict == "uncertain" and "not English" in v.reasons[0]
    assert decide("   ", None, INFO).reasons == ("empty text",)


def test_truncation_is_stated():
    v = decide(PROSE, _s(0.95, truncated=True), INFO)
    assert any("first 256 tokens" in r for r in v.reasons)


def test_texts_unlike_the_training_data_get_no_verdict():
    from dataclasses import replace

    from service.detector.model_dir import Familiarity
    from service.signals import Signals, fuse

    info = replace(INFO, familiarity=Familiarity(threshold=0.2, quantile=0.99))

    def s(p, d):
        return TextScore(p_llm=p, margin=0.0, tokens=40, truncated=False, distance=d)

    assert decide(PROSE, s(0.95, 0.199), info).verdict == "llm"
    far = decide(PROSE, s(0.95, 0.31), info)
    assert far.verdict == "uncertain" and far.p_llm == 0.95
    assert far.reasons[0] == "unlike the model's training data: feature distance 0.310 > 0.200"
    assert "text score 0.95 not used" in far.reasons
    assert decide(PROSE, s(0.05, 0.31), info).verdict == "uncertain"  # no clearance either
    # a model without the check, or a score without a distance, decides as before
    assert decide(PROSE, s(0.95, 0.31), INFO).verdict == "llm"
    assert decide(PROSE, s(0.95, None), info).verdict == "llm"
    # behaviour cannot turn the unjudged text into llm: fusion sees it as abstained
    pasted = Signals(events_available=True, foreign_paste_share=0.9, foreign_paste_chars=900)
    assert fuse(far, pasted, info.thresholds).verdict == "uncertain"


def test_a_chat_assistants_reply_formula_is_llm_whatever_the_score():
    from dataclasses import replace

    from service.detector.model_dir import Familiarity
    from service.text import assistant_reply_formula

    reply = "Sure, here's a summary of the study: " + PROSE
    v = decide(reply, _s(0.05), INFO)
    assert v.verdict == "llm" and v.p_llm == 0.05
    assert v.reasons[:2] == ("opens like a chat assistant's reply: \"Sure, here's\"",
                             "text score 0.05")
    # unlike the training data: the score is not used, the formula still is
    info = replace(INFO, familiarity=Familiarity(threshold=0.2, quantile=0.99))
    far = decide(reply, TextScore(p_llm=0.3, margin=0.0, tokens=40, truncated=False,
                                  distance=0.5), info)
    assert far.verdict == "llm" and "text score 0.30 not used" in far.reasons
    # too short to judge stays uncertain; no score, no verdict
    assert decide("Sure, here's the summary.", _s(0.99), INFO).verdict == "uncertain"
    assert decide(reply, None, INFO).verdict == "uncertain"
    # only the opening counts, and only an agreement followed by "here is/are"
    for text in ("Of course, the walkers slept longer. " + PROSE,
                 "Here is my summary. " + PROSE,
                 "Sure enough, " + PROSE,
                 PROSE + " Sure, here's what I think.",
                 'A user said: "as an AI language model, I cannot help". ' + PROSE):
        assert assistant_reply_formula(text) is None, text
        assert decide(text, _s(0.05), INFO).verdict == "human"
    for text, formula in (("Certainly! Here is a news article about it", "Certainly! Here is"),
                          ('"Of course. Here are ten sentences', "Of course. Here are"),
                          ("sure here\u2019s a story", "sure here\u2019s"),
                          ("As an AI language model, I cannot summarise this",
                           "As an AI language model, I")):
        assert assistant_reply_formula(text) == formula
        assert decide(text + " " + PROSE, _s(0.05), INFO).reasons[0] == (
            f'opens like a chat assistant\'s reply: "{formula}"')

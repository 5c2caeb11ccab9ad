"""``crowdguard panel``: join trained model directories into one panel directory.

The members are copied (the files their metadata names, plus their model
cards) into sub-directories of the panel, so the panel is one self-contained
directory like any model. The panel's metadata names them and the rule that
joins their verdicts (:mod:`service.detector.model_dir`, :mod:`service.verdict`).

Given the files the members were trained on (``data``), the panel is measured
on the validation texts that no member trained on (:func:`shared_validation`):
members trained with the same files, seed and validation share hold out the
same texts whatever their base encoder
(:func:`~service.training.data.split_validation`), so for them that is their
shared split; members trained on different files keep the texts one held out
and none trained on. Those texts calibrated and placed the thresholds of the
members, so the panel's validation figures say how the members' thresholds
combine, not how the panel does on new writing.

Needs the runtime only (onnxruntime, tokenizers): no torch.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import orjson

from ..detector.model_dir import METADATA_FILE, PANEL_KIND, PANEL_RULES, load_model_info
from ..errors import InputError, ModelError, TrainingError
from .data import Example, file_sha256, load_dataset, split_validation
from .export import CARD_FILE, metadata_header, write_metadata, write_model_card

__all__ = ["build_panel", "parse_member", "shared_validation"]

log = logging.getLogger(__name__)


def parse_member(spec: str) -> tuple[str, Path]:
    """``NAME=DIR`` or ``DIR`` (named after the directory) -> ``(name, dir)``."""
    name, sep, path = spec.partition("=")
    if not sep:
        path, name = spec, Path(spec.rstrip("/")).name
    if not name or "/" in name or name in (".", ".."):
        raise InputError(f"member {spec!r}: the name must be a plain directory name "
                         "(NAME=DIR)", reason="bad_member")
    return name, Path(path)


def _split_key(meta: dict[str, Any]) -> tuple[Any, ...]:
    tr = meta.get("training") or {}
    return (tuple((d.get("file"), d.get("sha256")) for d in tr.get("data", [])),
            tr.get("seed"), tr.get("val_fraction"), tr.get("group_field"))


def build_panel(members: list[tuple[str, Path]], out: Path, *, name: str, version: str,
                data: list[Path] | None = None, rule: str = PANEL_RULES[0],
                veto: list[str] | None = None, text_only_veto: list[str] | None = None,
                threads: int | None = None,
                cross_fit: dict[str, Any] | None = None,
                validation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write a panel directory ``out`` of ``members``; return its metadata.

    ``veto`` names members that vote under the rule but are left out of
    ``p_llm`` (:mod:`service.detector.panel`); ``text_only_veto`` names veto
    members (added to ``veto`` if missing) that the behaviour rules of
    :mod:`service.signals` leave out, so they hold back verdicts on the text only.

    ``cross_fit`` and ``validation`` come from ``train --folds``
    (:func:`~service.training.train._train_fold_panel`): how the fold members
    were made, and their pooled out-of-fold figures.
    """
    if len(members) < 2:
        raise InputError("a panel needs two or more members", reason="bad_member")
    names = [n for n, _ in members]
    if len(set(names)) != len(names):
        raise InputError(f"member names must differ, got {names}; name them NAME=DIR",
                         reason="bad_member")
    if rule not in PANEL_RULES:
        raise InputError(f"unknown rule {rule!r}; known: {', '.join(PANEL_RULES)}",
                         reason="bad_rule")
    text_only = list(dict.fromkeys(text_only_veto or []))
    veto = list(dict.fromkeys([*(veto or []), *text_only]))
    if not set(veto) <= set(names):
        flag = "--text-only-veto" if set(text_only) - set(names) else "--veto"
        raise InputError(f"{flag} {', '.join(sorted(set(veto) - set(names)))}: not a member "
                         f"name (members: {', '.join(names)})", reason="bad_member")
    if len(veto) == len(names):
        raise InputError("every member is a veto member; at least one must score",
                         reason="bad_member")
    metas = []
    for _, path in members:
        info = load_model_info(path)  # fails fast on anything that is not a model
        if info.members:
            raise ModelError(f"{path} is a panel; a member must be a single model")
        metas.append(info.raw)
    if out.exists():
        raise TrainingError(f"{out} exists; give a new directory for the panel")
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        for (member_name, path), member_meta in zip(members, metas, strict=True):
            dst = tmp / member_name
            dst.mkdir()
            for file in [*member_meta["files"].values(), METADATA_FILE, CARD_FILE]:
                if (path / file).is_file():
                    shutil.copy2(path / file, dst / file)
        meta: dict[str, Any] = {
            **metadata_header(name, version, PANEL_KIND),
            "rule": rule,
            "members": names,
            **({"veto": veto} if veto else {}),
            **({"text_only_veto": text_only} if text_only else {}),
            "member_versions": {n: f"{m.get('name')}@{m.get('version')}"
                                for n, m in zip(names, metas, strict=True)},
        }
        if cross_fit is not None:
            meta["cross_fit"] = cross_fit
        if validation is not None:
            meta["validation"] = validation
        write_metadata(tmp, meta)
        if data is not None:
            meta["validation"] = _validate(tmp, metas, data, threads)
            write_metadata(tmp, meta)
        write_model_card(tmp, meta)
        load_model_info(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.rename(out)
    return meta


def shared_validation(metas: list[dict[str, Any]], data: list[Path]) -> list[Example]:
    """The texts of ``data`` that no member with these metadata trained on.

    Each member's split is redone on its own files, found in ``data`` by name and
    hash and read in the order it was trained on. A text is kept when it is in a
    member's validation part and in no member's training part; texts are compared
    without their whitespace, so one text whose lost spaces were put back
    differently in two file sets (:class:`~service.text.LineBreakRepair`) is still
    one text. Members trained on the same files, seed and validation share keep
    exactly the split they share.

    Raises :class:`InputError` when a member's file is not in ``data``, a file of
    ``data`` trained no member, or no text is left.
    """
    folded = [m.get("name", "?") for m in metas if (m.get("training") or {}).get("folds")]
    if folded:
        raise InputError(f"{', '.join(folded)} was cross-fitted (train --folds): it trained on "
                         "every text, so no validation texts are left to measure the panel on; "
                         "build the panel without --data", reason="data_mismatch")
    untrained = [m.get("name", "?") for m in metas if not isinstance(m.get("training"), dict)]
    if untrained:
        raise InputError(f"{', '.join(untrained)} has no training record in its metadata, so "
                         "its validation texts are unknown; build the panel without --data",
                         reason="data_mismatch")
    given = {(path.name, file_sha256(path)): path for path in data}
    splits: dict[tuple[Any, ...], dict[str, Any]] = {}
    for meta in metas:
        splits.setdefault(_split_key(meta), meta["training"])
    used: set[tuple[str, str]] = set()
    trained: set[str] = set()
    held_out: list[Example] = []
    for key, tr in splits.items():
        files = list(key[0])
        missing = [name for name, sha in files if (name, sha) not in given]
        if missing:
            raise InputError("the data files differ from those the members were trained on "
                             f"(names and hashes are in their metadata): {', '.join(missing)} "
                             "not given unchanged", reason="data_mismatch")
        used.update(files)
        dataset = load_dataset([given[f] for f in files], group_field=tr.get("group_field"))
        train, val = split_validation(dataset.examples, float(tr["val_fraction"]),
                                      int(tr["seed"]))
        trained.update(_text_key(e.text) for e in train)
        held_out.extend(val)
    unused = [name for name, sha in given if (name, sha) not in used]
    if unused:
        raise InputError("the data files differ from those the members were trained on "
                         f"(names and hashes are in their metadata): no member trained on "
                         f"{', '.join(unused)}", reason="data_mismatch")
    out: list[Example] = []
    for ex in held_out:
        key = _text_key(ex.text)
        if key not in trained:
            trained.add(key)  # each text once
            out.append(ex)
    if not out:
        raise InputError("every validation text of a member was trained on by another member, "
                         "so none is left to measure the panel on; build the panel without "
                         "--data", reason="data_mismatch")
    return out


def _text_key(text: str) -> str:
    return "".join(text.split())


def _validate(panel_dir: Path, metas: list[dict[str, Any]], data: list[Path],
              threads: int | None) -> dict[str, Any]:
    """The panel's figures on the validation split its members share."""
    from ..detector import Detector
    from ..evaluation import summarize
    from ..settings import cpu_count
    from ..verdict import decide

    val = shared_validation(metas, data)
    panel = Detector.load(panel_dir, threads=threads or cpu_count())
    texts = [e.text for e in val]
    scores = panel.score(texts)
    verdicts = [decide(t, s, panel.info).verdict for t, s in zip(texts, scores, strict=True)]
    figures = summarize([e.label for e in val], [s.p_llm for s in scores], verdicts)
    log.info("panel validation on %d texts: %s", len(val),
             orjson.dumps({k: figures[k] for k in ("auroc", "llm_verdict_fpr",
                                                   "llm_verdict_tpr", "uncertain_share")}).decode())
    return figures

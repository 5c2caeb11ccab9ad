"""Fine-tuning a small encoder into crowdguard's detector, end to end.

:func:`train_model` reads labelled files, holds out a stratified validation
set, fine-tunes a base encoder (PyTorch, CPU) for two labels, exports it to
ONNX (fp32 and dynamic int8), calibrates it through the runtime's inference
path and writes the model directory the service loads. With ``folds`` it
holds nothing out: it trains one model per fold, calibrates them together on
what each held out, and writes them as one panel directory (cross-fitting).

Base encoders come only from pip packages that ship their weights (see
:mod:`.bases`) or from a local directory; nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from ..detector.backend import int8_saturates
from ..detector.familiarity import FAMILIARITY_FILE
from ..detector.model_dir import CHAR_NGRAMS_KIND
from ..detector.model_dir import int8_weight_bits as recorded_weight_bits, load_model_info
from ..errors import InputError, ModelError, TrainingError
from ..settings import cpu_count
from ..text import sentences
from .bases import DEFAULT_BASE, resolve_base
from .calibrate import CalibrationResult, calibrate, calibrate_margins, held_out_margins
from .data import Example, load_dataset, split_folds, split_validation
from .export import (EMBEDDING_BLOCK, FP32_FILE, INT8_FILE, METADATA_FILE, MIN_4BIT_ROWS,
                     TOKENIZER_FILE, expose_features, export_onnx, metadata_header, quantize_int8,
                     save_tokenizer, write_metadata, write_model_card)
from .familiarity import fit_familiarity, held_out_distances, record_familiarity

__all__ = ["train_model", "finish_model", "refinish_model", "source_weights"]

log = logging.getLogger(__name__)

#: Abstention defaults written into the metadata (the runtime applies them).
ABSTAIN = {"min_words": 15, "min_english": 0.2}
LABEL_NAMES = ["human", "llm"]
TARGET_FNR = 0.05
#: Where :func:`refinish_model` keeps the metadata it started from.
REFINISH_BACKUP = "crowdguard-model.before-refinish.json"
#: Widths of the int8 files' MatMul weights (:func:`~.export.quantize_int8`): 7 runs
#: on every x86 CPU, 8 follows fp32 more closely but needs VNNI (or ARM).
INT8_WEIGHT_BITS = (7, 8)


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _load_hf(path: Path) -> tuple[Any, Any]:
    """Load tokenizer and a fresh 2-label classifier head from ``path``, offline."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the one environment write: never reach the hub
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise TrainingError("training needs the train extra: pip install 'crowdguard[train]'")\
            from exc
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" notice is expected
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, use_fast=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), num_labels=2, local_files_only=True,
            id2label=dict(enumerate(LABEL_NAMES)), label2id={n: i for i, n in enumerate(LABEL_NAMES)})
    except (OSError, ValueError) as exc:
        raise TrainingError(f"cannot load base model from {path}: {exc}") from exc
    return tokenizer, model


def source_weights(examples: Sequence[Example]) -> list[float]:
    """Per-example loss weights that give every source file the same total weight.

    A file of ``n`` examples out of ``N`` in ``S`` files weighs ``N / (S * n)`` per
    example, so the weights average 1 and a small file (a few hundred crowd
    summaries beside thousands of DetectRL texts) counts as much as a large one.
    """
    counts: dict[str, int] = {}
    for e in examples:
        counts[e.source] = counts.get(e.source, 0) + 1
    total, files = len(examples), len(counts)
    return [total / (files * counts[e.source]) for e in examples]


def _head_logits(model: Any, cls: Any) -> Any:
    """The classifier head of ``model`` applied to CLS vectors ``cls`` (batch x hidden).

    BERT-family models put the base model's pooler and a linear layer on the
    first token; MPNet's head takes the hidden-state sequence and reads its first
    token itself. Either way a one-token sequence stands in for the full one.
    """
    seq = cls[:, None, :]
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None:
        return model.classifier(model.dropout(pooler(seq)))
    return model.classifier(seq)


def _head_parameters(model: Any) -> list[Any]:
    """Parameters of the classifier head: everything outside the encoder, plus its pooler."""
    prefix = model.base_model_prefix + "."
    return [p for n, p in model.named_parameters()
            if not n.startswith(prefix) or ".pooler." in f".{n}"]


def _fit_head(model: Any, ids: Sequence[Sequence[int]], labels: Any, *, pad: int, epochs: int,
              seed: int, progress: bool, weights: Sequence[float] | None = None,
              lr: float = 1e-3, batch_size: int = 64) -> float:
    """Fit the classifier head on the frozen encoder's CLS vectors; return the last loss.

    This is the linear-probe step of LP-FT (Kumar et al., ICLR 2022): a head
    fitted first lets the full fine-tuning start from useful gradients, so it
    bends the pretrained features less, which tends to hold up better on data
    unlike the training set. The encoder runs once over the training texts (no
    dropout); the head then trains for ``epochs`` passes over the cached vectors.
    ``ids`` are the training texts' token ids (:func:`_encode`), ``labels`` a
    tensor of their labels.
    """
    import torch
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    model.eval()
    cls = torch.zeros((len(ids), model.config.hidden_size), dtype=torch.float32)
    batches = _batches(ids, 32, gen)
    with torch.no_grad(), tqdm(total=len(ids), desc="encoding for the head", unit="text",
                               disable=not progress, leave=False) as bar:
        for idx in batches:
            input_ids, mask = _pad(ids, idx, pad)
            hidden = model.base_model(input_ids=input_ids, attention_mask=mask).last_hidden_state
            cls[idx] = hidden[:, 0, :]
            bar.update(len(idx))
    w = (torch.ones(len(ids)) if weights is None
         else torch.tensor(weights, dtype=torch.float32))
    params = _head_parameters(model)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    model.train()  # dropout on, as in fine-tuning
    last = float("nan")
    for _ in range(epochs):
        order = torch.randperm(len(ids), generator=gen)
        total, norm = 0.0, 0.0
        for k in range(0, len(order), batch_size):
            idx = order[k:k + batch_size]
            each = torch.nn.functional.cross_entropy(_head_logits(model, cls[idx]), labels[idx],
                                                     reduction="none")
            loss = (each * w[idx]).sum() / w[idx].sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            total += float(loss.item()) * float(w[idx].sum())
            norm += float(w[idx].sum())
        last = total / norm
    log.info("head fitted on frozen features: %d epochs, last loss %.4f", epochs, last)
    return last


def _encode(tokenizer: Any, train: Sequence[Example], max_length: int) -> tuple[Any, Any, int]:
    """Token ids (truncated to ``max_length``), the label tensor and the pad id of ``train``."""
    import torch

    ids: list[list[int]] = tokenizer([e.text for e in train], truncation=True,
                                     max_length=max_length)["input_ids"]
    labels = torch.tensor([e.label for e in train], dtype=torch.long)
    return ids, labels, tokenizer.pad_token_id or 0


def _pad(ids: Sequence[Sequence[int]], idx: Sequence[int], pad: int) -> tuple[Any, Any]:
    """Input ids and attention mask of the texts ``idx``, right-padded to the longest."""
    import torch

    width = max(len(ids[i]) for i in idx)
    input_ids = torch.full((len(idx), width), pad, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for r, i in enumerate(idx):
        input_ids[r, :len(ids[i])] = torch.tensor(ids[i])
        mask[r, :len(ids[i])] = 1
    return input_ids, mask


@dataclass(frozen=True)
class _Distill:
    """A teacher's calibrated logit for each training text, and the share of that text's
    loss it takes (1 for a text with no label of its own, such as a splice)."""

    logits: tuple[float, ...]
    shares: tuple[float, ...]
    temperature: float

    def subset(self, keep: Sequence[int]) -> _Distill:
        return _Distill(tuple(self.logits[i] for i in keep), tuple(self.shares[i] for i in keep),
                        self.temperature)


def _distill_loss(hard: Any, logits: Any, teacher: Any, share: Any, temperature: float) -> Any:
    """Per-example ``(1 - w) * hard + w * T^2 * BCE(sigmoid(m / T), sigmoid(z / T))``.

    ``m`` is the student's margin ``logit[llm] - logit[human]`` and ``z`` the
    teacher's calibrated logit (Hinton et al. 2015, two classes). Dividing by
    ``T`` softens both, so the teacher's margins on texts it is sure about still
    differ; ``T^2`` keeps the soft part's gradients on the hard part's scale. ``w``
    is ``share``, one per example.
    """
    import torch

    t = temperature
    margin = (logits[:, 1] - logits[:, 0]) / t
    soft = torch.nn.functional.binary_cross_entropy_with_logits(
        margin, torch.sigmoid(teacher / t), reduction="none") * (t * t)
    return (1 - share) * hard + share * soft


def splice_texts(train: Sequence[Example], n: int, seed: int) -> list[str]:
    """``n`` texts, each the first half of one training text's sentences followed by the
    second half of another's (both drawn at random, either label; seeded).

    They carry no label: only a teacher can say how much of an LLM's writing each
    holds, so they serve distillation (``train --splices``) and nothing else.
    """
    rng = random.Random(seed)
    usable = [parts for parts in (sentences(e.text) for e in train) if len(parts) >= 2]
    if not usable:
        raise InputError("no training text has two sentences to splice", reason="no_splices")
    out = []
    for _ in range(n):
        a, b = rng.choice(usable), rng.choice(usable)
        out.append(" ".join(a[:len(a) // 2] + b[len(b) // 2:]))
    return out


def _load_teacher(teacher: Path) -> Any:
    """The teacher's :class:`~service.detector.Detector` (a panel for a panel directory)."""
    from ..detector import Detector
    from ..errors import CrowdguardError

    if not (teacher / METADATA_FILE).is_file():
        raise TrainingError(f"the teacher {teacher} is not a model directory (no "
                            f"{METADATA_FILE}); give one written by `crowdguard train` or "
                            "`crowdguard panel`")
    try:
        return Detector.load(teacher, threads=cpu_count())
    except CrowdguardError as exc:
        raise TrainingError(f"cannot load the teacher {teacher}: {exc}") from exc


def _teacher_logits(detector: Any, texts: Sequence[str], *, progress: bool) -> tuple[float, ...]:
    """The teacher's calibrated logit of each text, scored through the runtime."""
    from tqdm import tqdm

    from ..detector.model_dir import logit

    out: list[float] = []
    step = 256
    t0 = time.monotonic()
    for start in tqdm(range(0, len(texts), step), desc="teacher", unit="batch",
                      disable=not progress, leave=False):
        out.extend(logit(p) for p in detector.probabilities(texts[start:start + step]))
    log.info("teacher %s scored %d training texts in %.1f s: logit quartiles %s",
             detector.info.path, len(texts), time.monotonic() - t0,
             np.round(np.percentile(out, [25, 50, 75]), 2).tolist() if out else [])
    return tuple(out)


def _warn_unless_same_split(info: Any, training: dict[str, Any]) -> None:
    """Warn when a teacher (its :class:`ModelInfo`) may have trained on texts the new
    model validates on.

    That holds unless every single model of the teacher was trained on the same
    files (by hash) with the same seed, ``val_fraction`` and group field, and so
    held out the same texts: otherwise the new model's calibration, thresholds
    and validation figures rest on texts its teacher has seen.
    """
    def split(tr: dict[str, Any]) -> tuple[Any, ...]:
        return (sorted(d.get("sha256", "") for d in tr.get("data", [])), tr.get("seed"),
                tr.get("val_fraction"), tr.get("group_field"), tr.get("folds"))

    mine = split(training)
    for single in info.singles:
        if split(single.raw.get("training", {})) != mine:
            log.warning("teacher %s was not trained on the same files, seed and val_fraction "
                        "as this model; it may have seen texts this model validates on, which "
                        "makes its calibration and validation figures optimistic", single.path)
            return


def _fine_tune(model: Any, ids: Sequence[Sequence[int]], labels: Any, *, pad: int, epochs: int,
               batch_size: int, lr: float, seed: int, progress: bool,
               weights: Sequence[float] | None = None,
               distill: _Distill | None = None) -> float:
    """Train ``model`` in place; return the mean loss of the last epoch.

    ``ids`` are the training texts' token ids (:func:`_encode`), ``labels`` a
    tensor of their labels. ``weights`` (one per example, e.g. from :func:`source_weights`) scale each
    example's loss; without them every example counts the same. With ``distill``
    each example's loss mixes the label's cross-entropy with the teacher's
    (:func:`_distill_loss`).
    """
    import torch
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    example_weights = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    if distill is not None and example_weights is None:
        example_weights = torch.ones(len(ids), dtype=torch.float32)
    teacher = None if distill is None else torch.tensor(distill.logits, dtype=torch.float32)
    shares = None if distill is None else torch.tensor(distill.shares, dtype=torch.float32)
    steps_per_epoch = (len(ids) + batch_size - 1) // batch_size
    total = steps_per_epoch * epochs
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    try:  # the fused CPU kernel saves the per-tensor loop (torch >= 2.4)
        optimizer = torch.optim.AdamW(groups, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.AdamW(groups, lr=lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    last_epoch_loss = float("nan")
    bar = tqdm(total=total, desc="training", unit="step", disable=not progress, leave=False)
    try:
        for epoch in range(epochs):
            losses: list[float] = []
            for idx in _batches(ids, batch_size, gen):
                input_ids, mask = _pad(ids, idx, pad)
                if example_weights is None:
                    loss = model(input_ids=input_ids, attention_mask=mask,
                                 labels=labels[idx]).loss
                else:  # weighted mean of the per-example losses
                    logits = model(input_ids=input_ids, attention_mask=mask).logits
                    each = torch.nn.functional.cross_entropy(logits, labels[idx],
                                                             reduction="none")
                    if distill is not None:
                        each = _distill_loss(each, logits, teacher[idx], shares[idx],
                                             distill.temperature)
                    w = example_weights[idx]
                    loss = (each * w).sum() / w.sum()
                if not torch.isfinite(loss):
                    raise TrainingError(f"loss became {loss.item()} at epoch {epoch + 1}; "
                                        "lower the learning rate")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.item()))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-10:]):.4f}")
            last_epoch_loss = float(np.mean(losses))
            log.info("epoch %d/%d mean loss %.4f", epoch + 1, epochs, last_epoch_loss)
    finally:
        bar.close()
    model.eval()
    return last_epoch_loss


def _batches(ids: Sequence[Sequence[int]], batch_size: int, gen: Any) -> list[list[int]]:
    """Shuffled batches of similar lengths (less padding, so faster on CPU).

    The texts are shuffled, cut into pools of 8 batches, sorted by length
    inside each pool, split into batches, and the batches shuffled again.
    """
    import torch

    order = torch.randperm(len(ids), generator=gen).tolist()
    pool = batch_size * 8
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: len(ids[i]))
        batches.extend(chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size))
    perm = torch.randperm(len(batches), generator=gen).tolist()
    return [batches[k] for k in perm]


def _check_args(epochs: int, batch_size: int, lr: float, max_length: int,
                val_fraction: float, target_fpr: float, head_epochs: int = 0,
                folds: int = 0, distill_weight: float = 0.5,
                distill_temperature: float = 2.0) -> None:
    problems = []
    if not 0 <= distill_weight <= 1:
        problems.append(f"distill_weight must be in [0, 1] (got {distill_weight})")
    if not distill_temperature > 0:
        problems.append(f"distill_temperature must be > 0 (got {distill_temperature})")
    if folds < 0 or folds == 1:
        problems.append(f"folds must be 0 (hold out val_fraction) or 2 or more (got {folds})")
    if epochs < 1:
        problems.append(f"epochs must be >= 1 (got {epochs})")
    if head_epochs < 0:
        problems.append(f"head_epochs must be >= 0 (got {head_epochs})")
    if batch_size < 1:
        problems.append(f"batch_size must be >= 1 (got {batch_size})")
    if not lr > 0:
        problems.append(f"lr must be > 0 (got {lr})")
    if not 8 <= max_length <= 512:
        problems.append(f"max_length must be in 8..512 (got {max_length})")
    if not 0 < val_fraction < 1:
        problems.append(f"val_fraction must be in (0, 1) (got {val_fraction})")
    if not 0 < target_fpr < 1:
        problems.append(f"target_fpr must be in (0, 1) (got {target_fpr})")
    if problems:
        raise TrainingError("; ".join(problems))


def _check_weight_bits(bits: int) -> None:
    """Fail before any work when ``bits`` is not a width, or one this CPU cannot score."""
    if bits not in INT8_WEIGHT_BITS:
        raise TrainingError(f"int8_weight_bits must be 7 or 8 (got {bits})")
    _check_cpu_for_weight_bits(bits, int8_saturates())


def _check_cpu_for_weight_bits(bits: int, saturates: bool | None) -> None:
    """Refuse 8-bit int8 weights where this CPU's int8 kernels saturate with them.

    Calibration scores the validation texts with the int8 file, so an int8 file
    this CPU cannot score correctly cannot be finished here either: without this
    check ``train`` would fine-tune for an hour and then fail. ``saturates`` is
    :func:`~service.detector.backend.int8_saturates` of this CPU; when its flags
    cannot be read (None) the loader warns and training goes on.
    """
    if bits == 8 and saturates:
        raise TrainingError(
            "8-bit int8 weights (--int8-weight-bits 8, or the width of the model being "
            "re-finished) need a CPU with VNNI (AVX512-VNNI or AVX-VNNI) or ARM: calibration "
            "scores the validation texts with the int8 file, and this x86 CPU's int8 kernels "
            "saturate with 8-bit weights. Use --int8-weight-bits 7 here, or run this on a CPU "
            "with VNNI")


@dataclass(frozen=True)
class _Recipe:
    """How each model of one ``train`` run is fine-tuned (fold models and the served one alike)."""

    base_path: Path
    base_name: str
    epochs: int
    seed: int
    max_length: int
    batch_size: int
    lr: float
    balance_sources: bool
    head_epochs: int
    progress: bool


def _fine_tune_and_export(recipe: _Recipe, train: Sequence[Example], out: Path,
                          distill: _Distill | None = None) -> float:
    """Fine-tune ``recipe``'s base on ``train``, export fp32 ONNX and the tokenizer into ``out``.

    ``distill`` holds a teacher's logits, one per text of ``train``.
    Returns the seconds of fine-tuning. The seed is set
    afresh, so every model of a run starts from the same head and batch order.
    """
    import torch

    torch.set_num_threads(cpu_count())
    _seed_everything(recipe.seed)
    tokenizer, model = _load_hf(recipe.base_path)
    limit = int(getattr(model.config, "max_position_embeddings", 512))
    if recipe.max_length > limit:
        raise TrainingError(f"max_length {recipe.max_length} exceeds what {recipe.base_name} "
                            f"supports ({limit})")
    t0 = time.monotonic()
    weights = source_weights(train) if recipe.balance_sources else None
    ids, labels, pad = _encode(tokenizer, train, recipe.max_length)
    if recipe.head_epochs:
        _fit_head(model, ids, labels, pad=pad, epochs=recipe.head_epochs, seed=recipe.seed,
                  progress=recipe.progress, weights=weights)
    final_loss = _fine_tune(model, ids, labels, pad=pad, epochs=recipe.epochs,
                            batch_size=recipe.batch_size, lr=recipe.lr, seed=recipe.seed,
                            progress=recipe.progress, weights=weights, distill=distill)
    seconds = time.monotonic() - t0
    log.info("fine-tuning on %d texts took %.1f s (last epoch loss %.4f)", len(train), seconds,
             final_loss)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".checkpoint-", dir=out) as ckpt:
        try:
            model.save_pretrained(ckpt, safe_serialization=True)
            tokenizer.save_pretrained(ckpt)
        except OSError as exc:
            raise TrainingError(f"cannot save the fine-tuned checkpoint: {exc}") from exc
        del model
        export_onnx(Path(ckpt), out / FP32_FILE)
    save_tokenizer(tokenizer, out / TOKENIZER_FILE, recipe.max_length)
    return seconds


def _train_fold_panel(recipe: _Recipe, examples: Sequence[Example], folds: int, out: Path,
                      meta: dict[str, Any], target_fpr: float, weight_bits: int,
                      distill: _Distill | None = None) -> dict[str, Any]:
    """Cross-fitting: ``folds`` models, each trained without one fold, served as one panel.

    The fold models are fine-tuned and exported into a scratch directory, then
    finished together (:func:`_finish_fold_panel`) and joined into a panel at
    ``out``. Returns the panel's metadata.
    """
    if out.exists():
        raise TrainingError(f"{out} exists; give a new directory for the cross-fitted panel")
    fold_of = split_folds(examples, folds, recipe.seed)
    n = len(examples)
    for k in range(folds):  # before any training: a late fold must not fail hours in
        if len({e.label for i, e in enumerate(examples) if fold_of[i] != k}) < 2:
            raise InputError(f"without fold {k + 1} only one label is left to train on; "
                             "lower --folds or add data", reason="one_class")
    seconds = 0.0
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-folds-", dir=out.parent) as scratch:
        members: list[tuple[Path, dict[str, Any]]] = []
        for k in range(folds):
            keep = [i for i in range(n) if fold_of[i] != k]
            log.info("fold %d/%d: training on %d texts, holding out %d", k + 1, folds,
                     len(keep), n - len(keep))
            member = Path(scratch) / f"fold-{k + 1}"
            t = _fine_tune_and_export(recipe, [examples[i] for i in keep], member,
                                      None if distill is None else distill.subset(keep))
            seconds += t
            training = {**meta["training"], "fold": k + 1, "train_records": len(keep),
                        "seconds": round(t, 1)}
            members.append((member, {**meta, "version": f"{meta['version']}-fold{k + 1}",
                                     "training": training}))
        cross_fit = {"folds": folds, "seed": recipe.seed, "texts": n,
                     "group_field": meta["training"].get("group_field"),
                     "seconds": round(seconds, 1)}
        return _finish_fold_panel(members, examples, fold_of, out, name=meta["name"],
                                  version=meta["version"], cross_fit=cross_fit,
                                  target_fpr=target_fpr, weight_bits=weight_bits)


def _finish_fold_panel(members: Sequence[tuple[Path, dict[str, Any]]],
                       examples: Sequence[Example], fold_of: Sequence[int], out: Path, *,
                       name: str, version: str, cross_fit: dict[str, Any], target_fpr: float,
                       weight_bits: int) -> dict[str, Any]:
    """From exported fold models (member ``k`` held out the texts of fold ``k - 1``) to a panel.

    Each fold model is quantized and scores the texts it held out, through the
    runtime as it will be served (int8 and fp32). Platt calibration, thresholds
    and the familiarity threshold are fitted once on those pooled out-of-fold
    scores, so on every training text, and every member gets them. The members
    are joined into a panel at ``out`` (:func:`~service.training.panel.build_panel`):
    its ``p_llm`` is the sigmoid of the mean of the members' calibrated logits,
    and its verdict is ``llm`` only when every member's is. Returns its metadata.
    """
    from .panel import build_panel

    n = len(examples)
    z_int8, z_fp32, dist = np.zeros(n), np.zeros(n), np.zeros(n)
    parts = []
    for k, (member, member_meta) in enumerate(members):
        held = [i for i in range(n) if fold_of[i] == k]
        layer, member_meta = _runtime_files(member, member_meta, target_fpr, weight_bits)
        z_int8[held], z_fp32[held] = held_out_margins(member, [examples[i].text for i in held])
        parts.append((member, k, held, layer, member_meta))
    result = calibrate_margins([e.label for e in examples], z_int8, z_fp32,
                               target_fpr=target_fpr, target_fnr=TARGET_FNR)
    refs = []
    for member, k, held, _, member_meta in parts:
        # features from the CPU file the calibration chose, as the service computes them
        _apply_calibration(member, member_meta, result, target_fpr)
        ref, dist[held] = held_out_distances(
            member, [e.text for i, e in enumerate(examples) if fold_of[i] != k],
            [examples[i].text for i in held])
        refs.append(ref)
    for (member, _, _, layer, member_meta), ref in zip(parts, refs, strict=True):
        _write_final(member, member_meta, record_familiarity(member, ref, dist, layer=layer))
    return build_panel([(m.name, m) for m, _ in members], out, name=name, version=version,
                       cross_fit=cross_fit, validation=result.validation)


def train_model(data: list[Path], out: Path, *, base: str = DEFAULT_BASE, epochs: int = 4,
                seed: int = 13, max_length: int = 256, batch_size: int = 16, lr: float = 6e-5,
                val_fraction: float = 0.15, target_fpr: float = 0.01,
                name: str = "crowdguard-detector", version: str | None = None,
                group_field: str | None = None, balance_sources: bool = False,
                head_epochs: int = 0, folds: int = 0, teacher: Path | None = None,
                distill_weight: float = 0.5, distill_temperature: float = 2.0,
                splices: int = 0, int8_weight_bits: int = 7,
                progress: bool = True) -> dict[str, Any]:
    """Train, export, quantize and calibrate a detector into ``out``; return its metadata.

    ``out`` receives ``model.int8.onnx``, ``model.onnx``, ``tokenizer.json``,
    ``familiarity.npz``, ``crowdguard-model.json`` and ``MODEL_CARD.md``. Without a
    ``version`` the model is labelled ``dev-<UTC time>``, never taken for a release.
    With ``group_field`` (e.g. ``HITId``) whole groups are held out for validation.
    With ``balance_sources`` each training file weighs the same in the loss
    (:func:`source_weights`); validation and calibration are unchanged.
    With ``head_epochs`` > 0 the classifier head is first fitted on the frozen
    encoder's features for that many passes (:func:`_fit_head`, LP-FT).
    With a ``teacher`` model directory (one model or a panel) the teacher first
    scores the training texts through the runtime, and each text's loss mixes
    its label with the teacher's calibrated logit (knowledge distillation,
    :func:`_distill_loss`; ``distill_weight`` on the teacher, temperature
    ``distill_temperature``). Validation and calibration use labels only. With
    ``splices`` > 0 that many unlabelled texts (:func:`splice_texts`) join the
    fine-tuning, learned from the teacher alone (not with ``folds``,
    ``head_epochs`` or ``balance_sources``, which would treat them as labelled).
    With ``folds`` >= 2 nothing is held out: ``out`` becomes a panel of ``folds``
    models, each trained without one fold (whole groups with ``group_field``),
    calibrated together on the texts each held out (:func:`_train_fold_panel`;
    cross-fitting, ``folds`` trainings and ``folds`` times the inference cost).
    ``int8_weight_bits`` (7 or 8) is the width of the int8 file's MatMul weights
    (:data:`INT8_WEIGHT_BITS`). ``base="char-ngrams"`` fits no encoder but a
    character n-gram model (:func:`~.char_ngrams.train_char_ngrams`), and refuses
    the encoder-only options. Raises :class:`InputError` for bad training data
    and :class:`TrainingError` for everything else that goes wrong.
    """
    if base == CHAR_NGRAMS_KIND:
        return _train_char_ngrams(data, out, seed=seed, val_fraction=val_fraction,
                                  target_fpr=target_fpr, name=name, version=version,
                                  group_field=group_field, progress=progress,
                                  encoder_options={"folds": folds, "teacher": teacher,
                                                   "splices": splices,
                                                   "head_epochs": head_epochs,
                                                   "balance_sources": balance_sources,
                                                   "int8_weight_bits": int8_weight_bits != 7},
                                  ignored={"epochs": epochs != 4, "lr": lr != 6e-5,
                                           "max_length": max_length != 256,
                                           "batch_size": batch_size != 16})
    _check_args(epochs, batch_size, lr, max_length, val_fraction, target_fpr, head_epochs, folds,
                distill_weight, distill_temperature)
    _check_weight_bits(int8_weight_bits)
    if splices < 0 or (splices and (teacher is None or folds or head_epochs or balance_sources)):
        raise TrainingError(f"splices must be >= 0 and need a teacher, and no folds, head_epochs "
                            f"or balance_sources (got {splices}, teacher {teacher}, folds "
                            f"{folds}, head_epochs {head_epochs}, balance_sources "
                            f"{balance_sources})")
    teacher_model = None if teacher is None else _load_teacher(teacher)  # fail fast
    if version is None:
        version = dev_version()
    started = time.monotonic()
    resolved = resolve_base(base)
    dataset = load_dataset(data, group_field=group_field)
    if folds:
        train, val = list(dataset.examples), []
        if len({e.label for e in train}) < 2:
            raise InputError("the data has only one label; training needs both human and llm "
                             "texts", reason="one_class")
        log.info("cross-fitting on %d texts: %d models, each trained without one fold "
                 "(%d duplicates dropped)", len(train), folds, dataset.duplicates)
    else:
        train, val = checked_split(dataset.examples, val_fraction, seed)
        log.info("training on %d texts, validating on %d (%d duplicates dropped)",
                 len(train), len(val), dataset.duplicates)
    recipe = _Recipe(resolved.path, resolved.name, epochs, seed, max_length, batch_size, lr,
                     balance_sources, head_epochs, progress)
    training: dict[str, Any] = {
        "data": [{"file": f.file, "sha256": f.sha256, "records": f.records}
                 for f in dataset.files],
        "seed": seed,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "max_length": max_length,
        "val_fraction": None if folds else val_fraction,
        "train_records": len(train),
        "val_records": len(train) if folds else len(val),
        "line_break_repaired": dataset.repaired,
        "duplicates_dropped": dataset.duplicates,
    }
    if folds:
        training["folds"] = folds
    if group_field is not None:
        training["group_field"] = group_field
    if head_epochs:
        training["head_epochs"] = head_epochs
    distill, tuned = None, list(train)
    if teacher_model is not None:
        tuned += [Example(text=t, label=0, source="splice", line=i + 1)  # label unused: share 1
                  for i, t in enumerate(splice_texts(train, splices, seed) if splices else [])]
        distill = _Distill(_teacher_logits(teacher_model, [e.text for e in tuned],
                                           progress=progress),
                           (distill_weight,) * len(train) + (1.0,) * (len(tuned) - len(train)),
                           distill_temperature)
        info = teacher_model.info
        teacher_model = None  # its sessions are not needed while fine-tuning
        training["teacher"] = {"name": info.name, "version": info.version,
                               "weight": distill_weight, "temperature": distill_temperature}
        _warn_unless_same_split(info, training)
        if splices:
            training["teacher"]["splices"] = splices
    if balance_sources:
        training["source_weights"] = {Path(e.source).name: round(w, 4)
                                      for e, w in zip(train, source_weights(train))}
    meta: dict[str, Any] = {
        **metadata_header(name, version),
        "base": resolved.metadata(),
        "max_length": max_length,
        "labels": list(LABEL_NAMES),
        "training": training,
    }
    if folds:
        meta = _train_fold_panel(recipe, train, folds, out, meta, target_fpr, int8_weight_bits,
                                 distill)
    else:
        training["seconds"] = round(_fine_tune_and_export(recipe, tuned, out, distill), 1)
        meta = finish_model(out, meta, train, val, target_fpr=target_fpr,
                            int8_weight_bits=int8_weight_bits)
    log.info("model written to %s in %.1f s (validation accuracy %s, AUROC %s)", out,
             time.monotonic() - started, meta["validation"]["accuracy"],
             meta["validation"]["auroc"])
    return meta


def dev_version() -> str:
    """The version of a model trained without ``--version``: ``dev-<UTC time>``."""
    return "dev-" + datetime.now(timezone.utc).strftime("%Y%m%dT%H%MZ")


def checked_split(examples: Sequence[Example], val_fraction: float,
                  seed: int) -> tuple[list[Example], list[Example]]:
    """:func:`~.data.split_validation`, refusing a part with only one label (:class:`InputError`)."""
    train, val = split_validation(examples, val_fraction, seed)
    for part, rows in (("training", train), ("validation", val)):
        if len({e.label for e in rows}) < 2:
            raise InputError(f"the {part} split has only one label; training needs both "
                             "human and llm texts (add data or change val_fraction)",
                             reason="one_class")
    return train, val


def _train_char_ngrams(data: list[Path], out: Path, *, encoder_options: dict[str, bool],
                       ignored: dict[str, bool], **kwargs: Any) -> dict[str, Any]:
    """``base="char-ngrams"``: :func:`~.char_ngrams.train_char_ngrams`.

    Refuses the encoder options that would change what is trained
    (``encoder_options``, those set) and warns about fine-tuning settings given
    other than their defaults (``ignored``), which it does not use.
    """
    from .char_ngrams import train_char_ngrams

    given = [name for name, value in encoder_options.items() if value]
    if given:
        raise TrainingError(f"--base {CHAR_NGRAMS_KIND} fits no encoder: "
                            f"{', '.join(given)} do not apply to it")
    unused = [name for name, value in ignored.items() if value]
    if unused:
        log.warning("--base %s fits no encoder: %s not used", CHAR_NGRAMS_KIND, ", ".join(unused))
    return train_char_ngrams(data, out, **kwargs)


def _runtime_files(out: Path, meta: dict[str, Any], target_fpr: float,
                   weight_bits: int) -> tuple[int | None, dict[str, Any]]:
    """From ``out/model.onnx`` (as exported) to a directory the runtime loads, uncalibrated.

    Adds the ``features`` output, quantizes to int8 (MatMul weights in
    ``weight_bits``) and writes provisional metadata (identity calibration).
    Returns the features' layer and that metadata.
    """
    layer, _ = expose_features(out / FP32_FILE)
    # see quantize_int8
    quantization = {"per_channel": True, "reduce_range": weight_bits == 7, "embedding_bits": 4,
                    "embedding_block": EMBEDDING_BLOCK, "embedding_min_rows": MIN_4BIT_ROWS}
    quantize_int8(out / FP32_FILE, out / INT8_FILE, **quantization)
    meta = {k: v for k, v in meta.items()
            if k not in ("files", "quantization", "calibration", "thresholds", "abstain",
                         "validation", "agreement_int8_fp32", "familiarity")}
    meta.update({
        "files": {"cpu": INT8_FILE, "fp32": FP32_FILE, "tokenizer": TOKENIZER_FILE},
        "quantization": {"method": "dynamic", **quantization},
        "calibration": {"method": "platt", "a": 1.0, "b": 0.0},
        "thresholds": {"llm": 0.5, "human": 0.5, "target_fpr": target_fpr},
        "abstain": dict(ABSTAIN),
    })
    write_metadata(out, meta)
    return layer, meta


def finish_model(out: Path, meta: dict[str, Any], train: Sequence[Example],
                 val: Sequence[Example], *, target_fpr: float,
                 int8_weight_bits: int = 7) -> dict[str, Any]:
    """From ``out/model.onnx`` (fp32, as exported) to a complete model directory.

    Adds the ``features`` output, quantizes to int8 (MatMul weights in
    ``int8_weight_bits``), calibrates and chooses
    thresholds on ``val``, fits the familiarity check on ``train`` (threshold
    from ``val``), and writes the metadata and the model card. ``meta`` holds
    what training knows (name, version, base, max_length, labels, training);
    ``out`` must hold ``model.onnx`` and ``tokenizer.json``. Returns the metadata.
    """
    layer, meta = _runtime_files(out, meta, target_fpr,  # lets the runtime loader open it
                                 int8_weight_bits)
    try:
        result = calibrate(out, [e.text for e in val], [e.label for e in val],
                           target_fpr=target_fpr, target_fnr=TARGET_FNR)
        _apply_calibration(out, meta, result, target_fpr)
        familiarity = fit_familiarity(out, [e.text for e in train], [e.text for e in val],
                                      layer=layer)
    except TrainingError:
        (out / METADATA_FILE).unlink()  # an unfinished directory must not load as a model
        raise
    return _write_final(out, meta, familiarity)


def _apply_calibration(out: Path, meta: dict[str, Any], result: CalibrationResult,
                       target_fpr: float) -> None:
    """Put ``result`` into ``meta`` and write it; drop the int8 file if int8 broke the model.

    Afterwards the runtime loads ``out`` calibrated, with the CPU file it will serve
    (the familiarity check's features must come from that file).
    """
    meta.update(result.metadata(target_fpr))
    if result.cpu_precision == "fp32":  # int8 broke it: the CPU path serves fp32
        meta["files"] = {"cpu": FP32_FILE, "fp32": FP32_FILE, "tokenizer": TOKENIZER_FILE}
        del meta["quantization"]
        (out / INT8_FILE).unlink()
    write_metadata(out, meta)


def _write_final(out: Path, meta: dict[str, Any], familiarity: dict[str, Any]) -> dict[str, Any]:
    """Add the familiarity entry; write the final metadata and the model card."""
    meta["files"]["familiarity"] = FAMILIARITY_FILE
    meta["familiarity"] = familiarity
    write_metadata(out, meta)
    write_model_card(out, meta)
    return meta


def refinish_model(out: Path, data: list[Path], *, version: str | None = None,
                   int8_weight_bits: int | None = None) -> dict[str, Any]:
    """Redo a trained directory's steps after export, on its own data split; return its metadata.

    ``data`` must be the training files, unchanged: their hashes are checked
    against the metadata, and the seed, ``val_fraction`` and ``group_field``
    recorded there rebuild the same training and validation texts (for a
    cross-fitted panel, the same folds: :func:`_refinish_fold_panel`). Held-out
    ``evaluations`` recorded in the metadata are dropped (they measured the
    model as it was); the metadata as it was is kept in
    ``crowdguard-model.before-refinish.json``. For directories made before a step existed (the
    ``features`` output, 7-bit int8, 4-bit embedding tables): no fine-tuning is repeated.
    ``version`` replaces the recorded version (the served files change).
    ``int8_weight_bits`` re-quantizes the int8 file's weights in 7 or 8 bits;
    by default in the width the directory has.
    """
    meta_path = out / METADATA_FILE
    try:
        meta = orjson.loads(meta_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise TrainingError(f"{meta_path}: not a model directory made by `crowdguard train` "
                            f"({exc})") from exc
    if isinstance(meta, dict) and meta.get("cross_fit"):
        return _refinish_fold_panel(out, meta, data, version, int8_weight_bits)
    if isinstance(meta, dict) and meta.get("members"):
        raise TrainingError(f"{out} is a panel joined by `crowdguard panel`: re-finish each "
                            "member's own directory, then join them again")
    if isinstance(meta, dict) and meta.get("kind") == CHAR_NGRAMS_KIND:
        raise TrainingError(f"{out} is a char n-gram model: it has no ONNX export to re-finish; "
                            "train it again with `crowdguard train --base char-ngrams` (minutes)")
    try:
        tr = meta["training"]
        if tr.get("folds"):
            raise TrainingError(f"{out} is one member of a cross-fitted panel (--folds "
                                f"{tr['folds']}); re-finish the panel directory it belongs to")
        recorded = [(d["file"], d["sha256"]) for d in tr["data"]]
        seed, val_fraction = int(tr["seed"]), float(tr["val_fraction"])
        target_fpr = float(meta["thresholds"]["target_fpr"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TrainingError(f"{meta_path}: not a model directory made by `crowdguard train` "
                            f"({exc})") from exc
    bits = recorded_weight_bits(meta) if int8_weight_bits is None else int8_weight_bits
    _check_weight_bits(bits)
    if not (out / FP32_FILE).is_file():
        raise TrainingError(f"{out} has no {FP32_FILE}; re-finishing needs the fp32 export")
    dataset = _recorded_dataset(out, recorded, data, tr.get("group_field"))
    train, val = split_validation(dataset.examples, val_fraction, seed)
    # finish_model removes the metadata if a step fails (a half-made directory must not
    # load); keep the original so the directory can be re-finished again
    meta_path.with_name(REFINISH_BACKUP).write_bytes(meta_path.read_bytes())
    return finish_model(out, _refinished(meta, version), train, val, target_fpr=target_fpr,
                        int8_weight_bits=bits)


def _recorded_dataset(out: Path, recorded: list[tuple[str, str]], data: list[Path],
                      group_field: str | None) -> Any:
    dataset = load_dataset(data, group_field=group_field)
    if [(f.file, f.sha256) for f in dataset.files] != recorded:
        raise InputError(f"the data files differ from those {out} was trained on: "
                         f"expected {[n for n, _ in recorded]} with the hashes in its metadata",
                         reason="data_mismatch")
    return dataset


def _refinished(meta: dict[str, Any], version: str | None) -> dict[str, Any]:
    """``meta`` without its held-out evaluations, stamped, with ``version`` if given."""
    meta = {k: v for k, v in meta.items() if k != "evaluations"}
    meta["refinished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if version is not None:
        meta["version"] = version
    return meta


def _refinish_fold_panel(out: Path, meta: dict[str, Any], data: list[Path],
                         version: str | None, int8_weight_bits: int | None) -> dict[str, Any]:
    """:func:`refinish_model` of a panel made by ``train --folds``.

    The folds are rebuilt from the recorded seed and group field, each member
    is quantized again and scores the fold it held out, and the calibration,
    thresholds and familiarity are fitted again on the pooled out-of-fold scores
    (:func:`_finish_fold_panel`). The work happens on a copy beside ``out``,
    which replaces ``out`` only when every step has succeeded.
    """
    try:
        members = [(m.path.name, m.raw) for m in load_model_info(out).members]
        cf = meta["cross_fit"]
        folds, seed, group_field = int(cf["folds"]), int(cf["seed"]), cf.get("group_field")
        tr = members[0][1]["training"]
        recorded = [(d["file"], d["sha256"]) for d in tr["data"]]
        target_fpr = float(members[0][1]["thresholds"]["target_fpr"])
    except (ModelError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise TrainingError(f"{out}: not a cross-fitted panel made by `crowdguard train "
                            f"--folds` ({exc})") from exc
    if [m for m, _ in members] != [f"fold-{k + 1}" for k in range(folds)]:
        raise TrainingError(f"{out}: expected members fold-1 .. fold-{folds}, found "
                            f"{[m for m, _ in members]}")
    # a member whose int8 file broke serves fp32 and records no width: ask the others
    bits = (max(recorded_weight_bits(m) for _, m in members) if int8_weight_bits is None
            else int8_weight_bits)
    _check_weight_bits(bits)
    missing = [m for m, _ in members if not (out / m / FP32_FILE).is_file()]
    if missing:
        raise TrainingError(f"{out}: {', '.join(missing)} has no {FP32_FILE}; re-finishing "
                            "needs the fp32 exports")
    dataset = _recorded_dataset(out, recorded, data, group_field)
    examples = list(dataset.examples)
    if len(examples) != int(cf["texts"]):
        raise InputError(f"the data gives {len(examples)} texts, {out} was cross-fitted on "
                         f"{cf['texts']}", reason="data_mismatch")
    version = meta["version"] if version is None else version
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-refinish-", dir=out.parent) as scratch:
        staged = []
        for k, (m, member_meta) in enumerate(members):
            dst = Path(scratch) / m
            shutil.copytree(out / m, dst)
            staged.append((dst, _refinished(member_meta, f"{version}-fold{k + 1}")))
        new = Path(scratch) / "panel"
        result = _finish_fold_panel(staged, examples, split_folds(examples, folds, seed), new,
                                    name=meta["name"], version=version, cross_fit=cf,
                                    target_fpr=target_fpr, weight_bits=bits)
        (new / REFINISH_BACKUP).write_bytes((out / METADATA_FILE).read_bytes())
        old = Path(scratch) / "before"
        out.rename(old)
        new.rename(out)
    log.info("re-finished the cross-fitted panel %s (int8 weights in %d bits)", out, bits)
    return result

"""The one inference path: text -> tokens -> onnxruntime -> calibrated ``p_llm``.

Offline scoring, evaluation, calibration during training and the stream all
call :class:`Detector`; none of them tokenizes or runs a session on its own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import BackendError, ModelError
from ..text import normalize
from .backend import Device, Session, create_session, int8_saturates
from .familiarity import FEATURES_OUTPUT, TrainingFeatures
from .model_dir import CHAR_NGRAMS_KIND, ModelInfo, int8_weight_bits, load_model_info

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["Detector", "TextScore"]

log = logging.getLogger(__name__)

Precision = Literal["int8", "fp32"]


@dataclass(frozen=True)
class TextScore:
    """Score of one text: calibrated probability, raw margin, and whether it was truncated.

    ``distance`` is how far the text's features lie from the training data
    (:mod:`.familiarity`), or ``None`` for a model without the check. A
    panel's score (:class:`~service.detector.panel.Panel`) holds its members'
    scores in ``members``, in the order of the panel's metadata; its ``margin``
    is the mean of their calibrated logits.
    """

    p_llm: float
    margin: float
    tokens: int
    truncated: bool
    distance: float | None = None
    members: tuple[TextScore, ...] = ()


class Detector:
    """Tokenizer plus onnxruntime session of one model directory.

    Thread-safe for concurrent :meth:`score` calls (onnxruntime sessions are),
    so the stream can run it in an executor off the event loop.

    A text's score never depends on the other texts scored with it. The int8
    model is dynamically quantized: onnxruntime computes *one* activation scale
    per tensor, so inside a batch the other rows (and the padding) change a
    text's score; measured on a MiniLM int8 model, by up to 0.13 in ``p_llm``
    between batch size 1 and 32. A worker's verdict must not depend on whose
    answers arrived in the same micro-batch, and a replay after a crash must
    reproduce it, so the int8 model runs one text per inference call. The fp32
    model has no such coupling and runs in batches of ``batch_size``.
    """

    def __init__(self, info: ModelInfo, tokenizer: object, session: Session, *,
                 calibrated: bool = True, batch_size: int = 32,
                 precision: Precision = "int8",
                 familiarity: TrainingFeatures | None = None) -> None:
        self.info = info
        self.familiarity = familiarity
        self._tok = tokenizer
        self.session = session
        self.calibrated = calibrated
        self.precision = precision
        self.batch_size = 1 if precision == "int8" else batch_size
        self._needs_type_ids = "token_type_ids" in session.input_names

    # -- construction -------------------------------------------------------------
    @classmethod
    def for_settings(cls, settings: Settings) -> Detector:
        """The detector a ``crowdguard`` process serves: the model, device, precision,
        threads and batch size of ``settings``."""
        return cls.load(settings.model_dir, device=settings.device,
                        threads=settings.intra_op_threads, batch_size=settings.batch_size,
                        precision=None if settings.precision == "auto" else settings.precision)

    @classmethod
    def load(cls, model_dir: str | Path, *, device: Device = "cpu", threads: int = 1,
             calibrated: bool = True, precision: Precision | None = None,
             batch_size: int = 32) -> Detector:
        """Load a model directory; fail fast with :class:`ModelError`/:class:`BackendError`.

        ``precision`` picks the ONNX file: ``int8`` (``files.cpu``) or ``fp32``
        (``files.fp32``). By default CPU uses int8 and CUDA uses fp32 when the
        directory has it (dynamic int8 kernels run on the CPU only); ``fp32`` serves
        the fp32 file on CPU too, with the calibration fitted on ``files.cpu``. A panel
        directory gives a :class:`~service.detector.panel.Panel` of its members,
        each loaded this way; a char n-gram directory a
        :class:`~service.detector.char_ngrams.CharNgramDetector`, which runs on the
        CPU in numpy whatever ``device`` and ``precision`` say.
        """
        info = load_model_info(model_dir)
        if info.members:
            from .panel import Panel

            return Panel([cls.load(m.path, device=device, threads=threads, calibrated=calibrated,
                                   precision=precision, batch_size=batch_size)
                          for m in info.members], info)
        if info.raw.get("kind") == CHAR_NGRAMS_KIND:
            from .char_ngrams import CharNgramDetector

            return CharNgramDetector.from_info(info, calibrated=calibrated)
        if precision is None:
            precision = "fp32" if device == "cuda" and "fp32" in info.files else "int8"
        role = "cpu" if precision == "int8" else "fp32"
        if role not in info.files:
            advice = ("; serve its CPU file (precision auto), or train a model that keeps "
                      "its fp32 file" if role == "fp32" else "")
            raise ModelError(f"{info.path}: no {precision} model file (files.{role}) in "
                             f"metadata{advice}")
        if role == "cpu" and "quantization" in info.raw:
            _check_int8_weights(info, int8_saturates())
        tokenizer = _load_tokenizer(info)
        session = create_session(info.file(role), device=device, threads=threads)
        # raw margins (training's own scoring) use no calibration: nothing to warn about
        if calibrated and role == "fp32" and info.files.get("cpu") != info.files["fp32"]:
            agreement = info.raw.get("agreement_int8_fp32") or {}
            log.info("%s: serving %s with the calibration and thresholds fitted on %s; on "
                     "the validation texts their verdicts differ for %s", info.path,
                     info.files["fp32"], info.files.get("cpu"),
                     _share_text(agreement.get("verdicts_differ")))
        familiarity = None
        if info.familiarity is not None:
            if not session.has_features:
                raise ModelError(f"{info.file(role)} has no {FEATURES_OUTPUT!r} output, but the "
                                 "metadata names training features; re-create the model "
                                 "with `crowdguard train`")
            familiarity = TrainingFeatures.load(info.file("familiarity"))
            if session.feature_dim not in (None, familiarity.dim):
                raise ModelError(f"{info.file('familiarity')} describes {familiarity.dim} "
                                 f"features, {info.file(role)} outputs {session.feature_dim}; "
                                 "the files come from different models")
        return cls(info, tokenizer, session, calibrated=calibrated, batch_size=batch_size,
                   precision=precision, familiarity=familiarity)

    # -- scoring --------------------------------------------------------------------
    def margins(self, texts: Sequence[str]) -> np.ndarray:
        """Raw margins ``logit[llm] - logit[human]`` of ``texts`` (normalized here)."""
        return np.array([s.margin for s in self.score(texts)], dtype=np.float64)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([s.p_llm for s in self.score(texts)], dtype=np.float64)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The familiarity features of each of ``texts`` (``[n, dim]``)."""
        if not self.session.has_features:
            raise ModelError(f"{self.session.path} has no {FEATURES_OUTPUT!r} output")
        rows = [f for _, _, f in self._run(texts)]
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        """Score ``texts`` in order; batches are formed by length to limit padding."""
        rows = self._run(texts)
        distances: list[float | None] = [None] * len(rows)
        if self.familiarity is not None and rows and rows[0][2] is not None:
            distances = [float(d) for d in
                         self.familiarity.distances(np.stack([f for _, _, f in rows]))]
        out: list[TextScore] = []
        for (enc, row, _), distance in zip(rows, distances, strict=True):
            margin = float(row[1] - row[0])
            out.append(TextScore(self._calibrate(margin), margin, sum(enc.attention_mask),
                                 bool(enc.overflowing), distance))
        return out

    def _run(self, texts: Sequence[str]) -> list[tuple[object, np.ndarray, np.ndarray | None]]:
        """(encoding, logits row, features row or None) per text, in input order."""
        if not texts:
            return []
        encs = self._tok.encode_batch([normalize(t) for t in texts])  # type: ignore[attr-defined]
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        out: list[tuple[object, np.ndarray, np.ndarray | None] | None] = [None] * len(encs)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            batch = [encs[i] for i in idx]
            logits, feats = self.session.run(self._feeds(batch))
            if logits.ndim != 2 or logits.shape[1] != 2:
                raise BackendError(f"model output has shape {logits.shape}, expected [batch, 2]")
            for r, i in enumerate(idx):
                out[i] = (encs[i], logits[r], None if feats is None else feats[r])
        return out  # type: ignore[return-value]

    def _feeds(self, batch: list) -> dict[str, np.ndarray]:
        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for r, e in enumerate(batch):
            ids[r, :len(e.ids)] = e.ids
            mask[r, :len(e.attention_mask)] = e.attention_mask
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._needs_type_ids:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return feeds

    def _calibrate(self, margin: float) -> float:
        if not self.calibrated:
            return _sigmoid(margin)
        cal = self.info.calibration
        return _sigmoid(cal.a * margin + cal.b)


def _check_int8_weights(info: ModelInfo, saturates: bool | None) -> None:
    """Refuse an int8 file with 8-bit weights where the CPU's int8 kernels saturate.

    ``saturates`` is :func:`~service.detector.backend.int8_saturates` of this CPU.
    """
    if int8_weight_bits(info.raw) == 7:
        return  # 7-bit weights: correct on every CPU
    if saturates is None:
        log.warning("%s: its int8 file has 8-bit weights, which need a CPU with VNNI, and "
                    "this CPU's flags cannot be read; if its scores look wrong, serve "
                    "--precision fp32", info.path)
    elif saturates:
        raise ModelError(
            f"{info.path}: its int8 file has 8-bit weights (trained with --int8-weight-bits 8), "
            "which need a CPU with VNNI; on this x86 CPU without it onnxruntime's int8 kernels "
            "add products in saturating 16-bit arithmetic and can change the scores. Serve "
            "--precision fp32 if the directory has its fp32 file, or re-quantize in 7 bits: "
            "crowdguard refinish --model DIR --data FILE ... --int8-weight-bits 7")


def _share_text(share: float | None) -> str:
    return "an unmeasured share" if share is None else f"{100 * share:.1f}%"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _load_tokenizer(info: ModelInfo) -> object:
    from tokenizers import Tokenizer

    path = info.file("tokenizer")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ModelError(f"cannot load tokenizer {path}: {exc}") from exc
    tok.enable_truncation(max_length=info.max_length)
    tok.no_padding()
    return tok

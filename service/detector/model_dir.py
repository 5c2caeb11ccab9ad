"""The model directory: what it must hold and what its metadata says.

A model directory holds ``crowdguard-model.json`` (the metadata written by
``crowdguard train``), the tokenizer (``tokenizer.json``) and one or two ONNX
files: ``model.int8.onnx`` for CPU and, optionally, ``model.onnx`` (fp32) for
the GPU path; models trained since 0.2.0 also hold ``familiarity.npz``, the
features of their training texts (:mod:`.familiarity`).

A *char n-gram* directory (``"kind": "char-ngrams"``) holds no tokenizer and no
ONNX file: ``files.cpu`` names the weights of a linear model over character
n-grams, and ``max_length`` counts characters, not tokens
(:mod:`.char_ngrams`).

A *panel* directory (``"kind": "panel"``, written by ``crowdguard panel``)
holds no ONNX file of its own: its metadata names two or more member model
directories inside it (``"members"``), each a model directory as above, and
the rule that joins their verdicts (``"rule": "all-agree"``: ``llm`` or
``human`` only when every member says so; see :mod:`service.verdict`). Its
``p_llm`` is the sigmoid of the mean of the members' calibrated logits, so its
calibration is the identity, and its thresholds (used by the behaviour fusion
of :mod:`service.signals`) are the members' thresholds joined the same way.
Members named in ``"veto"`` vote under the rule but are left out of ``p_llm``
and of the joined thresholds: they can block a verdict, never move the score,
so a panel with a veto member ranks texts as the others do alone. Veto members
also named in ``"text_only_veto"`` block verdicts on the text only: the
behaviour rules of :mod:`service.signals` (a large paste from outside the task)
do not wait for them (:func:`veto_tag` says which kind a member is).

:func:`load_model_info` checks all of it up front and says what
is missing, so a worker never starts with a half-usable model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..errors import ModelError

__all__ = ["METADATA_FILE", "FORMAT", "PANEL_KIND", "CHAR_NGRAMS_KIND", "PANEL_RULES",
           "ModelInfo", "Thresholds", "Calibration", "Familiarity", "load_model_info",
           "mean_logit", "logit", "int8_weight_bits", "veto_tag"]

METADATA_FILE = "crowdguard-model.json"
FORMAT = 1
PANEL_KIND = "panel"
CHAR_NGRAMS_KIND = "char-ngrams"
PANEL_RULES = ("all-agree",)
_P_EPS = 1e-9


def logit(p: float) -> float:
    """``log(p / (1 - p))``, with ``p`` kept off 0 and 1."""
    p = min(max(float(p), _P_EPS), 1.0 - _P_EPS)
    return math.log(p / (1.0 - p))


def int8_weight_bits(meta: dict[str, Any]) -> int:
    """The width of the int8 file's MatMul weights recorded in a model's metadata.

    8 only where ``quantization.reduce_range`` is ``False`` (``train
    --int8-weight-bits 8``); 7 otherwise, also for a model that serves fp32 on CPU
    or predates the choice.
    """
    return 8 if (meta.get("quantization") or {}).get("reduce_range") is False else 7


def mean_logit(ps: list[float] | tuple[float, ...]) -> float:
    """The probability whose logit is the mean of the logits of ``ps``: how a panel joins scores."""
    z = sum(logit(p) for p in ps) / len(ps)
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class Calibration:
    """``p_llm = sigmoid(a * margin + b)``, margin = logit[llm] - logit[human]."""

    method: str = "platt"
    a: float = 1.0
    b: float = 0.0


@dataclass(frozen=True)
class Thresholds:
    """``llm`` at or above ``llm``; ``human`` at or below ``human``; ``uncertain`` between."""

    llm: float = 0.5
    human: float = 0.5
    target_fpr: float | None = None


@dataclass(frozen=True)
class Familiarity:
    """A text whose feature distance exceeds ``threshold`` is unlike the training data.

    ``quantile`` is the share of validation texts at or below the threshold.
    """

    threshold: float
    quantile: float | None = None


@dataclass(frozen=True)
class ModelInfo:
    """Validated metadata of a model directory."""

    path: Path
    name: str
    version: str
    max_length: int
    files: dict[str, str]
    calibration: Calibration
    thresholds: Thresholds
    min_words: int = 15
    min_english: float = 0.2
    familiarity: Familiarity | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    members: tuple[ModelInfo, ...] = ()
    """The member models of a panel directory; empty for a single model."""
    veto: tuple[str, ...] = ()
    """Names of the panel's members that vote but do not score (``"veto"``)."""
    text_only_veto: tuple[str, ...] = ()
    """The veto members that the behaviour rules leave out (``"text_only_veto"``)."""

    @property
    def label(self) -> str:
        """``name@version``, as flags and metrics report it."""
        return f"{self.name}@{self.version}"

    @property
    def member_name(self) -> str:
        """How a panel's reasons name this member: its directory's name."""
        return self.path.name

    @property
    def singles(self) -> tuple[ModelInfo, ...]:
        """The single models this directory serves: a panel's members, or the model itself."""
        return self.members or (self,)

    @property
    def scorers(self) -> tuple[ModelInfo, ...]:
        """The members whose probabilities make a panel's ``p_llm``: all but the veto ones."""
        return tuple(m for m in self.members if m.member_name not in self.veto)

    @property
    def checks_familiarity(self) -> bool:
        """Whether this model, or any member of this panel, has the familiarity check."""
        return self.familiarity is not None or any(m.checks_familiarity for m in self.members)

    def file(self, role: str) -> Path:
        return self.path / self.files[role]


def veto_tag(name: str, veto: Any, text_only_veto: Any = ()) -> str:
    """How reasons, reports and cards mark a panel member: " (veto)", " (veto, text only)" or ""."""
    if name in (text_only_veto or ()):
        return " (veto, text only)"
    return " (veto)" if name in (veto or ()) else ""


def _need(meta: dict[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in meta:
        raise ModelError(f"{where}: metadata lacks {key!r}; re-create the model with `crowdguard train`")
    value = meta[key]
    if not isinstance(value, kind):
        raise ModelError(f"{where}: metadata field {key!r} has the wrong type ({type(value).__name__})")
    return value


def load_model_info(path: str | Path) -> ModelInfo:
    """Read and check a model directory; raise :class:`ModelError` saying what to fix."""
    root = Path(path)
    if not root.is_dir():
        raise ModelError(
            f"model directory {root} does not exist; pass --model DIR (CROWDGUARD_MODEL_DIR) "
            "pointing at the output of `crowdguard train`")
    meta_path = root / METADATA_FILE
    try:
        meta = orjson.loads(meta_path.read_bytes())
    except FileNotFoundError as exc:
        raise ModelError(f"{root} holds no {METADATA_FILE}; is it a crowdguard model directory?") \
            from exc
    except orjson.JSONDecodeError as exc:
        raise ModelError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path} must hold a JSON object")
    fmt = meta.get("format")
    if fmt != FORMAT:
        raise ModelError(f"{meta_path}: model format {fmt!r}, this crowdguard reads format {FORMAT}")
    if meta.get("kind", "model") == PANEL_KIND:
        return _load_panel(root, meta, meta_path)
    kind = meta.get("kind", "model")
    if kind not in ("model", CHAR_NGRAMS_KIND):
        raise ModelError(f"{meta_path}: unknown model kind {kind!r} (this crowdguard reads "
                         f"'model', {CHAR_NGRAMS_KIND!r} and {PANEL_KIND!r})")
    files = _need(meta, "files", dict, meta_path)
    for role in ("cpu",) if kind == CHAR_NGRAMS_KIND else ("cpu", "tokenizer"):
        if role not in files:
            raise ModelError(f"{meta_path}: files.{role} is missing")
    for role, name in files.items():
        if not (root / name).is_file():
            raise ModelError(f"{root}: {role} file {name!r} named in the metadata is missing "
                             "(was the directory copied whole? large files may be Git LFS pointers)")
    cal = meta.get("calibration") or {}
    thr = meta.get("thresholds") or {}
    abstain = meta.get("abstain") or {}
    fam = meta.get("familiarity")
    if ("familiarity" in files) != isinstance(fam, dict):
        raise ModelError(f"{meta_path}: files.familiarity and the familiarity entry must come "
                         "together; re-create the model with `crowdguard train`")
    try:
        familiarity = None if fam is None else Familiarity(
            float(fam["threshold"]),
            None if fam.get("quantile") is None else float(fam["quantile"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: malformed familiarity entry: {exc}") from exc
    if familiarity is not None and not (math.isfinite(familiarity.threshold)
                                        and familiarity.threshold >= 0.0):
        raise ModelError(f"{meta_path}: familiarity threshold must be a finite number >= 0, "
                         f"got {familiarity.threshold}")
    try:
        calibration = Calibration(str(cal.get("method", "platt")), float(cal.get("a", 1.0)),
                                  float(cal.get("b", 0.0)))
        thresholds = Thresholds(float(thr.get("llm", 0.5)), float(thr.get("human", 0.5)),
                                thr.get("target_fpr"))
        info = ModelInfo(
            path=root,
            name=str(_need(meta, "name", str, meta_path)),
            version=str(_need(meta, "version", str, meta_path)),
            max_length=int(_need(meta, "max_length", int, meta_path)),
            files={str(k): str(v) for k, v in files.items()},
            calibration=calibration,
            thresholds=thresholds,
            min_words=int(abstain.get("min_words", 15)),
            min_english=float(abstain.get("min_english", 0.2)),
            familiarity=familiarity,
            validation=dict(meta.get("validation") or {}),
            raw=meta,
        )
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{meta_path}: malformed calibration/thresholds/abstain: {exc}") from exc
    if not 0.0 <= thresholds.human <= thresholds.llm <= 1.0:
        raise ModelError(f"{meta_path}: thresholds must satisfy 0 <= human <= llm <= 1, "
                         f"got human={thresholds.human} llm={thresholds.llm}")
    return info


def _load_panel(root: Path, meta: dict[str, Any], meta_path: Path) -> ModelInfo:
    names = _need(meta, "members", list, meta_path)
    if len(names) < 2 or not all(isinstance(n, str) and n for n in names):
        raise ModelError(f"{meta_path}: a panel names two or more member directories "
                         f"(\"members\": [\"a\", \"b\"]), got {names!r}")
    if len(set(names)) != len(names):
        raise ModelError(f"{meta_path}: a member is named twice in {names!r}")
    rule = meta.get("rule", PANEL_RULES[0])
    if rule not in PANEL_RULES:
        raise ModelError(f"{meta_path}: unknown panel rule {rule!r}; known: {', '.join(PANEL_RULES)}")
    members = []
    for name in names:
        sub = root / name
        if Path(name).is_absolute() or ".." in Path(name).parts or sub.resolve().parent != root.resolve():
            raise ModelError(f"{meta_path}: member {name!r} must be a directory directly "
                             "inside the panel directory")
        info = load_model_info(sub)
        if info.members:
            raise ModelError(f"{sub}: a panel member cannot be a panel itself")
        members.append(info)
    veto = meta.get("veto", [])
    if not isinstance(veto, list) or not all(isinstance(n, str) and n in names for n in veto):
        raise ModelError(f"{meta_path}: \"veto\" lists members of the panel, got {veto!r}")
    text_only = meta.get("text_only_veto", [])
    if not isinstance(text_only, list) or not all(isinstance(n, str) and n in veto
                                                  for n in text_only):
        raise ModelError(f"{meta_path}: \"text_only_veto\" lists veto members of the panel, "
                         f"got {text_only!r}")
    scorers = [m for m, n in zip(members, names, strict=True) if n not in veto]
    if not scorers:
        raise ModelError(f"{meta_path}: every member is a veto member; at least one must "
                         "score (\"veto\" names the members left out of p_llm)")
    llm = mean_logit([m.thresholds.llm for m in scorers])
    human = mean_logit([m.thresholds.human for m in scorers])
    fprs = {m.thresholds.target_fpr for m in scorers}
    return ModelInfo(
        path=root,
        name=str(_need(meta, "name", str, meta_path)),
        version=str(_need(meta, "version", str, meta_path)),
        # tokens: a char n-gram member's max_length counts characters
        max_length=max([m.max_length for m in members if m.raw.get("kind") != CHAR_NGRAMS_KIND]
                       or [m.max_length for m in members]),
        files={},
        calibration=Calibration("identity", 1.0, 0.0),
        thresholds=Thresholds(llm, min(human, llm), fprs.pop() if len(fprs) == 1 else None),
        min_words=max(m.min_words for m in members),
        min_english=max(m.min_english for m in members),
        familiarity=None,
        validation=dict(meta.get("validation") or {}),
        raw=meta,
        members=tuple(members),
        veto=tuple(veto),
        text_only_veto=tuple(text_only),
    )

"""onnxruntime sessions for CPU and CUDA: the only module that imports onnxruntime.

:func:`create_session` fails fast with a message that says what to fix: a CUDA
request on a machine (or wheel) without CUDA, a corrupt ONNX file, missing
model inputs.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import BackendError
from .familiarity import FEATURES_OUTPUT

__all__ = ["Session", "create_session", "available_providers", "int8_saturates"]

log = logging.getLogger(__name__)

Device = Literal["cpu", "cuda"]


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


#: CPU flags (Linux ``/proc/cpuinfo``) of x86 int8 dot-product instructions that do not saturate
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def int8_saturates(cpuinfo: str | None = None, machine: str | None = None) -> bool | None:
    """Whether onnxruntime's int8 CPU kernels may saturate with 8-bit weights here.

    On x86 without VNNI they add pairs of uint8 x int8 products in saturating
    16-bit arithmetic (``vpmaddubsw``), which 8-bit weights can overflow; 7-bit
    weights cannot. True on such a CPU, False with VNNI or off x86, None when
    the CPU's flags cannot be read (``cpuinfo`` is ``/proc/cpuinfo``'s text;
    ``machine`` is :func:`platform.machine`).
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return not VNNI_FLAGS & set(value.split())
    return None


class Session:
    """A loaded ONNX model: ``run(feeds) -> (logits, features)``.

    ``logits`` has shape ``[batch, 2]``. ``features`` (``[batch, dim]``, what
    the familiarity check compares) is ``None`` when the graph has no
    ``features`` output (models trained before 0.2.0).
    """

    def __init__(self, sess: object, device: Device, path: Path) -> None:
        self._sess = sess
        self.device = device
        self.path = path
        self.input_names = [i.name for i in sess.get_inputs()]  # type: ignore[attr-defined]
        outs = {o.name: o for o in sess.get_outputs()}  # type: ignore[attr-defined]
        outputs = list(outs)
        self.output_name = outputs[0]
        self.has_features = FEATURES_OUTPUT in outputs[1:]
        shape = list(outs[FEATURES_OUTPUT].shape) if self.has_features else []
        #: values per text of the features output (None when unknown or absent)
        self.feature_dim = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
        self._fetch = [self.output_name] + ([FEATURES_OUTPUT] if self.has_features else [])
        self.providers = list(sess.get_providers())  # type: ignore[attr-defined]

    def run(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            out = self._sess.run(  # type: ignore[attr-defined]
                self._fetch, {k: v for k, v in feeds.items() if k in self.input_names})
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"inference failed on {self.device} ({self.path.name}): {exc}") \
                from exc
        logits = np.asarray(out[0], dtype=np.float32)
        features = np.asarray(out[1], dtype=np.float32) if self.has_features else None
        return logits, features


def create_session(path: Path, *, device: Device = "cpu", threads: int = 1) -> Session:
    """Open ``path`` with onnxruntime on ``device`` using ``threads`` intra-op threads."""
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise BackendError("onnxruntime is not installed: pip install onnxruntime "
                           "(or onnxruntime-gpu for CUDA, never both)") from exc
    providers: list[str | tuple[str, dict]]
    if device == "cuda":
        have = ort.get_available_providers()
        if "CUDAExecutionProvider" not in have:
            raise BackendError(
                "device=cuda asked for, but this onnxruntime has no CUDAExecutionProvider "
                f"(available: {', '.join(have)}); install onnxruntime-gpu instead of onnxruntime, "
                "or use --device cpu")
        providers = [("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:
        hint = ""
        if "is not a registered function/op" in str(exc):
            hint = (f" (onnxruntime {ort.__version__} lacks an operator this model uses; "
                    "crowdguard's int8 files need onnxruntime >= 1.20)")
        raise BackendError(f"cannot load ONNX model {path}: {exc}{hint}") from exc
    if device == "cuda" and "CUDAExecutionProvider" not in sess.get_providers():
        raise BackendError(
            "onnxruntime could not start CUDA for this model (driver, CUDA or cuDNN libraries "
            "missing or mismatched); check `nvidia-smi` and the onnxruntime-gpu CUDA version, "
            "or use --device cpu")
    session = Session(sess, device, path)
    missing = {"input_ids", "attention_mask"} - set(session.input_names)
    if missing:
        raise BackendError(f"{path} lacks model inputs {sorted(missing)}: not a text classifier "
                           "exported by `crowdguard train`")
    log.info("onnx session ready", extra={"model_file": path.name, "device": device,
                                           "threads": threads, "providers": session.providers})
    return session

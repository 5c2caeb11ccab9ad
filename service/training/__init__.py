"""Training crowdguard's detector (needs the ``train`` extra: torch, transformers, optimum-onnx).

Importing this package is cheap; torch and transformers load only when
:func:`train_model` runs.
"""

from .bases import BASES, DEFAULT_BASE, resolve_base
from .train import finish_model, refinish_model, train_model

__all__ = ["BASES", "DEFAULT_BASE", "resolve_base", "train_model", "finish_model",
           "refinish_model"]

"""Model loading and inference (tokenizer + onnxruntime on CPU or CUDA)."""

from .backend import available_providers
from .detector import Detector, TextScore
from .familiarity import FAMILIARITY_FILE, FEATURES_OUTPUT, TrainingFeatures
from .model_dir import (METADATA_FILE, Calibration, Familiarity, ModelInfo, Thresholds,
                        load_model_info)

__all__ = [
    "Detector", "TextScore", "ModelInfo", "Thresholds", "Calibration", "Familiarity",
    "TrainingFeatures", "FAMILIARITY_FILE", "FEATURES_OUTPUT", "METADATA_FILE",
    "load_model_info", "available_providers",
]

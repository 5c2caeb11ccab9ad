"""Errors raised by crowdguard.

Every error the package raises on purpose derives from :class:`CrowdguardError`,
so a caller can catch the whole family at once. Third-party exceptions are
translated at the boundary (``raise ModelError(...) from exc``) and never leak
out of the public API.

::

    CrowdguardError
    ├── ConfigError      settings or command-line values that cannot work
    ├── InputError       a file or record that cannot be read or validated;
    │                    carries the source (file name or topic) and position
    ├── ModelError       a model directory that is missing, incomplete or mismatched
    ├── BackendError     the inference backend (onnxruntime, CPU or CUDA) failed
    ├── BrokerError      the local Apache Kafka broker could not be fetched,
    │                    started, reached or stopped
    └── TrainingError    training, export, quantization or calibration failed

Messages say what is wrong *and* what to do about it.
"""

from __future__ import annotations

__all__ = [
    "CrowdguardError",
    "ConfigError",
    "InputError",
    "ModelError",
    "BackendError",
    "BrokerError",
    "TrainingError",
]


class CrowdguardError(Exception):
    """Base class of every error crowdguard raises on purpose."""


class ConfigError(CrowdguardError):
    """A setting or flag has a value that cannot work."""


class InputError(CrowdguardError):
    """A file or record cannot be read or fails validation.

    ``source`` names the file (or topic), ``line`` the 1-based line or record
    number where known, and ``reason`` a short machine-friendly code.
    """

    def __init__(self, message: str, *, source: str | None = None,
                 line: int | None = None, reason: str = "invalid") -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{message}")


class ModelError(CrowdguardError):
    """The model directory is missing, incomplete or does not match the runtime."""


class BackendError(CrowdguardError):
    """The inference backend failed or the requested device is unavailable."""


class BrokerError(CrowdguardError):
    """The local Apache Kafka broker could not be fetched, started or stopped."""


class TrainingError(CrowdguardError):
    """Training, export, quantization or calibration failed."""

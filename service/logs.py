"""Structured logging: one JSON object (or one readable line) per record.

Fields passed with ``extra={...}`` become keys of the record. Submission text is
never passed to INFO logs by this package.
"""

from __future__ import annotations

import logging
import sys
import time

import orjson

__all__ = ["setup_logging"]

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in record.__dict__.items() if k not in _STD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{record.levelname.lower():7s} {record.name}: {record.getMessage()}"
        if extra:
            line += f" [{extra}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


#: aiokafka messages that only say it is retrying while the broker creates its internal
#: topics (seconds after a fresh start); a coordinator that never comes shows in /readyz.
_TRANSIENT = ("Group Coordinator Request failed", "Marking the coordinator dead",
              "Heartbeat failed for group")


class _DropTransient(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("aiokafka")
                    and record.getMessage().startswith(_TRANSIENT))


def setup_logging(level: str = "INFO", fmt: str = "console",
                  library_level: str | None = None) -> None:
    """Log to standard error at ``level``; the libraries (faust, aiokafka, mode) at ``library_level``.

    By default the libraries' INFO (rebalances, assignments, recovery) shows at DEBUG only,
    and their DEBUG never does.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(_DropTransient())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if library_level is not None:
        libs = logging.getLevelName(library_level)
    else:
        libs = logging.INFO if level == "DEBUG" else max(logging.WARNING,
                                                         logging.getLevelName(level))
    for noisy in ("aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(libs)

"""The faust recovery fix installs once and keeps faust's own method behind it.

Its effect (no submission lost or stuck across restarts) is checked against a
real broker in tests/integration/test_stream.py.
"""

from __future__ import annotations

from faust.tables.recovery import Recovery

from service import faust_fixes


def test_apply_wraps_faust_once_and_keeps_the_original() -> None:
    faust_fixes.apply()
    original = getattr(Recovery, faust_fixes._ORIGINAL)
    faust_fixes.apply()  # idempotent: never wraps the wrapper
    assert Recovery.on_recovery_completed is faust_fixes._on_recovery_completed
    assert getattr(Recovery, faust_fixes._ORIGINAL) is original
    assert original.__module__ == "faust.tables.recovery"

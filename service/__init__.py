"""crowdguard: streaming detection of LLM-written crowd-worker answers.

Public API: :class:`~service.settings.Settings`, :class:`~service.detector.Detector`,
:func:`~service.verdict.decide`, and the errors in :mod:`service.errors`.
"""

__version__ = "0.1.0"

"""The README's main command: ``crowdguard demo`` scores the sample stream and exits cleanly."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from streamkit import ROOT, Topics

from service.broker import free_port
from service.replay import iter_submissions
from service.worker import SAMPLE_STREAM

pytestmark = pytest.mark.timeout(300)


def test_demo_scores_every_sample_submission_on_custom_topics(kafka_bootstrap, tmp_path):
    topics = Topics()  # not the defaults: the worker child must get them too
    expected = sum(1 for s in iter_submissions(SAMPLE_STREAM, "jsonl") if isinstance(s, dict))
    cmd = [sys.executable, "-m", "service.cli", "demo", "--exit-when-done",
           "--kafka-bootstrap", kafka_bootstrap, "--topic-submissions", topics.submissions,
           "--topic-flags", topics.flags, "--topic-dead-letter", topics.dead,
           "--topic-worker-rates", topics.rates, "--consumer-group", topics.group,
           "--web-port", str(free_port()), "--data-dir", str(tmp_path / "faust")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240,  # noqa: S603
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    final = re.search(r"final verdict counts: (.*)", done.stderr)
    assert final, done.stderr[-3000:]
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", final.group(1))}
    assert set(counts) <= {"llm", "human", "uncertain"}
    assert sum(counts.values()) == expected
    assert f"flags: topic {topics.flags}" in done.stderr and "stopped." in done.stderr

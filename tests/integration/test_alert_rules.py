"""The alert rules of helm/crowdguard/files/alerts.yaml, checked by promtool.

promtool comes with Debian's ``prometheus`` package (``apt-get install prometheus``;
the CI script installs it). A missing promtool is a failure, not a skip: these
tests are the only check of the rules the Helm chart ships.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "helm" / "crowdguard" / "files" / "alerts.yaml"
RULE_TESTS = Path(__file__).resolve().parent / "alerts_test.yaml"
DOC = ROOT / "README.md"  # the runbook the alerts link to
EXPECTED = {
    "CrowdguardWorkerLLMRateHigh", "CrowdguardTaskPrevalenceHigh",
    "CrowdguardDeadLetterRateHigh", "CrowdguardConsumerLagHigh",
    "CrowdguardScoringLatencyHigh", "CrowdguardModelNotReady", "CrowdguardUnfamiliarTextsHigh",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.fail("promtool not found: install it with `apt-get install -y prometheus` "
                    "(Debian/Ubuntu) or set PROMTOOL=/path/to/promtool", pytrace=False)
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def alert_blocks() -> dict[str, str]:
    text = ALERTS.read_text()
    parts = re.split(r"^\s*- alert:\s*", text, flags=re.M)[1:]
    return {p.split()[0]: p for p in parts}


def test_promtool_check_rules(promtool: str) -> None:
    res = run(promtool, "check", "rules", str(ALERTS))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in res.stdout


def test_promtool_test_rules(promtool: str) -> None:
    res = run(promtool, "test", "rules", str(RULE_TESTS))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_promtool_test_rules_can_fail(promtool: str, tmp_path: Path) -> None:
    """Guard against a test file that passes vacuously: a wrong expectation must fail."""
    broken = RULE_TESTS.read_text().replace("severity: critical", "severity: info")
    rules_dir = tmp_path / "helm" / "crowdguard" / "files"
    rules_dir.mkdir(parents=True)
    (rules_dir / "alerts.yaml").write_text(ALERTS.read_text())
    case = tmp_path / "tests" / "integration" / "alerts_test.yaml"
    case.parent.mkdir(parents=True)
    case.write_text(broken)
    res = run(promtool, "test", "rules", str(case))
    assert res.returncode != 0
    assert "CrowdguardModelNotReady" in res.stdout + res.stderr


def test_every_alert_fires_once_and_stays_silent_once() -> None:
    text = RULE_TESTS.read_text()
    fires: set[str] = set()
    silent: set[str] = set()
    for case in re.split(r"^\s*- eval_time:", text, flags=re.M)[1:]:
        name = re.search(r"alertname:\s*(\S+)", case)
        assert name, case
        if re.search(r"exp_alerts:\s*\[\]", case):
            silent.add(name.group(1))
        else:
            assert re.search(r"exp_alerts:\s*\n\s*- exp_labels:", case), case
            fires.add(name.group(1))
    assert fires == EXPECTED, EXPECTED - fires
    assert silent == EXPECTED, EXPECTED - silent


def test_alerts_have_severity_annotations_and_runbooks() -> None:
    blocks = alert_blocks()
    assert set(blocks) == EXPECTED
    doc = DOC.read_text()
    for name, block in blocks.items():
        assert re.search(r"severity:\s*(critical|warning|info)\b", block), name
        for ann in ("summary:", "description:"):
            assert ann in block, (name, ann)
        anchor = f"alert-{name.lower()}"
        assert f'runbook: "README.md#{anchor}"' in block, name
        # the runbook section the anchor points at (GitHub slug of "Alert: <name>")
        assert f"### Alert: {name}\n" in doc, name

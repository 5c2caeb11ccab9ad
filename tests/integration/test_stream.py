"""The stream worker against a real Kafka broker: delivery, dead letters, crashes, scale-out."""

from __future__ import annotations

import base64
import time
from collections import Counter, defaultdict

import orjson
import pytest

from streamkit import (Topics, WorkerProc, produce_sync, read_sync, submission, subs_bytes,
                        committed)

pytestmark = pytest.mark.timeout(400)


def _flags_by_id(records) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        flag = orjson.loads(r.value)
        assert r.key.decode() == flag["submission_id"]
        out[flag["submission_id"]].append(flag)
    return out


def _assert_duplicates_identical(by_id: dict[str, list[dict]]) -> int:
    """Replays may repeat a flag; every copy must carry the same decision."""
    dups = 0
    for copies in by_id.values():
        if len(copies) > 1:
            dups += len(copies) - 1
            first = {k: v for k, v in copies[0].items() if k != "scored_at"}
            for c in copies[1:]:
                assert {k: v for k, v in c.items() if k != "scored_at"} == first
    return dups


@pytest.fixture()
def topics() -> Topics:
    return Topics()


def test_valid_submissions_flagged_and_invalid_dead_lettered(kafka_bootstrap, topics, tmp_path):
    from service.detector.model_dir import load_model_info
    from service.settings import DEFAULT_MODEL_DIR

    panel_default = bool(load_model_info(DEFAULT_MODEL_DIR).members)
    valid = [submission(i) for i in range(40)]
    valid[0]["events"] = [["key", "a", "2026-11-01T10:00:00Z"], ["paste", "x" * 50,
                                                                   "2026-11-01T10:00:01Z"]]
    valid[1]["extra_unknown_field"] = {"ignored": True}
    valid[2]["text"] = "Sure, here's a summary of the study: " + valid[2]["text"]
    invalid = {
        b"not json at all": "not_json",
        b"\xff\xfe\x00garbage": "not_utf8",
        b"[1, 2, 3]": "not_object",
        orjson.dumps({"submission_id": "x1", "worker_id": "w", "task_id": "t"}): "missing_field",
        orjson.dumps({**submission(900), "text": 12}): "wrong_type",
        orjson.dumps({**submission(901), "worker_id": ""}): "bad_id",
        orjson.dumps({**submission(902), "worker_id": "w" * 1000}): "bad_id",
        orjson.dumps({**submission(903), "text": "   "}): "empty_text",
        orjson.dumps({**submission(904), "submitted_at": "last tuesday"}): "bad_timestamp",
        orjson.dumps({**submission(905), "text": "y" * 200_000}): "oversized",
    }
    values = subs_bytes(valid[:20]) + list(invalid) + subs_bytes(valid[20:])
    produce_sync(kafka_bootstrap, topics.submissions, values)
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path, extra=["--max-message-bytes", "100000"])
    try:
        worker.wait_ready()
        flags = _flags_by_id(read_sync(kafka_bootstrap, topics.flags, until=40))
        dead = read_sync(kafka_bootstrap, topics.dead, until=len(invalid), timeout=60)
        assert set(flags) == {s["submission_id"] for s in valid}
        for copies in flags.values():
            f = copies[0]
            assert f["verdict"] in ("llm", "human", "uncertain") and f["reasons"]
            assert 0.0 <= f["p_llm"] <= 1.0 and f["model"].count("@") == 1
            assert "text" not in f and isinstance(f["signals"], dict)
            # the default model has the familiarity check (a panel's members have their own)
            assert f["feature_distance"] is None if panel_default else f["feature_distance"] > 0
        assert flags["s-00000"][0]["signals"]["n_pastes"] == 1
        reply = flags[valid[2]["submission_id"]][0]
        assert reply["verdict"] == "llm" and reply["reasons"][0].startswith(
            "opens like a chat assistant's reply")
        letters = [orjson.loads(r.value) for r in dead]
        got = Counter(d["reason"] for d in letters)
        assert got == Counter(invalid.values())
        for d in letters:
            assert d["topic"] == topics.submissions and d["offset"] >= 0 and d["error"]
            assert base64.b64decode(d["value_b64"]) in invalid
        # still alive and counting after all that
        status, body = worker.get("/metrics")
        assert status == 200
        text = body.decode()
        assert 'crowdguard_dead_letters_total{reason="bad_id"} 2.0' in text
        scored = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("crowdguard_submissions_scored_total{"))
        assert scored == 40
        assert "crowdguard_reply_formula_texts_total 1.0" in text  # the one reply above
        assert worker.proc.poll() is None
    finally:
        worker.close()


# Guards service/faust_fixes.py: without it, the restarted worker could empty its agents'
# queues right after its fetcher had filled them, and stall (README, Results > Stream).
def test_sigkill_mid_stream_then_restart_loses_nothing(kafka_bootstrap, topics, tmp_path):
    n = 400
    produce_sync(kafka_bootstrap, topics.submissions,
                 subs_bytes([submission(i) for i in range(n)]))
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path)
    try:
        worker.wait_ready()
        first = read_sync(kafka_bootstrap, topics.flags, until=60)
        assert 60 <= len({r.key for r in first}) < n, "kill should land mid-stream"
        worker.kill()
    finally:
        worker.close()
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path)
    try:
        worker.wait_ready()
        by_id = _flags_by_id(read_sync(kafka_bootstrap, topics.flags, until=n, timeout=240))
        missing = {f"s-{i:05d}" for i in range(n)} - set(by_id)
        if missing:  # what the restarted worker says of itself
            status = worker.get("/metrics")[1].decode(errors="replace").splitlines()
            status = [m for m in status if m.startswith(("crowdguard_consumer_lag",
                                                         "crowdguard_submissions_scored",
                                                         "crowdguard_batch_size_count"))]
            (tmp_path / "restarted-worker-metrics.txt").write_text("\n".join(status))
            pytest.fail(f"{len(missing)} never flagged; restarted worker's metrics: {status}; "
                        f"log:\n{worker.log()}")
        _assert_duplicates_identical(by_id)
    finally:
        worker.close()


def test_sigterm_drains_and_commits(kafka_bootstrap, topics, tmp_path):
    n = 300
    produce_sync(kafka_bootstrap, topics.submissions,
                 subs_bytes([submission(i) for i in range(n)]))
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path)
    try:
        worker.wait_ready()
        read_sync(kafka_bootstrap, topics.flags, until=40)
        assert worker.terminate() == 0, worker.log()
    finally:
        worker.close()
    flagged = {r.key for r in read_sync(kafka_bootstrap, topics.flags, until=n, timeout=5)}
    import asyncio
    done = asyncio.run(committed(kafka_bootstrap, topics.group, topics.submissions, 4))
    # everything committed was flagged, and everything flagged before the stop was committed
    assert done == len(flagged), (done, len(flagged))
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path)
    try:
        worker.wait_ready()
        by_id = _flags_by_id(read_sync(kafka_bootstrap, topics.flags, until=n, timeout=240))
        assert len(by_id) == n
        assert _assert_duplicates_identical(by_id) == 0  # a clean stop leaves nothing to replay
    finally:
        worker.close()


def test_broker_restart_during_stream_loses_nothing(local_broker, topics, tmp_path):
    bootstrap = local_broker.bootstrap
    produce_sync(bootstrap, topics.submissions,
                 subs_bytes([submission(i) for i in range(100)]))
    worker = WorkerProc(bootstrap, topics, tmp_path)
    try:
        worker.wait_ready()
        read_sync(bootstrap, topics.flags, until=50)
        local_broker.restart()
        produce_sync(bootstrap, topics.submissions,
                     subs_bytes([submission(i) for i in range(100, 200)]))
        by_id = _flags_by_id(read_sync(bootstrap, topics.flags, until=200, timeout=240))
        assert set(by_id) == {f"s-{i:05d}" for i in range(200)}, worker.log()
        _assert_duplicates_identical(by_id)
        assert worker.proc.poll() is None
    finally:
        worker.close()


def test_two_workers_split_partitions_and_score_everything_once(kafka_bootstrap, topics,
                                                                  tmp_path):
    n = 400
    a = WorkerProc(kafka_bootstrap, topics, tmp_path)
    b = WorkerProc(kafka_bootstrap, topics, tmp_path)
    try:
        a.wait_ready()
        b.wait_ready()
        time.sleep(3)  # let the group settle on two members
        produce_sync(kafka_bootstrap, topics.submissions,
                     subs_bytes([submission(i) for i in range(n)]),
                     keys=[f"s-{i:05d}".encode() for i in range(n)])
        by_id = _flags_by_id(read_sync(kafka_bootstrap, topics.flags, until=n, timeout=240))
        assert len(by_id) == n
        assert _assert_duplicates_identical(by_id) == 0

        def scored(w: WorkerProc) -> float:
            text = w.get("/metrics")[1].decode()
            return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith("crowdguard_submissions_scored_total{"))
        sa, sb = scored(a), scored(b)
        assert sa > 0 and sb > 0, (sa, sb)
        assert sa + sb == n
    finally:
        a.close()
        b.close()


def test_a_panel_scores_the_stream_with_its_members_reasons(kafka_bootstrap, topics, tmp_path):
    from service.detector.model_dir import load_model_info
    from service.settings import DEFAULT_MODEL_DIR
    from service.training.panel import build_panel

    single = load_model_info(DEFAULT_MODEL_DIR).singles[0].path
    panel = tmp_path / "panel"
    build_panel([("first", single), ("second", single)], panel, name="pair", version="t1")
    subs = [submission(i) for i in range(12)]
    subs[3]["text"] = "Sure, here's a summary of the study: " + subs[3]["text"]
    produce_sync(kafka_bootstrap, topics.submissions, subs_bytes(subs))
    worker = WorkerProc(kafka_bootstrap, topics, tmp_path, model=panel)
    try:
        worker.wait_ready()
        flags = _flags_by_id(read_sync(kafka_bootstrap, topics.flags, until=len(subs)))
        assert set(flags) == {s["submission_id"] for s in subs}
        for copies in flags.values():
            f = copies[0]
            assert f["model"] == "pair@t1" and f["feature_distance"] is None
            # a judged text names both members; an unfamiliar one names the member that said so
            assert (any(r.startswith("model first: text score") for r in f["reasons"])
                    or any(r.endswith("(model first)") or r.endswith("(model second)")
                           for r in f["reasons"])
                    or f["reasons"][0].startswith("opens like a chat assistant's reply")), f
        assert flags[subs[3]["submission_id"]][0]["verdict"] == "llm"
        assert 'crowdguard_model_info{' in worker.get("/metrics")[1].decode()
    finally:
        worker.close()

"""The faust fixes: installed once, the recovery's order of steps, the fetch's partitions.

Their effect (no submission lost or stuck across restarts) is checked against
a real broker in tests/integration/test_stream.py; here faust's recovery object
and consumer thread are replaced by recorders, to check the order that closes
the window (seek while paused, then empty the agents' queues, then resume the
stream partitions, with no turn of the event loop in between) and that a fetch
asks for a copy of the active partitions.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from service import faust_fixes

SUBS = {TP("subs", p) for p in range(2)}
CHANGELOG = {TP("g-table-changelog", p) for p in range(2)}


class _Recorder:
    """Stands in for faust's Recovery and what it touches; records every step."""

    def __init__(self, committed: dict[TP, int], *, generation: int = 1,
                 rebalance_during_seek: bool = False) -> None:
        self.events: list[Any] = []
        ev = self.events

        async def perform_seek() -> None:
            ev.append("seek")
            consumer._committed_offset.update(committed)
            if rebalance_during_seek:
                app.consumer_generation_id += 1

        async def seek_to_beginning(*tps: Any) -> None:
            ev.append(("seek_to_beginning", sorted(tp.partition for tp in tps)))

        async def maybe_start() -> None:
            ev.append("fetcher")

        async def send() -> None:
            ev.append("on_rebalance_complete")

        def flow_control_resume() -> None:
            ev.append("flow_control.resume")  # empties the agents' queues in faust
            asyncio.get_running_loop().call_soon(ev.append, "event loop turned")

        consumer = SimpleNamespace(
            assignment=lambda: SUBS | CHANGELOG, perform_seek=perform_seek,
            _committed_offset={}, _thread=SimpleNamespace(seek_to_beginning=seek_to_beginning),
            resume_flow=lambda: ev.append("resume_flow"),
            resume_partitions=lambda tps: ev.append(("resume_partitions", frozenset(tps))))
        app = SimpleNamespace(
            consumer=consumer, consumer_generation_id=generation,
            conf=SimpleNamespace(broker_request_timeout=5.0,
                                 consumer_auto_offset_reset="earliest"),
            on_rebalance_complete=SimpleNamespace(send=send),
            flow_control=SimpleNamespace(resume=flow_control_resume),
            _fetcher=SimpleNamespace(maybe_start=maybe_start),
            assignor=SimpleNamespace(assigned_standbys=lambda: set()),
            on_rebalance_end=lambda: ev.append("on_rebalance_end"))
        self.app = app
        self.log = SimpleNamespace(info=lambda *a, **k: None, warning=lambda *a, **k: None)
        self.tables = SimpleNamespace(values=lambda: [],
                                      on_actives_ready=lambda: ev.append("actives_ready"),
                                      on_standbys_ready=lambda: None)
        self.actives_for_table: dict = {}
        self.standbys_for_table: dict = {}
        self.completed = SimpleNamespace(set=lambda: ev.append("completed"))
        self._set_recovery_ended = lambda: None
        self._is_changelog_tp = lambda tp: tp in CHANGELOG

        async def _wait(coro: Any, timeout: float | None = None) -> None:
            await coro
        self._wait = _wait


def _run(rec: _Recorder, generation: int = 1) -> list[Any]:
    asyncio.run(faust_fixes._on_recovery_completed(rec, generation))
    return rec.events


def test_apply_wraps_faust_once_and_keeps_the_original() -> None:
    faust_fixes.apply()
    original = getattr(Recovery, faust_fixes._ORIGINAL)
    faust_fixes.apply()  # idempotent: never wraps the wrapper
    assert Recovery.on_recovery_completed is faust_fixes._on_recovery_completed
    assert getattr(Recovery, faust_fixes._ORIGINAL) is original
    assert original.__module__ == "faust.tables.recovery"
    assert AIOKafkaConsumerThread.getmany is faust_fixes._getmany
    original_getmany = getattr(AIOKafkaConsumerThread, faust_fixes._ORIGINAL_GETMANY)
    assert original_getmany is not faust_fixes._getmany


def test_queues_emptied_before_the_stream_partitions_resume_with_no_await_between() -> None:
    events = _run(_Recorder({tp: 8 for tp in SUBS}))
    resumed = ("resume_partitions", frozenset(SUBS))  # the changelogs stay paused
    assert resumed in events
    i_seek, i_clear, i_resume = (events.index("seek"), events.index("flow_control.resume"),
                                 events.index(resumed))
    assert i_seek < i_clear < i_resume
    # faust's own order awaited a seek between resuming and emptying the queues, which
    # threw away what the fetcher delivered meanwhile; here the loop must not turn
    assert events.index("event loop turned") > i_resume
    assert events.index("on_rebalance_end") > i_resume
    assert not any(isinstance(e, tuple) and e[0] == "seek_to_beginning" for e in events)


def test_partitions_without_a_commit_start_from_the_beginning_before_resuming() -> None:
    events = _run(_Recorder({TP("subs", 0): 8}))
    i_begin = events.index(("seek_to_beginning", [1]))
    assert events.index("seek") < i_begin < events.index(("resume_partitions", frozenset(SUBS)))


def test_nothing_resumed_when_a_new_rebalance_started() -> None:
    # a generation that moved on before or during the seek: the next recovery resumes
    for rec, generation in ((_Recorder({}), 2), (_Recorder({}, rebalance_during_seek=True), 1)):
        events = _run(rec, generation)
        assert not any(isinstance(e, tuple) and e[0] == "resume_partitions" for e in events)
        assert "flow_control.resume" not in events and "on_rebalance_end" not in events


class _Thread:
    """Stands in for faust's consumer thread: records what the fetch was asked for."""

    def __init__(self) -> None:
        self.asked: list[Any] = []
        self.live: set[TP] = set()

    def _ensure_consumer(self) -> Any:
        return SimpleNamespace(_max_poll_records=None)

    async def _fetch_records(self, consumer: Any, active: Any, **_: Any) -> dict:
        return {}

    async def call_thread(self, fun: Any, consumer: Any, active: Any, **kw: Any) -> dict:
        self.live.clear()  # recovery pauses the changelogs while the fetch is under way
        self.asked.append(active)
        return {}


def test_fetch_asks_for_a_copy_of_the_active_partitions_and_nothing_when_none() -> None:
    faust_fixes.apply()
    thread = _Thread()
    thread.live = set(CHANGELOG)
    assert asyncio.run(faust_fixes._getmany(thread, thread.live, 1.0)) == {}
    # the live set emptied meanwhile; aiokafka would read an empty set as every partition
    assert thread.asked == [CHANGELOG] and thread.asked[0] is not thread.live
    assert asyncio.run(faust_fixes._getmany(thread, set(), 1.0)) == {}
    assert len(thread.asked) == 1  # an empty set fetches nothing
    asyncio.run(faust_fixes._getmany(thread, None, 1.0))  # client-only: every partition
    assert thread.asked[-1] is None

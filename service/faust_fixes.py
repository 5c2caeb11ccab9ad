"""Two fixes to faust-streaming 0.15 that at-least-once delivery depends on.

What was wrong: ``faust.tables.recovery.Recovery.on_recovery_completed`` ends a
rebalance in this order:

1. resume the stream partitions (the fetcher, already running since table
   recovery, may now deliver their records into the agents' queues);
2. ``await`` a seek of every partition to its committed offset (a round trip
   to the broker through the consumer thread);
3. ``app.flow_control.resume()``, which *empties every agent's queue*
   (``clear_on_resume``: it is meant to drop records left over from before the
   rebalance).

Whatever the fetcher delivers during step 2 is thrown away in step 3, although
faust's read offset and the consumer's position have already moved past it.
Depending on where the seek of step 2 lands, those records are then

- never fetched again (partitions without a committed offset: the seek leaves
  the position at the end of the partition), or
- re-fetched but dropped as already read ("DROPPED MESSAGE ROFF", when the
  reset of the read offset lands while the fetcher is still delivering its
  batch), after faust's gap tracking has counted part of them as acknowledged.

The worker then scores what happened to reach its agent before step 3 and
after it, receives nothing more, and commits nothing on a partition whose
first unscored offset was thrown away: faust only commits from the committed
offset onwards without a hole (``Consumer._new_offset``). This is the SIGKILL
test's stall: the restarted worker scored ~100 submissions, then neither
received nor committed anything while answering ``/metrics``. An earlier
version of this fix only moved the seek before step 1, which closed the
original symptom (8 of 300 lost: records of the window marked acknowledged)
but kept faust's own seek, and its ``await``, between steps 1 and 3.

How it was seen: a temporary recorder in the worker logged the size of the
agents' queues when ``flow_control.resume()`` emptied them, the read offsets
around each seek, and every dropped record. Passing restarts emptied nothing
(the window lasted 17 to 128 ms). With a 1.2 to 3 s delay injected into the
seek of step 2 (what a slow broker or a loaded machine does to that round
trip), the restarted worker's queues held 254 to 377 submissions when they
were emptied in 6 of 7 restarts, and 2 of those stalled as in CI: one with the
consumer at the end of partitions that had no commit, one with faust's read
offset back at the committed offset and nothing left to fetch on one
partition and the acknowledged offsets starting 40 past the committed one on
another. With both fixes here and the same injection (2 and 3 s), SIGKILL
then restart completed 12 of 12 (9 of them before the second fix was added),
with no queue emptied with anything in it and no record dropped as already
read; SIGTERM then restart completed 8 of 8.

The fix: :func:`apply` replaces the method with the same steps in an order
that leaves no window. The stream partitions are sought while they are still
paused (to their committed offsets; those without one, after a worker killed
before its first commit, to the beginning, as
``consumer_auto_offset_reset="earliest"`` says), then the agents' queues are
emptied and the flow resumed, and only then are the stream partitions resumed,
with no ``await`` in between, so nothing they deliver can be thrown away and
every record from the committed offset on reaches an agent. The rest is
faust's own method unchanged (table callbacks, generation checks, fetcher
start, readiness).

A second, smaller fix, which the first one needs: faust hands the consumer
thread its *live* set of active partitions for each fetch, and aiokafka's
``Fetcher.fetched_records`` returns the records of *every* partition when that
set is empty. A fetch started during table recovery (active: the changelogs)
that completes after recovery paused them (active: nothing) therefore returns
the stream partitions' records, which faust then skips because those
partitions are paused, with the consumer's position already past them. faust's
own seek after resuming used to repair that by accident; with the seek moved
before the resume it did not, and SIGTERM then restart stalled in 3 of 5 runs
(consumer positions at the end of all 4 partitions, nothing acknowledged).
:func:`apply` makes the consumer thread fetch for a copy of the active set,
taken when the fetch starts, and fetch nothing when that copy is empty.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.tables import recovery as _recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, ensure_aiokafka_TP

log = logging.getLogger(__name__)

_ORIGINAL = "_crowdguard_original_on_recovery_completed"
_ORIGINAL_GETMANY = "_crowdguard_original_getmany"


async def _getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
    """Fetch for the partitions active now, not for whatever the live set holds later.

    ``None`` (a client-only app) still means every partition; an empty set
    means none, where aiokafka would read it as every partition.
    """
    if active_partitions is not None:
        active_partitions = set(active_partitions)
        if not active_partitions:
            return {}
    return await getattr(AIOKafkaConsumerThread, _ORIGINAL_GETMANY)(
        self, active_partitions, timeout)


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    """faust 0.15.3's ``Recovery.on_recovery_completed``, reordered (see the module doc).

    faust resumes the stream partitions, awaits a seek, then empties the
    agents' queues; here the seek comes first, the queues are emptied next,
    and the partitions are resumed last.
    """
    app = self.app
    consumer = app.consumer
    self.log.info("Restore complete!")
    await app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callback_coros = [
        asyncio.ensure_future(table.on_recovery_completed(
            self.actives_for_table[table], self.standbys_for_table[table]))
        for table in self.tables.values()
    ]
    if callback_coros:
        await asyncio.wait(callback_coros)
    assignment = consumer.assignment()
    if app.consumer_generation_id != generation_id:
        self.log.warning(f"Recovery rebalancing again app id "
                         f"{app.consumer_generation_id} param {generation_id}")
        return
    stream_tps = {tp for tp in assignment if not self._is_changelog_tp(tp)}
    if assignment:
        # still paused: nothing of these partitions reaches an agent meanwhile
        self.log.info("Seek stream partitions to committed offsets.")
        timeout = app.conf.broker_request_timeout
        await self._wait(consumer.perform_seek(), timeout=timeout)
        uncommitted = [tp for tp in stream_tps if consumer._committed_offset.get(tp) is None]
        if uncommitted and app.conf.consumer_auto_offset_reset == "earliest":
            await self._wait(consumer._thread.seek_to_beginning(
                *(ensure_aiokafka_TP(tp) for tp in uncommitted)), timeout=timeout)
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again after the seek")
            return
    self.completed.set()
    # empties the agents' queues (clear_on_resume): nothing of the stream
    # partitions can be in them yet, they are still paused ...
    app.flow_control.resume()
    consumer.resume_flow()
    # ... and only now may the fetcher deliver their records: no await since the seek
    consumer.resume_partitions(stream_tps)
    await app._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    app.on_rebalance_end()
    self.log.info("Worker ready")


def apply() -> None:
    """Install both fixes once; refuse a faust version they were not checked against."""
    cls = _recovery.Recovery
    if hasattr(cls, _ORIGINAL):
        return
    if not faust.__version__.startswith("0.15."):
        raise RuntimeError(
            f"service.faust_fixes was written against faust-streaming 0.15.x, found "
            f"{faust.__version__}: check whether Recovery.on_recovery_completed still "
            f"resumes the stream partitions before it seeks them and empties the agents' "
            f"queues, and whether the consumer thread still fetches for the live set of "
            f"active partitions, then update or drop the fixes")
    setattr(cls, _ORIGINAL, cls.on_recovery_completed)
    cls.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
    setattr(AIOKafkaConsumerThread, _ORIGINAL_GETMANY, AIOKafkaConsumerThread.getmany)
    AIOKafkaConsumerThread.getmany = _getmany  # type: ignore[method-assign]
    log.debug("faust fixes applied: seek and empty the queues before resuming stream "
              "partitions; fetch for a copy of the active partitions")

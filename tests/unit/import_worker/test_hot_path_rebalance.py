"""A batch that outlives a rebalance (found by ``make chaos``, scenario 6).

A batch stuck past the drain timeout is abandoned so the rebalance can go on; when it
finally completes, its partitions may belong to another member. Committing them made
aiokafka raise ``IllegalStateError`` ("partition not assigned"), which crashed the
hot path and with it the worker process. The batch's offsets must instead stay
uncommitted (the new owners redo it), and no commit error may end the loop.
"""

from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from services.import_worker.entrypoints.hot_path import DiscoveryConsumer
from services.import_worker.service_layer.engine import BatchResult

from .support import DISCOVERED
from .test_hot_path_admit import LoopConsumer, msg, service

pytestmark = pytest.mark.unit

P0, P1 = TopicPartition(DISCOVERED, 0), TopicPartition(DISCOVERED, 1)


class RevokingConsumer(LoopConsumer):
    """Commits like aiokafka: only partitions still assigned."""

    def __init__(self, svc: DiscoveryConsumer, batches: list[dict[TopicPartition, Any]]) -> None:
        super().__init__(svc, batches)
        self.assigned = {P0, P1}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.calls.append(("commit", dict(offsets)))
        for tp in offsets:
            if tp not in self.assigned:
                raise IllegalStateError(f"Partition {tp} is not assigned")


class RebalanceDuringBatch:
    """An engine whose batch is still running when a rebalance takes P1 away."""

    def __init__(self, svc: DiscoveryConsumer, consumer: RevokingConsumer, *, abandon: bool):
        self.svc, self.consumer, self.abandon = svc, consumer, abandon
        self.calls = 0

    async def process(self, records: list[Any]) -> BatchResult:
        self.calls += 1
        if self.calls == 1:
            self.consumer.assigned = {P0}
            self.svc._abandon = self.abandon  # what drain() sets when it times out
        return BatchResult()


@pytest.mark.parametrize("abandoned", [True, False])
async def test_a_batch_that_outlives_a_rebalance_never_crashes_the_loop(abandoned: bool) -> None:
    svc = service()
    consumer = RevokingConsumer(svc, [{P0: [msg(0)], P1: [msg(0, partition=1)]}, {P0: [msg(1)]}])
    svc.consumer = consumer  # type: ignore[assignment]
    svc.engine = RebalanceDuringBatch(svc, consumer, abandon=abandoned)  # type: ignore[assignment]

    await DiscoveryConsumer._consume_batches(svc)  # must return, not raise

    commits = [c[1] for c in consumer.calls if c[0] == "commit"]
    first = [] if abandoned else [{P0: 1, P1: 1}]  # attempted; refused for P1, redone
    assert commits == [*first, {P0: 2}]
    assert svc.batches_done == 2

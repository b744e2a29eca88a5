"""The start-up gate's bookkeeping (``adapters/catch_up.py``): open once every partition of
the projected topics is passed, by this worker's projection or by the group's commits."""

import pytest
from aiokafka import TopicPartition

from services.infra.catch_up import CatchUp

pytestmark = pytest.mark.unit

P, C = "policy.events", "customer.events"


def test_empty_topics_open_the_gate_at_once() -> None:
    assert CatchUp({TopicPartition(P, 0): 0, TopicPartition(C, 0): 0}).caught_up.is_set()
    assert CatchUp({}).caught_up.is_set()


def test_the_gate_opens_when_every_partition_is_passed() -> None:
    gate = CatchUp({TopicPartition(P, 0): 3, TopicPartition(C, 0): 2, TopicPartition(C, 1): 1})
    assert gate.progress() == "customer.events 0/3, policy.events 0/3"
    for offset in range(3):
        gate.projected(P, 0, offset)
    gate.projected(C, 0, 1)  # offset 1 projected: position 2 = the end
    assert not gate.caught_up.is_set()
    assert gate.behind() == [TopicPartition(C, 1)]
    assert gate.progress() == "customer.events 2/3, policy.events 3/3"
    gate.committed({TopicPartition(C, 1): 1})  # another worker projected that partition
    assert gate.caught_up.is_set()


def test_records_written_after_start_up_do_not_hold_the_gate() -> None:
    gate = CatchUp({TopicPartition(P, 0): 2})
    gate.projected(P, 0, 1)
    assert gate.caught_up.is_set()
    gate.projected(P, 0, 7)  # later traffic: the gate stays open
    assert gate.caught_up.is_set()


def test_positions_never_go_back() -> None:
    gate = CatchUp({TopicPartition(P, 0): 10})
    gate.committed({TopicPartition(P, 0): 6})
    gate.committed({TopicPartition(P, 0): 2})
    gate.projected(P, 0, 3)
    assert gate.reached[TopicPartition(P, 0)] == 6

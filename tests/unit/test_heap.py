"""settle_heap: the start-up heap is frozen out of the collector, gen 0 widened."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.infra.heap import YOUNG_THRESHOLD, settle_heap

pytestmark = pytest.mark.unit


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_objects_alive_at_start_up_leave_the_collectors_generations() -> None:
    kept = [{"alive": i} for i in range(1000)]
    gc.unfreeze()
    settle_heap()
    assert gc.get_freeze_count() >= len(kept)
    assert not any(gc.is_tracked(o) and o in gc.get_objects(generation=2) for o in kept[:3])
    middle, old = gc.get_threshold()[1:]
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)


@pytest.mark.usefixtures("restored_gc")
def test_garbage_made_later_is_still_collected() -> None:
    settle_heap()

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    cycle = Cycle()
    gone = weakref.ref(cycle)
    del cycle
    assert gone() is not None  # a cycle: only the collector frees it
    gc.collect()
    assert gone() is None

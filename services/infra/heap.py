"""Garbage-collector settings for the long-running services' hot paths.

CPython's cyclic collector walks every tracked container of a generation it
collects. After start-up a service holds a few hundred thousand of them
(modules, classes, pydantic's validators, Faust and aiokafka internals) that
live as long as the process, and each full collection walked them all again:
measured on the import worker's engine, rediscoveries went from 25 to 16 µs
each with the start-up heap frozen (docs/performance.md). Freezing moves what
exists now out of the collector's sight (it is never freed anyway); the
per-batch garbage (records, models, messages) still goes through the young
generations, which are collected less often with a larger first threshold.
"""

import gc

# Allocations of tracked objects between young collections (CPython: 700). A batch
# of 5,000 records allocates several hundred thousand; collecting every 700 of
# them mostly re-walks objects still in use by the batch.
YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Collect once, freeze what survives (the start-up heap), and widen gen 0."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


__all__ = ["YOUNG_THRESHOLD", "settle_heap"]

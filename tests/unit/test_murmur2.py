"""Our murmur2 gives aiokafka's (Kafka's Java client's) hash and partition for any key."""

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from services.infra.murmur2 import murmur2, partition_of

pytestmark = pytest.mark.unit


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_the_hash_is_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=200))
def test_the_partition_is_the_default_partitioners(key: bytes, count: int) -> None:
    partitions = list(range(count))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_known_values_of_the_java_client() -> None:
    # Kafka's UtilsTest.testMurmur2: these inputs and signed 32-bit results.
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, signed in cases.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key

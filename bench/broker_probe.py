"""``make bench-broker``: how the development broker's latency changes as a topic fills.

No worker, no database: one producer sends single-record batches at a fixed
rate (as agents send discoveries) and one consumer reads them back, on a
broker of its own. Printed per window: the trip's p50/p99, the producer's
acknowledgement p50, and the broker's CPU. Then the same trip on a fresh
topic and on the filled one, side by side.

Why it exists: on Tansu's memory storage a fetch gets slower the more record
batches its partition holds, while producing does not; so the worker's
latency probe in ``make bench`` measures the broker more than the worker.
Apache Kafka finds a fetch offset through an index, so this is the
development broker's, not the design's. Sizes: BROKER_PROBE_RATE (1000
records/s), BROKER_PROBE_SECONDS (30), BROKER_PROBE_WINDOW (5 s).
"""

import asyncio
import json
import os
import statistics
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.infra.devstack import LocalBroker
from services.infra.kafka_admin import ensure_topics

PARTITIONS = 8


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000


async def trips(
    bootstrap: str, topic: str, rate: int, seconds: float, window: float, pid: int
) -> list[str]:
    """Send ``rate`` records/s for ``seconds`` and time each one's trip back; a line per window."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=10,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=0, enable_idempotence=False
    )
    await consumer.start()
    await producer.start()
    await asyncio.sleep(1)  # the consumer has its partitions and positions
    acks: list[float] = []  # every 100th record: send -> acknowledged
    total = int(rate * seconds)

    async def send() -> None:
        start, pending = time.perf_counter(), []
        for i in range(total):
            sent = time.perf_counter()
            value = json.dumps({"sent": sent}).encode()
            future = await producer.send(topic, value, key=str(i).encode())
            if i % 100 == 0:
                future.add_done_callback(lambda _, t=sent: acks.append(time.perf_counter() - t))
            pending.append(future)
            ahead = (i + 1) / rate - (time.perf_counter() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await asyncio.gather(*pending)

    lines: list[str] = []
    sender = asyncio.ensure_future(send())
    seen, window_trips = 0, []
    began, cpu = time.perf_counter(), cpu_seconds(pid)
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    window_trips.append(now - json.loads(record.value)["sent"])
                    seen += 1
            if now - began >= window or seen >= total:
                if len(window_trips) >= 100:  # not a last sliver of a window
                    used = (cpu_seconds(pid) - cpu) / (now - began) * 100
                    ack = statistics.median(acks) * 1000 if acks else float("nan")
                    lines.append(
                        f"{len(window_trips):6d} trips  p50 {ms(window_trips, 50):6.1f} ms"
                        f"  p99 {ms(window_trips, 99):6.1f} ms  ack p50 {ack:4.1f} ms"
                        f"  broker CPU {used:3.0f} %"
                    )
                window_trips, acks[:] = [], []
                began, cpu = now, cpu_seconds(pid)
        await sender
    finally:
        await producer.stop()
        await consumer.stop()
    return lines


async def main() -> None:
    rate = int(os.environ.get("BROKER_PROBE_RATE", "1000"))
    seconds = float(os.environ.get("BROKER_PROBE_SECONDS", "30"))
    window = float(os.environ.get("BROKER_PROBE_WINDOW", "5"))
    with LocalBroker() as broker:
        assert broker.pid is not None
        bootstrap = broker.bootstrap
        await ensure_topics(bootstrap, ["probe.filled", "probe.fresh"], PARTITIONS)
        print(f"{rate} single-record batches/s for {seconds:.0f} s into one topic, read back:")
        for line in await trips(bootstrap, "probe.filled", rate, seconds, window, broker.pid):
            print("  " + line)
        print(f"then {rate}/s for {window:.0f} s, a fresh topic and the filled one:")
        for topic in ("probe.fresh", "probe.filled"):
            lines = await trips(bootstrap, topic, rate, window, window + 1, broker.pid)
            print(f"  {topic:13s}" + lines[-1])


if __name__ == "__main__":
    asyncio.run(main())

"""Baseline (d) of the benchmark: a per-event Faust agent that forwards every record.

Run as ``python bench/faust_passthrough.py worker``; topics and broker come
from the environment (BENCH_IN, BENCH_OUT, KAFKA_BOOTSTRAP_SERVERS).
"""

import os

import faust

app = faust.App(
    os.environ.get("BENCH_GROUP", "bench-faust-passthrough"),
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP_SERVERS']}",
    store="memory://",
    autodiscover=False,
    web_enabled=False,
    broker_session_timeout=2,
    broker_heartbeat_interval=0.5,
    broker_rebalance_timeout=2,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
)
source = app.topic(os.environ["BENCH_IN"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["BENCH_OUT"], key_serializer="raw", value_serializer="raw")


@app.agent(source, concurrency=1)
async def forward(stream: faust.StreamT[bytes]) -> None:
    async for event in stream.events():
        await sink.send(key=event.key, value=event.value)


if __name__ == "__main__":
    app.main()

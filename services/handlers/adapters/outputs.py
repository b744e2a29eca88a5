"""What the handlers produce: results on ``command.results``, rotation requests on
``agent.requests``, and the records they cannot work on ``commands.dlq``.

Each send waits for the broker's acknowledgement: the caller commits the work it
stands for (the inbox row, the offset) only after it. No idempotent producer (Tansu
has none): a re-sent result or request carries the same id.
"""

from typing import Any

from aiokafka import AIOKafkaProducer

from schemas.envelope import CONTENT_TYPE
from schemas.topics import TopicNames
from services.infra.rejections import DETAIL_HEADER_BYTES, Rejected, utf8_cut

#: The headers a dead letter gets (a record's own of the same names are replaced).
DLQ_HEADERS = frozenset(
    {
        "x-error-reason",
        "x-error-detail",
        "x-original-topic",
        "x-original-partition",
        "x-original-offset",
    }
)
_JSON = [("content-type", CONTENT_TYPE.encode())]


class Outputs:
    def __init__(self, producer: AIOKafkaProducer, topics: TopicNames) -> None:
        self.producer = producer
        self.topics = topics

    async def result(self, result_type: str, event_id: Any, value: bytes, key: str) -> None:
        await self.producer.send_and_wait(
            self.topics.command_results, value, key=key.encode(), headers=_JSON
        )

    async def agent_request(self, event_id: Any, value: bytes, key: str) -> None:
        await self.producer.send_and_wait(
            self.topics.agent_requests, value, key=key.encode(), headers=_JSON
        )

    async def dead_letter(self, record: Any, why: Rejected) -> None:
        """The record as received (value, key, its other headers) and why."""
        headers = [
            ("x-error-reason", why.reason.value.encode()),
            ("x-error-detail", utf8_cut(why.detail, DETAIL_HEADER_BYTES)),
            ("x-original-topic", record.topic.encode()),
            ("x-original-partition", str(record.partition).encode()),
            ("x-original-offset", str(record.offset).encode()),
            *((k, v) for k, v in (record.headers or ()) if k not in DLQ_HEADERS),
        ]
        await self.producer.send_and_wait(
            self.topics.commands_dlq, record.value, key=record.key, headers=headers
        )

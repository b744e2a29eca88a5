"""Topic provisioning and a reachability probe for any Kafka-protocol broker.

Services call :func:`ensure_topics` at startup so a fresh dev broker (or a
Tansu restart, which loses every topic) needs no manual setup; against a
provisioned Apache Kafka cluster it finds every topic present and is a no-op.
Only protocol features both Apache Kafka and Tansu implement are used:
Metadata and CreateTopics.
"""

import asyncio
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str],
    partitions: int,
    *,
    replication_factor: int = 1,
    timeout: float = 30,
) -> list[str]:
    """Create the topics in ``topics`` that do not exist yet; return those created.

    Existing topics are left alone, whatever their partition count. A topic
    another process creates between our listing and our request (two services
    starting together) is not an error: TopicAlreadyExists counts as present.
    Any other per-topic error is raised. The whole call is bounded by ``timeout``.
    """
    wanted = list(dict.fromkeys(topics))
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1, int(timeout * 1000))
    )
    async with asyncio.timeout(timeout):
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            if not missing:
                return []
            response = await admin.create_topics(
                [NewTopic(name, partitions, replication_factor) for name in missing]
            )
        finally:
            await admin.close()
    created: list[str] = []
    for entry in response.topic_errors:
        topic, code = entry[0], entry[1]
        if code == 0:
            created.append(topic)
            continue
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            continue
        message = entry[2] if len(entry) > 2 else None
        raise error(f"could not create topic {topic!r}: {message or error.__name__}")
    if created:
        log.info("created topics", extra={"topics": created, "partitions": partitions})
    return created


async def broker_reachable(bootstrap: str, *, timeout: float = 3.0) -> bool:
    """Whether a broker answers a Metadata request listing at least one broker.

    For readiness probes: it never raises, and gives up after ``timeout``.
    A TCP accept alone is not enough (a broker may accept before it serves).
    """
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=max(1, int(timeout * 1000)),
        retry_backoff_ms=50,
    )
    try:
        async with asyncio.timeout(timeout):
            await client.bootstrap()
            return bool(client.cluster.brokers())
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()

"""aiokafka 0.14.0 (ApiVersions v0 probe; Produce <= v8, Fetch <= v11, Metadata <= v5)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from raftka_harness import unique_name

N = 500
TIMEOUT_S = 40


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT_S))


async def produce(bootstrap: str, topic: str, n: int, **extra) -> list:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000,
                                linger_ms=5, **extra)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=f"value-{i}".encode(), key=f"key-{i}".encode(),
                                       partition=0, headers=[("i", str(i).encode())])
                   for i in range(n)]
        return [await f for f in futures]
    finally:
        await producer.stop()


def check_records(records, n: int):
    assert [r.offset for r in records] == list(range(n)), "each record exactly once, in order"
    assert [r.key for r in records] == [f"key-{i}".encode() for i in range(n)]
    assert [r.value for r in records] == [f"value-{i}".encode() for i in range(n)]
    assert [list(r.headers) for r in records] == [[("i", str(i).encode())] for i in range(n)]


async def drain(consumer: AIOKafkaConsumer, n: int) -> list:
    records = []
    while len(records) < n:
        batch = await consumer.getmany(timeout_ms=500)
        for recs in batch.values():
            records.extend(recs)
    # Nothing beyond n.
    extra = await consumer.getmany(timeout_ms=1000)
    assert sum(len(v) for v in extra.values()) == 0, extra
    return records


@pytest.mark.parametrize("idempotent", [False, True], ids=["plain", "idempotent"])
def test_produce_acks_all_then_assign_consume(raftka, idempotent):
    topic = unique_name("aio-assign")

    async def main():
        metas = await produce(raftka.bootstrap, topic, N, enable_idempotence=idempotent)
        assert [(m.topic, m.partition, m.offset) for m in metas] == [(topic, 0, i) for i in range(N)]

        consumer = AIOKafkaConsumer(bootstrap_servers=raftka.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", request_timeout_ms=15000)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            assert await consumer.end_offsets([tp]) == {tp: N}
            await consumer.seek_to_beginning(tp)
            return await drain(consumer, N)
        finally:
            await consumer.stop()

    check_records(run(main()), N)


def test_subscribe_without_group(raftka):
    topic = unique_name("aio-sub")

    async def main():
        await produce(raftka.bootstrap, topic, N)
        # group_id=None: NoGroupCoordinator assigns every partition of the topic locally.
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=raftka.bootstrap, group_id=None,
                                    auto_offset_reset="earliest", request_timeout_ms=15000)
        await consumer.start()
        try:
            return await drain(consumer, N)
        finally:
            await consumer.stop()

    check_records(run(main()), N)


def test_group_consume_and_commit(raftka):
    topic = unique_name("aio-group")

    async def main():
        await produce(raftka.bootstrap, topic, 50)
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=raftka.bootstrap, group_id=unique_name("g"),
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            records = await drain(consumer, 50)
            await consumer.commit()
            assert await consumer.committed(TopicPartition(topic, 0)) == 50
            return records
        finally:
            await consumer.stop()

    check_records(run(main()), 50)

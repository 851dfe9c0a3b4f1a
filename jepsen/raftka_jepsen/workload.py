"""Client workers. Each worker is a thread that acts as a sequence of Jepsen processes: it
records `invoke`, performs one operation, records `ok`/`fail`/`info`; after an `info` it
discards its client and continues under a fresh process id (an indeterminate op may still be
in flight, so the old process can never issue another op).

Queue workload (confluent-kafka 2.16.1 / librdkafka 2.16.0):
  ProducerWorker    acks=all, enable.idempotence=true, one message in flight (produce+flush),
                    explicit partition, values unique across the run.
  AssignConsumer    assign() every partition from the beginning, poll (consume) batches.
  SubscribeConsumer subscribe() in one group, poll, commit the consumed position synchronously,
                    sometimes read the committed offsets back.
Transactional workload (issue 17), on the topic `jepsen-txn`:
  TxnWorker         a transactional producer (its own transactional.id); each op sends unique
                    values to 1-3 partitions in one transaction and commits it (ok), or aborts
                    it on purpose (fail); a failure whose outcome is unknown is info.
  TxnCtpWorker      consume-transform-produce: reads jepsen-txn read_committed in its own
                    group, writes new values and commits the consumed offsets in the same
                    transaction (send_offsets_to_transaction); resumes from the committed
                    offsets after an abort or an unknown outcome.
  TxnReader         assign() every partition, isolation.level=read_committed, poll.
  txn_drain         the final read_committed read of every partition to its end.
ZooKeeper workload (kazoo 2.11.0):
  ZkWorker          register at /jepsen/register (getData / versioned setData) and sequential
                    creates under /jepsen/seq.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Any

from .history import Recorder

TOPIC = "jepsen"

# librdkafka logs (connection refused while a node is down, ...) go to clients.log via this
# logger instead of stderr; runner.py attaches the file handler.
import logging  # noqa: E402

CLIENT_LOG = logging.getLogger("raftka_jepsen.clients")
# Security settings every Kafka client of the run adds (`--secure`: SASL_SSL; see security.py).
CLIENT_SECURITY: dict = {}
CLIENT_LOG.propagate = False

_pids = itertools.count(0)
_pid_lock = threading.Lock()


def next_pid() -> int:
    with _pid_lock:
        return next(_pids)


class Values:
    """Unique send values for the whole run."""

    def __init__(self):
        self._it = itertools.count(0)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            return next(self._it)


def pkey(partition: int) -> str:
    return f"{TOPIC}-{partition}"


class Worker(threading.Thread):
    def __init__(self, name: str, rec: Recorder, stop: threading.Event, seed: int):
        super().__init__(name=name, daemon=True)
        self.rec = rec
        self.stop_event = stop
        self.rng = random.Random(seed)
        self.pid = next_pid()
        self.errors: list[str] = []
        self.ops = 0

    def new_process(self) -> None:
        self.pid = next_pid()

    def run(self) -> None:
        try:
            self.open()
            while not self.stop_event.is_set():
                self.step()
                self.ops += 1
        except Exception as e:  # noqa: BLE001 - a harness fault, reported separately
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            try:
                self.close()
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"close: {type(e).__name__}: {e}")

    def open(self) -> None: ...
    def close(self) -> None: ...
    def step(self) -> None: ...


# --------------------------------------------------------------------------------- kafka ----

def _kerr(err: Any) -> dict[str, Any]:
    try:
        return {"error": err.name(), "code": err.code(), "retriable": err.retriable(),
                "fatal": err.fatal()}
    except Exception:  # noqa: BLE001
        return {"error": str(err)}


class ProducerWorker(Worker):
    def __init__(self, name, rec, stop, seed, bootstrap: str, partitions: int, values: Values,
                 timeout_s: float = 10.0):
        super().__init__(name, rec, stop, seed)
        self.bootstrap, self.partitions, self.values = bootstrap, partitions, values
        self.timeout_s = timeout_s
        self.producer = None

    def open(self) -> None:
        from confluent_kafka import Producer
        self.producer = Producer({
            **CLIENT_SECURITY,
            **CLIENT_SECURITY,
            "bootstrap.servers": self.bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 0, "message.timeout.ms": int(self.timeout_s * 1000),
            "request.timeout.ms": 5000, "socket.timeout.ms": 5000,
            "retry.backoff.ms": 100, "retry.backoff.max.ms": 1000,
            "reconnect.backoff.max.ms": 1000, "topic.metadata.refresh.interval.ms": 2000,
            "client.id": f"jepsen-producer-{self.pid}",
        }, logger=CLIENT_LOG)

    def close(self) -> None:
        if self.producer is not None:
            self.producer.purge()
            self.producer.flush(0)
            self.producer = None

    def reopen(self) -> None:
        self.close()
        self.new_process()
        self.open()

    def step(self) -> None:
        p = self.rng.randrange(self.partitions)
        v = self.values.next()
        key = pkey(p)
        result: dict[str, Any] = {}

        def on_delivery(err, msg):
            result["err"] = err
            result["offset"] = None if err else msg.offset()

        self.rec.invoke(self.pid, "send", {"key": key, "value": v})
        try:
            self.producer.produce(TOPIC, value=str(v).encode(), key=key.encode(), partition=p,
                                  on_delivery=on_delivery)
        except BufferError as e:  # queue full: never handed to the broker
            self.rec.complete(self.pid, "send", "fail", {"key": key, "value": v, "error": str(e)})
            return
        except Exception as e:  # noqa: BLE001 - e.g. a fatal idempotence error
            self.rec.complete(self.pid, "send", "info", {"key": key, "value": v, "error": repr(e)})
            self.reopen()
            return
        self.producer.flush(self.timeout_s + 5)
        if "err" not in result:
            self.rec.complete(self.pid, "send", "info", {"key": key, "value": v,
                                                         "error": "no delivery report"})
            self.reopen()
        elif result["err"] is None:
            self.rec.complete(self.pid, "send", "ok",
                              {"key": key, "value": v, "offset": result["offset"]})
        else:
            # After retries every produce error is indeterminate: the broker may have
            # appended the batch before the error (timeouts, disconnects, fatal idempotence).
            self.rec.complete(self.pid, "send", "info",
                              {"key": key, "value": v, **_kerr(result["err"])})
            self.reopen()


class _Consumer(Worker):
    mode = "assign"

    def __init__(self, name, rec, stop, seed, bootstrap: str, partitions: int,
                 group: str | None = None):
        super().__init__(name, rec, stop, seed)
        self.bootstrap, self.partitions, self.group = bootstrap, partitions, group
        self.consumer = None

    def config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group or f"jepsen-assign-{self.pid}",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False, "fetch.wait.max.ms": 100,
            "socket.timeout.ms": 5000, "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000, "reconnect.backoff.max.ms": 1000,
            "topic.metadata.refresh.interval.ms": 2000,
            "client.id": f"jepsen-{self.mode}-{self.pid}",
        }

    def close(self) -> None:
        if self.consumer is not None:
            c, self.consumer = self.consumer, None
            try:
                c.close()
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"close: {e!r}")

    def reopen(self) -> None:
        self.close()
        self.new_process()
        self.open()

    def poll_once(self, extra: dict[str, Any] | None = None) -> list[list]:
        self.rec.invoke(self.pid, "poll")
        try:
            msgs = self.consumer.consume(num_messages=500, timeout=0.5)
        except Exception as e:  # noqa: BLE001
            self.rec.complete(self.pid, "poll", "info", {"error": repr(e)})
            self.reopen()
            return []
        records, errors = [], []
        for m in msgs:
            if m.error():
                errors.append(_kerr(m.error()))
            else:
                records.append([pkey(m.partition()), m.offset(), int(m.value())])
        value: dict[str, Any] = {"records": records, "mode": self.mode}
        if errors:
            value["errors"] = errors[:5]
        if extra:
            value.update(extra)
        self.rec.complete(self.pid, "poll", "ok", value)
        return records


class AssignConsumer(_Consumer):
    mode = "assign"

    def open(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        self.rec.invoke(self.pid, "assign", {"partitions": [pkey(p) for p in range(self.partitions)],
                                             "mode": "assign"})
        self.consumer = Consumer(self.config(), logger=CLIENT_LOG)
        self.consumer.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING)
                              for p in range(self.partitions)])
        self.rec.complete(self.pid, "assign", "ok", {"mode": "assign"})

    def step(self) -> None:
        self.poll_once()


class SubscribeConsumer(_Consumer):
    """Group member. A rebalance during a poll is recorded in that poll's value
    ("rebalance": [partitions assigned]); the checker resets the process' position for them."""

    mode = "subscribe"

    def open(self) -> None:
        from confluent_kafka import Consumer
        self._rebalanced: list[str] = []
        self.consumer = Consumer(self.config(), logger=CLIENT_LOG)

        def on_assign(consumer, parts):
            self._rebalanced.extend(pkey(tp.partition) for tp in parts)

        def on_revoke(consumer, parts):
            self._rebalanced.extend(pkey(tp.partition) for tp in parts)

        self.consumer.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke)

    def step(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition
        self._rebalanced = []
        self.rec.invoke(self.pid, "poll")
        try:
            msgs = self.consumer.consume(num_messages=500, timeout=0.5)
        except Exception as e:  # noqa: BLE001
            self.rec.complete(self.pid, "poll", "info", {"error": repr(e)})
            self.reopen()
            return
        records, errors = [], []
        for m in msgs:
            if m.error():
                errors.append(_kerr(m.error()))
            else:
                records.append([pkey(m.partition()), m.offset(), int(m.value())])
        value: dict[str, Any] = {"records": records, "mode": self.mode}
        if self._rebalanced:
            value["rebalance"] = sorted(set(self._rebalanced))
        if errors:
            value["errors"] = errors[:5]
        self.rec.complete(self.pid, "poll", "ok", value)
        if records:
            last: dict[int, int] = {}
            for key, off, _ in records:
                last[int(key.rsplit("-", 1)[1])] = off
            offsets = {pkey(p): o + 1 for p, o in last.items()}
            self.rec.invoke(self.pid, "commit", {"group": self.group, "offsets": offsets})
            try:
                res = self.consumer.commit(offsets=[TopicPartition(TOPIC, p, o + 1)
                                                    for p, o in last.items()],
                                           asynchronous=False)
                # Per-partition errors come back in the result, not as an exception.
                bad = [tp for tp in (res or []) if tp.error is not None]
                if bad:
                    raise KafkaException(bad[0].error)
                self.rec.complete(self.pid, "commit", "ok", {"group": self.group})
            except KafkaException as e:
                err = e.args[0] if e.args else None
                code = err.code() if err is not None and hasattr(err, "code") else None
                # Rejected by the coordinator (generation/member/rebalance): definitely not
                # applied. Anything else (timeouts, disconnects) is indeterminate.
                typ = "fail" if code in (22, 25, 27) else "info"
                self.rec.complete(self.pid, "commit", typ, {"group": self.group, **_kerr(err)})
                if typ == "info":
                    self.reopen()
                return
        if self.rng.random() < 0.05:
            self.rec.invoke(self.pid, "committed", {"group": self.group})
            try:
                tps = self.consumer.committed(
                    [TopicPartition(TOPIC, p) for p in range(self.partitions)], timeout=5)
                self.rec.complete(self.pid, "committed", "ok", {
                    "group": self.group,
                    "offsets": {pkey(tp.partition): tp.offset for tp in tps
                                if tp.offset >= 0 and tp.error is None}})
            except Exception as e:  # noqa: BLE001
                self.rec.complete(self.pid, "committed", "info", {"error": repr(e)})


def drain(rec: Recorder, bootstrap: str, partitions: int, timeout_s: float = 60) -> dict[str, Any]:
    """Final read: a fresh assign consumer reads every partition from the beginning to its
    high watermark. Records polls and a `drain` op (ok only if every partition was read)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    pid = f"final-{next_pid()}"
    rec.invoke(pid, "watermarks")
    c = Consumer({**CLIENT_SECURITY, "bootstrap.servers": bootstrap, "group.id": f"jepsen-drain-{pid}",
                  "enable.auto.commit": False, "enable.partition.eof": False,
                  "auto.offset.reset": "earliest"}, logger=CLIENT_LOG)
    try:
        deadline = time.monotonic() + timeout_s
        hw: dict[int, int] = {}
        for p in range(partitions):
            while True:
                try:
                    hw[p] = c.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=5)[1]
                    break
                except Exception:  # noqa: BLE001
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        rec.complete(pid, "watermarks", "ok", {"high": {pkey(p): h for p, h in hw.items()}})
        pid2 = f"final-{next_pid()}"
        rec.invoke(pid2, "assign", {"partitions": [pkey(p) for p in range(partitions)], "mode": "assign"})
        c.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in range(partitions)])
        rec.complete(pid2, "assign", "ok", {"mode": "assign"})
        pos = {p: -1 for p in range(partitions)}
        while any(pos[p] < hw[p] - 1 for p in range(partitions)):
            if time.monotonic() > deadline:
                break
            rec.invoke(pid2, "poll")
            msgs = c.consume(num_messages=1000, timeout=1)
            recs = []
            for m in msgs:
                if not m.error():
                    recs.append([pkey(m.partition()), m.offset(), int(m.value())])
                    pos[m.partition()] = max(pos[m.partition()], m.offset())
            rec.complete(pid2, "poll", "ok", {"records": recs, "mode": "assign"})
        complete = all(pos[p] >= hw[p] - 1 for p in range(partitions))
        pid3 = f"final-{next_pid()}"
        rec.invoke(pid3, "drain")
        rec.complete(pid3, "drain", "ok" if complete else "info",
                     {"high": {pkey(p): h for p, h in hw.items()},
                      "read_to": {pkey(p): pos[p] for p in pos}})
        return {"complete": complete, "high": hw, "read_to": pos}
    finally:
        c.close()


# --------------------------------------------------------------------------- transactions ----

TXN_TOPIC = "jepsen-txn"
# Short, so that the coordinator aborts a dead worker's transaction well before the drain.
TXN_TIMEOUT_MS = 10000


class TxnWorker(Worker):
    def __init__(self, name, rec, stop, seed, bootstrap: str, partitions: int, values: Values,
                 index: int):
        super().__init__(name, rec, stop, seed)
        self.bootstrap, self.partitions, self.values = bootstrap, partitions, values
        self.txn_id = f"jepsen-txn-{index}"
        self.producer = None

    def open(self) -> None:
        from confluent_kafka import KafkaException, Producer
        deadline = time.monotonic() + 60
        while not self.stop_event.is_set():
            p = Producer({
                **CLIENT_SECURITY,
                "bootstrap.servers": self.bootstrap, "transactional.id": self.txn_id,
                "linger.ms": 0, "transaction.timeout.ms": TXN_TIMEOUT_MS,
                "message.timeout.ms": TXN_TIMEOUT_MS, "socket.timeout.ms": 5000,
                "request.timeout.ms": 5000, "retry.backoff.ms": 100,
                "retry.backoff.max.ms": 1000, "reconnect.backoff.max.ms": 1000,
                "topic.metadata.refresh.interval.ms": 2000,
                "client.id": f"jepsen-txn-{self.pid}",
            }, logger=CLIENT_LOG)
            try:
                p.init_transactions(15)
                self.producer = p
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        from confluent_kafka import KafkaException
        if self.producer is not None:
            p, self.producer = self.producer, None
            try:
                p.purge()
                p.flush(0)
            except KafkaException:
                pass  # a fenced producer (a fatal error) refuses both; it is dropped as it is

    def reopen(self) -> None:
        self.close()
        self.new_process()
        self.open()

    def step(self) -> None:
        """One transaction: `transact` does the work; an error after which an abort succeeds
        is `fail`, anything else `info` (and a new process)."""
        from confluent_kafka import KafkaException
        if self.producer is None:
            self.open()
            if self.producer is None:
                return
        n = self.rng.randint(1, min(3, self.partitions))
        parts = self.rng.sample(range(self.partitions), n)
        sends = [[pkey(p), self.values.next()] for p in parts]
        abort = self.rng.random() < 0.2
        meta = self.txn_meta()
        self.rec.invoke(self.pid, "txn", {"sends": sends, "abort": abort, "tid": self.txn_id,
                                          **meta})
        p = self.producer
        seen: dict[str, Any] = {}  # what the transaction read, for its completion
        try:
            self.transact(p, sends, parts, seen)
            if abort:
                p.flush(TXN_TIMEOUT_MS / 1000)
                p.abort_transaction(TXN_TIMEOUT_MS / 1000)
                self.rec.complete(self.pid, "txn", "fail",
                                  {"sends": sends, "abort": True, **seen, **meta})
                self.after_abort()
            else:
                p.commit_transaction(TXN_TIMEOUT_MS / 1000)
                self.rec.complete(self.pid, "txn", "ok", {"sends": sends, **seen, **meta})
            return
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                try:
                    p.abort_transaction(TXN_TIMEOUT_MS / 1000)
                    # The abort succeeded: the transaction is aborted whatever came before.
                    self.rec.complete(self.pid, "txn", "fail",
                                      {"sends": sends, "aborted_after": _kerr(err), **seen,
                                       **meta})
                    self.after_abort()
                    return
                except KafkaException:
                    pass
            self.rec.complete(self.pid, "txn", "info",
                              {"sends": sends, **seen, **_kerr(err), **meta})
        except BufferError as e:
            self.rec.complete(self.pid, "txn", "info",
                              {"sends": sends, "error": str(e), **seen, **meta})
        except ClientHung as e:
            # The producer is left to its stuck thread (closing it would wait as well); the
            # next init_transactions with this transactional.id fences it and aborts its
            # transaction.
            self.rec.complete(self.pid, "txn", "info",
                              {"sends": sends, "error": str(e), **seen, **meta})
            self.producer = None
        self.reopen()

    def txn_meta(self) -> dict[str, Any]:
        """Extra fields of the op's invocation and completion."""
        return {}

    def transact(self, p, sends: list, parts: list[int], seen: dict[str, Any]) -> None:
        """The body of one transaction (begun here; `step` commits or aborts it); what it
        reads goes into `seen`."""
        p.begin_transaction()
        self.write(p, sends, parts)

    @staticmethod
    def write(p, sends: list, parts: list[int]) -> None:
        for (key, v), part in zip(sends, parts):
            p.produce(TXN_TOPIC, value=str(v).encode(), key=key.encode(), partition=part)

    def after_abort(self) -> None:
        """Called once a transaction is known aborted."""


class ClientHung(Exception):
    """A client call that did not return within its bound."""


def _bounded(call, timeout_s: float):
    """Runs a blocking client call in a helper thread and waits at most `timeout_s`.
    librdkafka 2.16's send_offsets_to_transaction waits for its result without a deadline
    (rd_kafka_txn_op_req1(..., RD_POLL_INFINITE), relying on the request handlers to set
    it) and was seen blocked for good after the group coordinator's node was killed
    mid-request, with every librdkafka thread idle; a stuck call is abandoned, not joined."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = call()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            out["error"] = e

    t = threading.Thread(target=run, name="bounded-client-call", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise ClientHung(f"client call still blocked after {timeout_s:.0f} s (abandoned)")
    if "error" in out:
        raise out["error"]
    return out.get("value")


class TxnCtpWorker(TxnWorker):
    """Consume-transform-produce (exactly-once, KIP-447 style): one transactional producer and
    one read_committed consumer of `jepsen-txn` in its own group, all partitions assigned.
    Each op reads 1-20 records from the consumer's position, then writes new unique values
    to 1-3 partitions and adds the consumed positions to the transaction
    (send_offsets_to_transaction) before committing it (ok) or aborting it (fail). After an
    abort, or an outcome not known (info), the consumer restarts from the group's committed
    offsets (fetched after the producer's init_transactions settled the previous transaction,
    with read_committed's require_stable): the committed transactions of one group must
    consume every committed record once, in order. The op's value carries the reads
    ([partition, offset, value]), the group and the consumer's incarnation (`consumer`)."""

    def __init__(self, name, rec, stop, seed, bootstrap: str, partitions: int, values: Values,
                 index: int):
        super().__init__(name, rec, stop, seed, bootstrap, partitions, values, index)
        self.txn_id = f"jepsen-ctp-{index}"
        self.group = f"jepsen-ctp-{index}"
        self.consumer = None
        self.group_metadata = None
        self.incarnation = 0

    def open(self) -> None:
        super().open()
        if self.producer is not None:
            self.open_consumer()

    def close(self) -> None:
        self.close_consumer()
        super().close()

    def close_consumer(self) -> None:
        if self.consumer is not None:
            c, self.consumer = self.consumer, None
            c.close()

    def open_consumer(self) -> None:
        """A fresh consumer at the group's committed offsets (earliest where none); none when
        the run stops while the offsets are still unavailable."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
        self.close_consumer()
        self.incarnation += 1
        c = Consumer({**_txn_consumer_config(self.bootstrap, self.pid), "group.id": self.group},
                     logger=CLIENT_LOG)
        tps = [TopicPartition(TXN_TOPIC, p) for p in range(self.partitions)]
        deadline = time.monotonic() + 60
        while True:
            try:
                got = c.committed(tps, timeout=10)
                if all(tp.error is None for tp in got):
                    break
                why = [str(tp.error) for tp in got if tp.error is not None]
            except KafkaException as e:
                why = [str(e)]
            if self.stop_event.is_set():
                # The run is ending (a reopen after its last transaction): no consumer is
                # needed any more, and a coordinator still moving is no harness problem.
                c.close()
                return
            if time.monotonic() > deadline:
                c.close()
                raise RuntimeError(f"committed offsets of {self.group} unavailable: {why[:2]}")
            time.sleep(0.5)
        start = [TopicPartition(TXN_TOPIC, tp.partition,
                                tp.offset if tp.offset >= 0 else OFFSET_BEGINNING) for tp in got]
        self.rec.invoke(self.pid, "txn-resume", {"group": self.group})
        self.rec.complete(self.pid, "txn-resume", "ok",
                          {"group": self.group, "consumer": self.incarnation,
                           "offsets": {pkey(tp.partition): tp.offset for tp in got}})
        c.assign(start)
        # Fixed for an assign()ed consumer (no generation: KIP-447 fencing does not apply).
        # Asked once: librdkafka answers it through the consumer's main thread and waits
        # without a deadline.
        self.group_metadata = c.consumer_group_metadata()
        self.consumer = c

    def txn_meta(self) -> dict[str, Any]:
        return {"group": self.group, "consumer": self.incarnation}

    def transact(self, p, sends: list, parts: list[int], seen: dict[str, Any]) -> None:
        from confluent_kafka import TopicPartition
        c = self.consumer
        reads: list[list] = []
        seen["reads"] = reads
        p.begin_transaction()
        for m in c.consume(num_messages=self.rng.randint(1, 20), timeout=0.3):
            if not m.error():
                reads.append([pkey(m.partition()), m.offset(), int(m.value())])
        self.write(p, sends, parts)
        pos = [tp for tp in c.position([TopicPartition(TXN_TOPIC, q)
                                         for q in range(self.partitions)])
               if tp.offset >= 0]
        if pos:
            _bounded(lambda: p.send_offsets_to_transaction(pos, self.group_metadata,
                                                           TXN_TIMEOUT_MS / 1000),
                     TXN_TIMEOUT_MS / 1000 + 5)

    def after_abort(self) -> None:
        self.open_consumer()


def _txn_consumer_config(bootstrap: str, pid: Any) -> dict[str, Any]:
    return {**CLIENT_SECURITY, "bootstrap.servers": bootstrap,
            "group.id": f"jepsen-txn-reader-{pid}", "isolation.level": "read_committed",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False, "fetch.wait.max.ms": 100, "socket.timeout.ms": 5000,
            "reconnect.backoff.max.ms": 1000, "topic.metadata.refresh.interval.ms": 2000}


class TxnReader(Worker):
    def __init__(self, name, rec, stop, seed, bootstrap: str, partitions: int):
        super().__init__(name, rec, stop, seed)
        self.bootstrap, self.partitions = bootstrap, partitions
        self.consumer = None

    def open(self) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
        self.rec.invoke(self.pid, "txn-assign", {"partitions": [pkey(p) for p in range(self.partitions)]})
        self.consumer = Consumer(_txn_consumer_config(self.bootstrap, self.pid), logger=CLIENT_LOG)
        self.consumer.assign([TopicPartition(TXN_TOPIC, p, OFFSET_BEGINNING)
                              for p in range(self.partitions)])
        self.rec.complete(self.pid, "txn-assign", "ok", {})

    def close(self) -> None:
        if self.consumer is not None:
            c, self.consumer = self.consumer, None
            c.close()

    def step(self) -> None:
        self.rec.invoke(self.pid, "txn-poll")
        try:
            msgs = self.consumer.consume(num_messages=500, timeout=0.5)
        except Exception as e:  # noqa: BLE001
            self.rec.complete(self.pid, "txn-poll", "info", {"error": repr(e)})
            self.close()
            self.new_process()
            self.open()
            return
        recs = [[pkey(m.partition()), m.offset(), int(m.value())] for m in msgs if not m.error()]
        self.rec.complete(self.pid, "txn-poll", "ok", {"records": recs})


def txn_drain(rec: Recorder, bootstrap: str, partitions: int, timeout_s: float = 90) -> dict[str, Any]:
    """Final read_committed read: every partition until the consumer's position reaches the
    high watermark (which needs every transaction decided, a hanging one aborted by the
    coordinator's timeout: the last stable offset at the end). Records `txn-poll`s and a `txn-drain` op (ok only if every partition was read)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    pid = f"final-txn-{next_pid()}"
    c = Consumer(_txn_consumer_config(bootstrap, pid), logger=CLIENT_LOG)
    # The high watermark, asked read_uncommitted: a read_committed consumer's watermark query
    # answers the last stable offset, which stops below a transaction still open (one whose
    # producer was abandoned stays open until the coordinator's timeout abort) and would end
    # the drain with committed transactions above it unread.
    w = Consumer({**_txn_consumer_config(bootstrap, pid), "isolation.level": "read_uncommitted"},
                 logger=CLIENT_LOG)
    try:
        deadline = time.monotonic() + timeout_s
        hw: dict[int, int] = {}
        try:
            for p in range(partitions):
                while True:
                    try:
                        hw[p] = w.get_watermark_offsets(TopicPartition(TXN_TOPIC, p),
                                                        timeout=5)[1]
                        break
                    except Exception:  # noqa: BLE001
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
        finally:
            w.close()
        rec.invoke(pid, "txn-assign", {"partitions": [pkey(p) for p in range(partitions)]})
        tps = [TopicPartition(TXN_TOPIC, p, OFFSET_BEGINNING) for p in range(partitions)]
        c.assign(tps)
        rec.complete(pid, "txn-assign", "ok", {})
        pos = {p: 0 for p in range(partitions)}
        while any(pos[p] < hw[p] for p in range(partitions)) and time.monotonic() < deadline:
            rec.invoke(pid, "txn-poll")
            msgs = c.consume(num_messages=1000, timeout=1)
            recs = [[pkey(m.partition()), m.offset(), int(m.value())] for m in msgs if not m.error()]
            rec.complete(pid, "txn-poll", "ok", {"records": recs})
            for tp in c.position([TopicPartition(TXN_TOPIC, p) for p in range(partitions)]):
                if tp.offset >= 0:
                    pos[tp.partition] = tp.offset
        complete = all(pos[p] >= hw[p] for p in range(partitions))
        rec.invoke(pid, "txn-drain")
        rec.complete(pid, "txn-drain", "ok" if complete else "info",
                     {"high": {pkey(p): h for p, h in hw.items()},
                      "read_to": {pkey(p): pos[p] for p in pos}})
        return {"complete": complete, "high": hw, "read_to": pos}
    finally:
        c.close()


# ----------------------------------------------------------------------------- zookeeper ----

REGISTER = "/jepsen/register"
SEQ_PREFIX = "/jepsen/seq/n-"


def zk_setup(rec: Recorder, hosts: str, timeout_s: float = 30) -> None:
    from kazoo.client import KazooClient
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=timeout_s)
    try:
        zk.ensure_path("/jepsen/seq")
        pid = f"zk-setup-{next_pid()}"
        rec.invoke(pid, "reg-create", {"value": 0})
        zk.create(REGISTER, b"0")
        _, stat = zk.get(REGISTER)
        rec.complete(pid, "reg-create", "ok", {"value": 0, "version": stat.version})
    finally:
        zk.stop()
        zk.close()


class ZkWorker(Worker):
    def __init__(self, name, rec, stop, seed, hosts: str, values: Values, sync_reads: bool = True,
                 op_timeout_s: float = 10.0):
        super().__init__(name, rec, stop, seed)
        self.hosts, self.values, self.sync_reads = hosts, values, sync_reads
        self.op_timeout_s = op_timeout_s
        self.zk = None
        self.known_version = 0

    def open(self) -> None:
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry
        self.zk = KazooClient(hosts=self.hosts, timeout=6,
                              connection_retry=KazooRetry(max_tries=-1, max_delay=1))
        deadline = time.monotonic() + 60
        while not self.stop_event.is_set():
            try:
                self.zk.start(timeout=5)
                return
            except Exception:  # noqa: BLE001 - the node may be down or paused
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def close(self) -> None:
        if self.zk is not None:
            zk, self.zk = self.zk, None
            try:
                zk.stop()
                zk.close()
            except Exception:  # noqa: BLE001
                pass

    def _wait_connected(self) -> None:
        deadline = time.monotonic() + 5
        while not self.zk.connected and time.monotonic() < deadline and not self.stop_event.is_set():
            time.sleep(0.05)

    def _indeterminate(self, f: str, value: dict[str, Any], e: BaseException) -> None:
        self.rec.complete(self.pid, f, "info", {**value, "error": f"{type(e).__name__}: {e}"})
        self.new_process()

    def step(self) -> None:
        from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError
        from kazoo.handlers.threading import KazooTimeoutError
        self._wait_connected()
        if not self.zk.connected:
            return  # nothing invoked; avoid recording ops that cannot start
        r = self.rng.random()
        t = self.op_timeout_s
        if r < 0.45:
            self.rec.invoke(self.pid, "reg-read")
            try:
                if self.sync_reads:
                    self.zk.sync_async(REGISTER).get(timeout=t)
                data, stat = self.zk.get_async(REGISTER).get(timeout=t)
            except (NoNodeError,) as e:
                self.rec.complete(self.pid, "reg-read", "fail", {"error": repr(e)})
                return
            except (Exception, KazooTimeoutError) as e:  # noqa: BLE001
                self._indeterminate("reg-read", {}, e)
                return
            self.known_version = stat.version
            self.rec.complete(self.pid, "reg-read", "ok",
                              {"value": int(data), "version": stat.version})
        elif r < 0.85:
            v = self.values.next()
            expected = self.known_version if self.rng.random() < 0.9 else -1
            req = {"value": v, "version": expected}
            self.rec.invoke(self.pid, "reg-write", req)
            try:
                stat = self.zk.set_async(REGISTER, str(v).encode(), version=expected).get(timeout=t)
            except BadVersionError as e:
                self.rec.complete(self.pid, "reg-write", "fail", {**req, "error": repr(e)})
                self.known_version += 1  # refresh lazily: the next read fixes it
                return
            except (Exception, KazooTimeoutError) as e:  # noqa: BLE001
                self._indeterminate("reg-write", req, e)
                return
            self.known_version = stat.version
            self.rec.complete(self.pid, "reg-write", "ok", {**req, "new_version": stat.version})
        else:
            req = {"prefix": SEQ_PREFIX}
            self.rec.invoke(self.pid, "seq-create", req)
            try:
                path = self.zk.create_async(SEQ_PREFIX, b"", sequence=True).get(timeout=t)
            except NodeExistsError as e:
                self.rec.complete(self.pid, "seq-create", "fail", {**req, "error": repr(e)})
                return
            except (Exception, KazooTimeoutError) as e:  # noqa: BLE001
                self._indeterminate("seq-create", req, e)
                return
            self.rec.complete(self.pid, "seq-create", "ok", {**req, "path": path})

"""A producer run inside an isolated node's network namespace by test_netsplit.py (the test's
own clients are on the majority side and cannot reach that node):

    ip netns exec <ns> python netsplit_client.py <bootstrap> <topic> <seconds>

Sends one acks=all record (`iso-<n>`, partition 0, no retries) every 100 ms for <seconds>,
flushes, and prints {"sent": n, "acked": [[partition, offset, value]], "errors": [code, ...]}
as JSON on stdout."""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Producer


def main() -> None:
    bootstrap, topic, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                  "retries": 0, "linger.ms": 0, "request.timeout.ms": 4000,
                  "message.timeout.ms": 6000, "socket.connection.setup.timeout.ms": 3000,
                  "log_level": 0})
    acked, errors = [], []

    def report(err, msg):
        if err is None:
            acked.append([msg.partition(), msg.offset(), msg.value().decode()])
        else:
            errors.append(err.code())

    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            p.produce(topic, value=f"iso-{sent}".encode(), partition=0, on_delivery=report)
            sent += 1
        except BufferError:
            pass
        p.poll(0.1)
    left = p.flush(20)
    print(json.dumps({"sent": sent, "acked": acked, "errors": errors, "undelivered": left}))


if __name__ == "__main__":
    main()

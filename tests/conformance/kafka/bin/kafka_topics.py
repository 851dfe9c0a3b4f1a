"""The part of kafka-topics.sh that librdkafka's tests use (see kafka-topics.sh)."""

import argparse
import sys

from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def main() -> int:
    ap = argparse.ArgumentParser(prog="kafka-topics.sh")
    ap.add_argument("--bootstrap-server", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--create", action="store_true")
    ap.add_argument("--alter", action="store_true")
    ap.add_argument("--delete", action="store_true")
    ap.add_argument("--partitions", type=int)
    ap.add_argument("--replication-factor", type=int)
    ap.add_argument("--config", action="append", default=[])
    a = ap.parse_args()
    admin = AdminClient({"bootstrap.servers": a.bootstrap_server})
    if a.create:
        configs = dict(c.split("=", 1) for c in a.config)
        fut = admin.create_topics([NewTopic(a.topic, a.partitions or -1, a.replication_factor or -1,
                                            config=configs)], operation_timeout=30)[a.topic]
        what = "Created"
    elif a.alter:
        fut = admin.create_partitions([NewPartitions(a.topic, a.partitions)],
                                      operation_timeout=30)[a.topic]
        what = "Altered"
    elif a.delete:
        fut = admin.delete_topics([a.topic], operation_timeout=30)[a.topic]
        what = "Deleted"
    else:
        ap.error("one of --create, --alter, --delete")
    try:
        fut.result(timeout=60)
    except Exception as e:  # noqa: BLE001 - reported as the tool reports errors
        print(f"Error while executing topic command : {e}", file=sys.stderr)
        return 1
    print(f"{what} topic {a.topic}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

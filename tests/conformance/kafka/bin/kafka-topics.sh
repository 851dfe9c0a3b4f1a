#!/usr/bin/env bash
# Stand-in for Apache Kafka's bin/kafka-topics.sh (not installable here) for the librdkafka tests
# that shell out to it (test_kafka_topics: 0045, 0052, 0077): --bootstrap-server with --create
# (--partitions, --replication-factor, --config k=v), --alter --partitions, --delete, through
# the Kafka Admin API (confluent-kafka). tests/conformance/run.py sets KAFKA_PATH to its parent.
exec "${RAFTKA_CONFORMANCE_PYTHON:-python3}" "$(dirname "$0")/kafka_topics.py" "$@"

// A probe of Kafka's Java consumer (kafka-clients 4.3.0) against raftka's fetch sessions
// (KIP-227; Fetch v17, topics by id), run by tests/python/test_fetch_sessions.py as
//   java -cp ... FetchSessionProbe <bootstrap> <topic> <partitions> <expected> <timeout-ms>
// It assigns every partition, reads from the beginning until it has `expected` records or the
// timeout passes, and prints one line: `records=N distinct=D polls=P`. The records' values are
// the numbers 0..expected-1 sent by the test while the probe reads, so incremental fetches see
// partitions gain data one by one. Any exception exits non-zero with its stack trace.

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class FetchSessionProbe {
    public static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        int expected = Integer.parseInt(args[3]);
        long timeoutMs = Long.parseLong(args[4]);
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("key.deserializer", StringDeserializer.class.getName());
        p.put("value.deserializer", StringDeserializer.class.getName());
        p.put("enable.auto.commit", "false");
        p.put("auto.offset.reset", "earliest");
        p.put("fetch.max.wait.ms", "100");
        // Small answers: many incremental fetches, each with a few partitions' news.
        p.put("max.partition.fetch.bytes", "4096");
        int records = 0;
        int polls = 0;
        Set<String> distinct = new HashSet<>();
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + timeoutMs;
            while (distinct.size() < expected && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    records++;
                    distinct.add(r.value());
                }
                polls++;
            }
        }
        System.out.println("records=" + records + " distinct=" + distinct.size() + " polls=" + polls);
    }
}

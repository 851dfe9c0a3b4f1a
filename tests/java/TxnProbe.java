// A probe of Kafka's own Java client (kafka-clients 4.3.0) against raftka's transactions
// (issue 17), run by tests/python/test_java_clients.py as
//   java -cp '<jars>/*' tests/java/TxnProbe.java <bootstrap> <topic> <group> <transactional.id>
// It commits, aborts, commits offsets in a transaction, fences a zombie, and reads back with
// read_committed and read_uncommitted consumers; it prints one line of key=value results that
// the test checks, among them the transactional id's producer epoch at the end as the Admin
// client's describeTransactions reports it (transaction version 2 bumps it on every commit
// and abort, version 1 only on initTransactions and fencing). Any unexpected exception exits
// non-zero with its stack trace.

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnProbe {
    static KafkaProducer<String, String> producer(String bootstrap, String tid) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("transactional.id", tid);
        p.put("key.serializer", StringSerializer.class.getName());
        p.put("value.serializer", StringSerializer.class.getName());
        p.put("max.block.ms", "30000");
        p.put("delivery.timeout.ms", "30000");
        p.put("request.timeout.ms", "10000");
        return new KafkaProducer<>(p);
    }

    static List<String> readAll(String bootstrap, String topic, String isolation, int expectAtLeast) {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", "probe-reader-" + isolation + "-" + System.nanoTime());
        c.put("isolation.level", isolation);
        c.put("auto.offset.reset", "earliest");
        c.put("enable.auto.commit", "false");
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long end = System.currentTimeMillis() + 20000;
            long quietUntil = Long.MAX_VALUE;
            while (System.currentTimeMillis() < Math.min(end, quietUntil)) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    out.add(r.value());
                }
                if (out.size() >= expectAtLeast && quietUntil == Long.MAX_VALUE) {
                    quietUntil = System.currentTimeMillis() + 1500; // anything extra shows up
                }
            }
        }
        return out;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], tid = args[3];
        StringBuilder result = new StringBuilder();
        KafkaProducer<String, String> p = producer(bootstrap, tid);
        p.initTransactions();
        // Committed: c0..c9.
        p.beginTransaction();
        for (int i = 0; i < 10; i++) {
            p.send(new ProducerRecord<>(topic, 0, "k" + i, "c" + i));
        }
        p.commitTransaction();
        // Aborted: a0..a4.
        p.beginTransaction();
        for (int i = 0; i < 5; i++) {
            p.send(new ProducerRecord<>(topic, 0, "k" + i, "a" + i));
        }
        p.flush();
        p.abortTransaction();
        // Committed with the group's offsets (KIP-447's group metadata form): o0..o2.
        p.beginTransaction();
        for (int i = 0; i < 3; i++) {
            p.send(new ProducerRecord<>(topic, 0, "k" + i, "o" + i));
        }
        p.sendOffsetsToTransaction(
            Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(42L, "probe")),
            new org.apache.kafka.clients.consumer.ConsumerGroupMetadata(group));
        p.commitTransaction();
        // A zombie: a second producer with the same id fences the first.
        p.beginTransaction();
        p.send(new ProducerRecord<>(topic, 0, "z", "zombie"));
        KafkaProducer<String, String> fresh = producer(bootstrap, tid);
        fresh.initTransactions();
        String fenced = "none";
        try {
            p.commitTransaction();
        } catch (ProducerFencedException | InvalidProducerEpochException e) {
            fenced = e.getClass().getSimpleName();
        } catch (org.apache.kafka.common.KafkaException e) {
            fenced = e.getClass().getSimpleName() + ":" + e.getCause();
        }
        p.close(Duration.ofSeconds(5));
        fresh.beginTransaction();
        fresh.send(new ProducerRecord<>(topic, 0, "f", "f0"));
        fresh.commitTransaction();
        fresh.close(Duration.ofSeconds(5));
        result.append("fenced=").append(fenced);
        List<String> committed = readAll(bootstrap, topic, "read_committed", 14);
        List<String> all = readAll(bootstrap, topic, "read_uncommitted", 20);
        Properties a = new Properties();
        a.put("bootstrap.servers", bootstrap);
        try (org.apache.kafka.clients.admin.Admin admin = org.apache.kafka.clients.admin.Admin.create(a)) {
            org.apache.kafka.clients.admin.TransactionDescription d =
                admin.describeTransactions(List.of(tid)).description(tid).get();
            result.append(" epoch=").append(d.producerEpoch());
            result.append(" state=").append(d.state());
        }
        result.append(" read_committed=").append(String.join(",", committed));
        result.append(" read_uncommitted=").append(String.join(",", all));
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("group.id", group);
        c.put("key.deserializer", StringDeserializer.class.getName());
        c.put("value.deserializer", StringDeserializer.class.getName());
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            OffsetAndMetadata om = consumer.committed(java.util.Set.of(new TopicPartition(topic, 0)))
                .get(new TopicPartition(topic, 0));
            result.append(" group_offset=").append(om == null ? "none" : om.offset() + "/" + om.metadata());
        }
        System.out.println("RESULT " + result);
    }
}

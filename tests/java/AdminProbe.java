// A probe of Kafka's own Java Admin client (kafka-clients 4.3.0) for the operations APIs
// (issue 21), run by tests/python/test_reassignment.py and test_ops.py as
//   java -cp '<jars>/*' tests/java/AdminProbe.java <bootstrap> alter <topic> <p>=<b1,b2,..|cancel>...
//   java -cp '<jars>/*' tests/java/AdminProbe.java <bootstrap> list
//   java -cp '<jars>/*' tests/java/AdminProbe.java <bootstrap> logdirs <broker id>
//   java -cp '<jars>/*' tests/java/AdminProbe.java <bootstrap> quorum
//   java -cp '<jars>/*' tests/java/AdminProbe.java <bootstrap> topics <page size> <t1,t2,..>
// `alter` sends one AlterPartitionReassignments and prints `<p> ok` or `<p> <ExceptionClass>`
// per partition; `list` prints `<topic> <p> replicas=.. adding=.. removing=..` per ongoing
// reassignment; `logdirs` prints `<topic> <p> <size>` per replica the broker reports;
// `quorum` (DescribeQuorum) prints `leader=<id> epoch=<n> hw=<n>` then `voter|observer <id>
// leo=<n> fetch=<ms> caughtup=<ms>` lines; `topics` (DescribeTopicPartitions, paginated by
// <page size>) prints `<topic> <p> leader=<id> replicas=.. isr=..` per partition.
//   java -cp '<jars>/*' tests/java/AdminProbe.java <bootstrap> quotas-alter <entity> <key>=<value|remove>...
//   java -cp '<jars>/*' tests/java/AdminProbe.java <bootstrap> quotas-describe [<type>=<name|default|any>...]
// `quotas-alter` (AlterClientQuotas) takes an entity as `user=alice,client-id=<default>` and
// prints `ok` or the exception class; `quotas-describe` (DescribeClientQuotas, not strict)
// prints `<entity> <key>=<value>...` per entity, entities as `user=alice,client-id=<default>`
// in name order.
// Unexpected failures exit non-zero with the stack trace.

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.DescribeTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.PartitionReassignment;
import org.apache.kafka.clients.admin.QuorumInfo;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.quota.ClientQuotaAlteration;
import org.apache.kafka.common.quota.ClientQuotaEntity;
import org.apache.kafka.common.quota.ClientQuotaFilter;
import org.apache.kafka.common.quota.ClientQuotaFilterComponent;

public class AdminProbe {
    static String ids(List<Integer> l) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < l.size(); i++) {
            if (i > 0) b.append(',');
            b.append(l.get(i));
        }
        return b.toString();
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", args[0]);
        p.put("request.timeout.ms", "20000");
        p.put("default.api.timeout.ms", "30000");
        try (Admin admin = Admin.create(p)) {
            switch (args[1]) {
                case "alter": {
                    String topic = args[2];
                    Map<TopicPartition, Optional<NewPartitionReassignment>> req = new LinkedHashMap<>();
                    for (int i = 3; i < args.length; i++) {
                        String[] kv = args[i].split("=", 2);
                        TopicPartition tp = new TopicPartition(topic, Integer.parseInt(kv[0]));
                        if (kv[1].equals("cancel")) {
                            req.put(tp, Optional.empty());
                        } else {
                            List<Integer> rs = new ArrayList<>();
                            for (String s : kv[1].split(",")) rs.add(Integer.parseInt(s));
                            req.put(tp, Optional.of(new NewPartitionReassignment(rs)));
                        }
                    }
                    Map<TopicPartition, KafkaFuture<Void>> out = admin.alterPartitionReassignments(req).values();
                    for (Map.Entry<TopicPartition, KafkaFuture<Void>> e : out.entrySet()) {
                        String r;
                        try {
                            e.getValue().get(30, TimeUnit.SECONDS);
                            r = "ok";
                        } catch (ExecutionException ex) {
                            r = ex.getCause().getClass().getSimpleName();
                        }
                        System.out.println(e.getKey().partition() + " " + r);
                    }
                    break;
                }
                case "list": {
                    Map<TopicPartition, PartitionReassignment> got =
                        admin.listPartitionReassignments().reassignments().get(30, TimeUnit.SECONDS);
                    for (Map.Entry<TopicPartition, PartitionReassignment> e : got.entrySet()) {
                        PartitionReassignment r = e.getValue();
                        System.out.println(e.getKey().topic() + " " + e.getKey().partition()
                            + " replicas=" + ids(r.replicas()) + " adding=" + ids(r.addingReplicas())
                            + " removing=" + ids(r.removingReplicas()));
                    }
                    break;
                }
                case "logdirs": {
                    int broker = Integer.parseInt(args[2]);
                    Map<String, LogDirDescription> dirs = admin.describeLogDirs(List.of(broker))
                        .descriptions().get(broker).get(30, TimeUnit.SECONDS);
                    for (LogDirDescription d : dirs.values()) {
                        for (Map.Entry<TopicPartition, ReplicaInfo> e : d.replicaInfos().entrySet()) {
                            System.out.println(e.getKey().topic() + " " + e.getKey().partition()
                                + " " + e.getValue().size());
                        }
                    }
                    break;
                }
                case "quorum": {
                    QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get(30, TimeUnit.SECONDS);
                    System.out.println("leader=" + q.leaderId() + " epoch=" + q.leaderEpoch()
                        + " hw=" + q.highWatermark());
                    for (QuorumInfo.ReplicaState r : q.voters()) {
                        System.out.println("voter " + r.replicaId() + " leo=" + r.logEndOffset()
                            + " fetch=" + r.lastFetchTimestamp().orElse(-1L)
                            + " caughtup=" + r.lastCaughtUpTimestamp().orElse(-1L));
                    }
                    for (QuorumInfo.ReplicaState r : q.observers()) {
                        System.out.println("observer " + r.replicaId() + " leo=" + r.logEndOffset()
                            + " fetch=" + r.lastFetchTimestamp().orElse(-1L)
                            + " caughtup=" + r.lastCaughtUpTimestamp().orElse(-1L));
                    }
                    break;
                }
                case "topics": {
                    int page = Integer.parseInt(args[2]);
                    List<String> names = List.of(args[3].split(","));
                    Map<String, TopicDescription> got = admin.describeTopics(names,
                            new DescribeTopicsOptions().partitionSizeLimitPerResponse(page))
                        .allTopicNames().get(30, TimeUnit.SECONDS);
                    for (String n : names) {
                        for (TopicPartitionInfo pi : got.get(n).partitions()) {
                            List<Integer> rs = new ArrayList<>();
                            for (org.apache.kafka.common.Node x : pi.replicas()) rs.add(x.id());
                            List<Integer> isr = new ArrayList<>();
                            for (org.apache.kafka.common.Node x : pi.isr()) isr.add(x.id());
                            System.out.println(n + " " + pi.partition() + " leader="
                                + (pi.leader() == null ? -1 : pi.leader().id())
                                + " replicas=" + ids(rs) + " isr=" + ids(isr));
                        }
                    }
                    break;
                }
                case "quotas-alter": {
                    Map<String, String> entity = new LinkedHashMap<>();
                    for (String part : args[2].split(",")) {
                        String[] kv = part.split("=", 2);
                        entity.put(kv[0], kv[1].equals("<default>") ? null : kv[1]);
                    }
                    List<ClientQuotaAlteration.Op> ops = new ArrayList<>();
                    for (int i = 3; i < args.length; i++) {
                        String[] kv = args[i].split("=", 2);
                        ops.add(new ClientQuotaAlteration.Op(kv[0],
                            kv[1].equals("remove") ? null : Double.valueOf(kv[1])));
                    }
                    String r;
                    try {
                        admin.alterClientQuotas(List.of(new ClientQuotaAlteration(
                            new ClientQuotaEntity(entity), ops))).all().get(30, TimeUnit.SECONDS);
                        r = "ok";
                    } catch (ExecutionException ex) {
                        r = ex.getCause().getClass().getSimpleName();
                    }
                    System.out.println(r);
                    break;
                }
                case "quotas-describe": {
                    List<ClientQuotaFilterComponent> cs = new ArrayList<>();
                    for (int i = 2; i < args.length; i++) {
                        String[] kv = args[i].split("=", 2);
                        if (kv[1].equals("default")) cs.add(ClientQuotaFilterComponent.ofDefaultEntity(kv[0]));
                        else if (kv[1].equals("any")) cs.add(ClientQuotaFilterComponent.ofEntityType(kv[0]));
                        else cs.add(ClientQuotaFilterComponent.ofEntity(kv[0], kv[1]));
                    }
                    Map<ClientQuotaEntity, Map<String, Double>> got = admin.describeClientQuotas(
                        ClientQuotaFilter.contains(cs)).entities().get(30, TimeUnit.SECONDS);
                    List<String> lines = new ArrayList<>();
                    for (Map.Entry<ClientQuotaEntity, Map<String, Double>> e : got.entrySet()) {
                        StringBuilder b = new StringBuilder();
                        for (String t : List.of("user", "client-id")) {
                            if (!e.getKey().entries().containsKey(t)) continue;
                            if (b.length() > 0) b.append(',');
                            String n = e.getKey().entries().get(t);
                            b.append(t).append('=').append(n == null ? "<default>" : n);
                        }
                        for (Map.Entry<String, Double> v : new java.util.TreeMap<>(e.getValue()).entrySet()) {
                            b.append(' ').append(v.getKey()).append('=').append(v.getValue());
                        }
                        lines.add(b.toString());
                    }
                    java.util.Collections.sort(lines);
                    for (String l : lines) System.out.println(l);
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown command " + args[1]);
            }
        }
    }
}

// kafkago_probe drives a raftka cluster with kafka-go 0.2 (Debian's
// golang-github-segmentio-kafka-go-dev): CreateTopics v0, a Writer (Produce v2 with magic-1
// message sets), a group Reader (Fetch v2, kafka-go's own group client) that commits, and a
// second group Reader that must resume after the committed offsets. Prints one JSON object.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "kafkago_probe: %s: %v\n", what, err)
	os.Exit(1)
}

func read(brokers []string, topic, group string, want int, timeout time.Duration) map[string]bool {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: brokers, GroupID: group, Topic: topic,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond,
	})
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(seen) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fail("read", err)
		}
		seen[string(m.Value)] = true
	}
	if err := r.Close(); err != nil {
		fail("close reader", err)
	}
	return seen
}

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers, comma separated")
	topic := flag.String("topic", "", "topic")
	group := flag.String("group", "", "consumer group")
	n := flag.Int("n", 40, "messages per round")
	rf := flag.Int("rf", 1, "replication factor")
	flag.Parse()
	addrs := strings.Split(*brokers, ",")
	out := map[string]interface{}{}

	conn, err := kafka.Dial("tcp", addrs[0])
	if err != nil {
		fail("dial", err)
	}
	if err := conn.CreateTopics(kafka.TopicConfig{Topic: *topic, NumPartitions: 2, ReplicationFactor: *rf}); err != nil {
		fail("create topics", err)
	}
	var parts []kafka.Partition
	for i := 0; i < 50; i++ {
		if parts, err = conn.ReadPartitions(*topic); err == nil && len(parts) == 2 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	conn.Close()
	out["partitions"] = len(parts)

	w := kafka.NewWriter(kafka.WriterConfig{Brokers: addrs, Topic: *topic, Balancer: &kafka.RoundRobin{}, BatchTimeout: 10 * time.Millisecond})
	write := func(from int) {
		var msgs []kafka.Message
		for i := from; i < from+*n; i++ {
			msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			fail("write", err)
		}
	}
	write(0)
	first := read(addrs, *topic, *group, *n, 60*time.Second)
	out["first_round"] = len(first)
	write(*n)
	w.Close()
	// The same group again: it starts at the committed offsets, so it sees only the new ones.
	second := read(addrs, *topic, *group, *n, 60*time.Second)
	out["second_round"] = len(second)
	old := 0
	for v := range second {
		var i int
		fmt.Sscanf(v, "v%d", &i)
		if i < *n {
			old++
		}
	}
	out["second_round_repeats"] = old
	json.NewEncoder(os.Stdout).Encode(out)
}

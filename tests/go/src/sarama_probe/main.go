// sarama_probe drives a raftka cluster with sarama 1.22 (Debian's golang-github-shopify-sarama-dev),
// as a Go service of the Kafka 2.2 era would: cluster admin (create / list / describe configs),
// a synchronous producer, a consumer (a consumer group from V0_10_2_0, else partition consumers
// with an offset manager) that commits, and a fresh client reading the committed offsets and the
// end offsets back. It prints one JSON object; tests/python/test_old_clients.py checks it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "sarama_probe: %s: %v\n", what, err)
	os.Exit(1)
}

type handler struct {
	mu     sync.Mutex
	seen   map[string]bool
	want   int
	done   chan struct{}
	closed bool
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.seen[string(m.Value)] = true
		s.MarkMessage(m, "")
		if len(h.seen) >= h.want && !h.closed {
			h.closed = true
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

func main() {
	brokers := flag.String("brokers", "", "bootstrap servers, comma separated")
	version := flag.String("version", "default", "sarama Config.Version (default: sarama's, 0.8.2)")
	topic := flag.String("topic", "", "topic")
	group := flag.String("group", "", "consumer group")
	n := flag.Int("n", 50, "messages")
	partitions := flag.Int("partitions", 3, "partitions when creating the topic")
	rf := flag.Int("rf", 1, "replication factor when creating the topic")
	codec := flag.String("compression", "none", "none|gzip|snappy|lz4")
	produce := flag.Bool("produce", true, "produce n messages (else consume n already there)")
	flag.Parse()
	addrs := strings.Split(*brokers, ",")

	cfg := sarama.NewConfig()
	cfg.ClientID = "raftka-sarama-probe"
	if *version != "default" {
		v, err := sarama.ParseKafkaVersion(*version)
		if err != nil {
			fail("version", err)
		}
		cfg.Version = v
	}
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	switch *codec {
	case "gzip":
		cfg.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		cfg.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		cfg.Producer.Compression = sarama.CompressionLZ4
	}
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 500 * time.Millisecond
	out := map[string]interface{}{"version": cfg.Version.String()}

	if cfg.Version.IsAtLeast(sarama.V0_10_1_0) && *produce {
		admin, err := sarama.NewClusterAdmin(addrs, cfg)
		if err != nil {
			fail("cluster admin", err)
		}
		detail := &sarama.TopicDetail{
			NumPartitions:     int32(*partitions),
			ReplicationFactor: int16(*rf),
			ConfigEntries:     map[string]*string{"retention.ms": strPtr("3600000")},
		}
		if err := admin.CreateTopic(*topic, detail, false); err != nil {
			fail("create topic", err)
		}
		var topics map[string]sarama.TopicDetail
		for i := 0; i < 50; i++ {
			if topics, err = admin.ListTopics(); err != nil {
				fail("list topics", err)
			}
			if _, ok := topics[*topic]; ok {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		out["listed_partitions"] = topics[*topic].NumPartitions
		out["listed_rf"] = topics[*topic].ReplicationFactor
		entries, err := admin.DescribeConfig(sarama.ConfigResource{
			Type: sarama.TopicResource, Name: *topic, ConfigNames: []string{"retention.ms"},
		})
		if err != nil {
			fail("describe config", err)
		}
		for _, e := range entries {
			if e.Name == "retention.ms" {
				out["retention_ms"] = e.Value
				out["retention_ms_default"] = e.Default
			}
		}
		admin.Close()
	}

	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		fail("client", err)
	}
	parts, err := client.Partitions(*topic)
	for i := 0; i < 50 && (err != nil || len(parts) == 0); i++ {
		time.Sleep(200 * time.Millisecond)
		client.RefreshMetadata(*topic)
		parts, err = client.Partitions(*topic)
	}
	if err != nil {
		fail("partitions", err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		fail("producer", err)
	}
	for i := 0; *produce && i < *n; i++ {
		_, _, err := producer.SendMessage(&sarama.ProducerMessage{
			Topic: *topic, Key: sarama.StringEncoder(fmt.Sprintf("k%d", i)),
			Value: sarama.StringEncoder(fmt.Sprintf("v%d", i)),
		})
		if err != nil {
			fail("send", err)
		}
	}
	producer.Close()

	seen := map[string]bool{}
	if cfg.Version.IsAtLeast(sarama.V0_10_2_0) {
		cg, err := sarama.NewConsumerGroup(addrs, *group, cfg)
		if err != nil {
			fail("consumer group", err)
		}
		h := &handler{seen: seen, want: *n, done: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{*topic}, h); err != nil && ctx.Err() == nil {
					fmt.Fprintf(os.Stderr, "consume: %v\n", err)
					time.Sleep(500 * time.Millisecond)
				}
			}
		}()
		select {
		case <-h.done:
		case <-time.After(90 * time.Second):
			fail("consume", fmt.Errorf("only %d of %d messages", len(seen), *n))
		}
		cancel()
		if err := cg.Close(); err != nil {
			fail("close group", err)
		}
	} else {
		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			fail("consumer", err)
		}
		om, err := sarama.NewOffsetManagerFromClient(*group, client)
		if err != nil {
			fail("offset manager", err)
		}
		for _, p := range parts {
			hw, err := client.GetOffset(*topic, p, sarama.OffsetNewest)
			if err != nil {
				fail("end offset", err)
			}
			pom, err := om.ManagePartition(*topic, p)
			if err != nil {
				fail("manage partition", err)
			}
			pc, err := consumer.ConsumePartition(*topic, p, sarama.OffsetOldest)
			if err != nil {
				fail("consume partition", err)
			}
			for off := int64(0); off < hw; {
				select {
				case m := <-pc.Messages():
					seen[string(m.Value)] = true
					off = m.Offset + 1
					pom.MarkOffset(off, "")
				case e := <-pc.Errors():
					fail("consume", e)
				case <-time.After(30 * time.Second):
					fail("consume", fmt.Errorf("partition %d stuck below %d", p, hw))
				}
			}
			pc.Close()
			pom.Close()
		}
		if err := om.Close(); err != nil {
			fail("commit", err)
		}
		consumer.Close()
	}
	out["consumed"] = len(seen)
	client.Close()

	// A fresh client reads back what was committed and where each partition ends.
	check, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		fail("client", err)
	}
	om, err := sarama.NewOffsetManagerFromClient(*group, check)
	if err != nil {
		fail("offset manager", err)
	}
	committed, ends := map[string]int64{}, map[string]int64{}
	var total int64
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		pom, err := om.ManagePartition(*topic, p)
		if err != nil {
			fail("manage partition", err)
		}
		next, _ := pom.NextOffset()
		committed[fmt.Sprint(p)] = next
		pom.Close()
		hw, err := check.GetOffset(*topic, p, sarama.OffsetNewest)
		if err != nil {
			fail("end offset", err)
		}
		ends[fmt.Sprint(p)] = hw
		total += hw
	}
	om.Close()
	check.Close()
	out["committed"] = committed
	out["end_offsets"] = ends
	out["total_end"] = total
	json.NewEncoder(os.Stdout).Encode(out)
}

func strPtr(s string) *string { return &s }

package redisstore

import (
	"context"
	"flag"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/serving/store"
)

var scanEvents = flag.Int("redisstore.scanevents", 300000, "events BenchmarkScan loads (3000000 for the start-up figure)")

// batchOf returns n events of distinct IDs starting at first, over 10,000
// users (so a batch of 1000 has 1000 users), shaped like live traffic (an
// ID the size of a UUID, a session).
func batchOf(first, n int) []store.Event {
	out := make([]store.Event, n)
	for i := range out {
		k := first + i
		out[i] = store.Event{
			ID: fmt.Sprintf("%036d", k), UserID: fmt.Sprintf("user-%d", k%10000), ItemID: fmt.Sprintf("item-%d", k%50000),
			Type: "view", Value: 1, Time: time.Unix(1700000000+int64(k), 0).UTC(), SessionID: fmt.Sprintf("s%d", k%30000),
		}
	}
	return out
}

// BenchmarkAppend appends batches of 1000 new events, with IDs, to a Redis
// with appendfsync always, from one client and from four at once (four
// replicas or server goroutines), with every event of a batch from another
// user (one change entry per event: the costly case) or the batch from 10
// users. Redis shares the machine's cores.
func BenchmarkAppend(b *testing.B) {
	const batch = 1000
	for _, users := range []int{1000, 10} {
		for _, clients := range []int{1, 4} {
			b.Run(fmt.Sprintf("users=%d/clients=%d", users, clients), func(b *testing.B) {
				srv := redistest.Start(b)
				s := open(b, srv, Options{})
				ctx := context.Background()
				var next atomic.Int64
				b.SetParallelism(clients)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						first := int(next.Add(1)-1) * batch
						events := batchOf(first, batch)
						for i := range events {
							events[i].UserID = fmt.Sprintf("user-%d", (first/batch*users+i%users)%10000)
						}
						stored, err := s.Append(ctx, events)
						if err != nil || len(stored) != batch {
							b.Errorf("Append = %d stored, %v", len(stored), err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkScan reads a store of -redisstore.scanevents events (10,000
// users) and 50,000 items through Scan, as a replica does at start-up.
func BenchmarkScan(b *testing.B) {
	srv := redistest.Start(b, redistest.Args("--appendfsync", "no"))
	s := open(b, srv, Options{})
	ctx := context.Background()
	n := *scanEvents
	for first := 0; first < n; first += 5000 {
		if _, err := s.Append(ctx, batchOf(first, min(5000, n-first))); err != nil {
			b.Fatal(err)
		}
	}
	items := make([]dataset.Item, 50000)
	for i := range items {
		items[i] = dataset.Item{ID: fmt.Sprintf("item-%d", i), Title: "title", Category: "c", Price: 1}
	}
	if err := s.UpsertItems(ctx, items); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		var events int
		start := time.Now()
		err := s.Scan(ctx, func(dataset.Item) error { return nil }, func(store.Event) error { events++; return nil })
		if err != nil || events != n {
			b.Fatalf("Scan = %d events, %v; want %d", events, err, n)
		}
		b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
	}
}

// BenchmarkAppendImpressions measures recording answers: batches of 100
// ten-item impressions of 100 users (one script each), to a Redis with
// appendfsync always, as the tests run it. Each iteration stamps the batch
// with the current time; the IDs (UUID-sized) are fixed per slot, so the
// allocations reported are the store's, and a slot's set keeps one member
// per iteration until the retention trims it. Redis shares the machine's
// cores.
func BenchmarkAppendImpressions(b *testing.B) {
	srv := redistest.Start(b)
	s := open(b, srv, Options{})
	ctx := context.Background()
	imps := make([]store.Impression, 100)
	for i := range imps {
		items := make([]string, 10)
		for j := range items {
			items[j] = fmt.Sprintf("item-%d", (i*7919+j*104729)%10000)
		}
		imps[i] = store.Impression{
			ID: fmt.Sprintf("%036d", i), Kind: "recommend", UserID: fmt.Sprintf("user-%d", i), SessionID: fmt.Sprintf("sess-%d", i),
			Route: "home", Arm: "ranker-test/b",
			Models: []store.ModelVersion{{Name: "als", Version: "2026-01-01"}, {Name: "ranker", Version: "v7", Canary: true}},
			Items:  items,
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		for i := range imps {
			imps[i].Time = now
		}
		if err := s.AppendImpressions(ctx, imps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(imps))/b.Elapsed().Seconds(), "impressions/s")
}

package pebblestore

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/recserve/recserve/serving/store"
)

// benchEvents returns a batch of n events shaped like tracked traffic:
// 1,000 users, 10,000 items, a session and a small context each. IDs are
// set per iteration.
func benchEvents(n int) []store.Event {
	events := make([]store.Event, n)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range events {
		events[i] = store.Event{
			UserID: fmt.Sprintf("user-%d", i%1000), ItemID: fmt.Sprintf("item-%d", (i*7919)%10000),
			Type: "view", Value: 1, Time: t0.Add(time.Duration(i) * time.Millisecond),
			SessionID: fmt.Sprintf("sess-%d", i%1000), RecommendationID: "rec-0123456789",
			Context: map[string]string{"page": "home", "device": "mobile"},
		}
	}
	return events
}

// BenchmarkAppend measures ingest through Append: one synced batch per
// call, every event with a new ID (so each is looked up and stored). The
// stored= dimension is how many events the store holds before timing
// starts: with 1M, the idempotency lookups reach table files, not just the
// memtable. events/s is the number to hold against the ingest target.
func BenchmarkAppend(b *testing.B) {
	tests := []struct{ batch, stored int }{
		{500, 0}, {1000, 0}, {2000, 0}, {1000, 1_000_000},
	}
	for _, tt := range tests {
		b.Run(fmt.Sprintf("batch=%d/stored=%d", tt.batch, tt.stored), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			events := benchEvents(tt.batch)
			id := make([]byte, 0, 32)
			next := 0
			fill := func() {
				for i := range events {
					id = strconv.AppendInt(append(id[:0], "ev-"...), int64(next), 10)
					events[i].ID = string(id)
					next++
				}
				stored, err := s.Append(b.Context(), events)
				if err != nil || len(stored) != len(events) {
					b.Fatalf("Append() stored %d, %v; want %d, nil", len(stored), err, len(events))
				}
			}
			for next < tt.stored {
				fill()
			}
			before := next
			b.ReportAllocs()
			for b.Loop() {
				fill()
			}
			b.ReportMetric(float64(next-before)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendDuplicates measures a retried batch: every ID is held, so
// nothing is written and the cost is the idempotency lookups.
func BenchmarkAppendDuplicates(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	events := benchEvents(1000)
	for i := range events {
		events[i].ID = "ev-" + strconv.Itoa(i)
	}
	if _, err := s.Append(b.Context(), events); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if stored, err := s.Append(b.Context(), events); err != nil || len(stored) != 0 {
			b.Fatalf("Append(retry) stored %d, %v; want 0, nil", len(stored), err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}

// benchImpressions returns a batch of n impressions shaped like answers:
// ten items, two model versions, 1,000 users. IDs are set per iteration.
func benchImpressions(n int) []store.Impression {
	imps := make([]store.Impression, n)
	for i := range imps {
		items := make([]string, 10)
		for j := range items {
			items[j] = fmt.Sprintf("item-%d", (i*7919+j*104729)%10000)
		}
		imps[i] = store.Impression{
			Kind: "recommend", UserID: fmt.Sprintf("user-%d", i%1000), SessionID: fmt.Sprintf("sess-%d", i%1000),
			Route: "home", Arm: "ranker-test/b",
			Models: []store.ModelVersion{{Name: "als", Version: "2026-01-01"}, {Name: "ranker", Version: "v7", Canary: true}},
			Items:  items,
		}
	}
	return imps
}

// BenchmarkAppendImpressions measures recording answers: batches of 100
// ten-item impressions, committed without sync. Each iteration stamps the
// batch with the current time, so every impression is a new key; the IDs
// (UUID-sized) are fixed per slot, so that allocations reported are the
// store's. impressions/s is the number to hold against the answer rate.
func BenchmarkAppendImpressions(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	imps := benchImpressions(100)
	for i := range imps {
		imps[i].ID = fmt.Sprintf("%036d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		for i := range imps {
			imps[i].Time = now
		}
		if err := s.AppendImpressions(b.Context(), imps); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(imps))/b.Elapsed().Seconds(), "impressions/s")
}

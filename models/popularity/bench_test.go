package popularity_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
)

// BenchmarkRecommend measures Recommend (K=20 with the seen-item filter, as
// the router asks) on a 2,000-item long-tail catalogue of 20 categories, for
// 20-item histories, in both scopes. Both walk the ranked table into a topk
// Collector; category scope walks several categories into one.
func BenchmarkRecommend(b *testing.B) {
	entries, qs := benchFixture()
	for _, scope := range []popularity.Scope{popularity.Global, popularity.Category} {
		// overlay=0 is the trained table alone; overlay=N has learned N
		// distinct items (a third of them new) since the last fold (it folds
		// past 256 on this catalogue).
		for _, overlay := range []int{0, 50, 250} {
			b.Run(fmt.Sprintf("scope=%s/overlay=%d", scope, overlay), func(b *testing.B) {
				m, err := popularity.NewWithOptions(entries, popularity.Options{Scope: scope, HalfLifeDays: 7})
				if err != nil {
					b.Fatal(err)
				}
				m.LearnInteractions(learned(overlay))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					out, err := m.Recommend(b.Context(), qs[i%len(qs)])
					if err != nil || len(out) != 20 {
						b.Fatalf("Recommend = %v, %v", out, err)
					}
					i++
				}
			})
		}
	}
}

// learned returns n events of n distinct items, every third one new, at
// times a minute apart.
func learned(n int) []dataset.Interaction {
	r := rand.New(rand.NewPCG(3, 4))
	in := make([]dataset.Interaction, n)
	perm := r.Perm(benchItems)
	for k := range in {
		id := fmt.Sprintf("i%05d", perm[k%benchItems])
		if k%3 == 2 {
			id = fmt.Sprintf("new%05d", k)
		}
		in[k] = dataset.Interaction{UserID: "u", ItemID: id, Event: dataset.Event(1 + k%3), Value: 1, Timestamp: int64(60 * k)}
	}
	return in
}

// BenchmarkLearn measures LearnInteractions in events per second, for
// batches of 1 and 256 events (the live store applies at most 256 at a
// time), over a stream of Zipf-distributed item ids with one event in 20
// of a new item, so the overlay folds now and then as it would in
// production.
func BenchmarkLearn(b *testing.B) {
	entries, _ := benchFixture()
	r := rand.New(rand.NewPCG(5, 6))
	z := rand.NewZipf(r, 1.1, 1, benchItems-1)
	stream := make([]dataset.Interaction, 1<<16)
	for k := range stream {
		id := fmt.Sprintf("i%05d", z.Uint64())
		if k%20 == 0 {
			id = fmt.Sprintf("new%06d", k)
		}
		stream[k] = dataset.Interaction{UserID: "u", ItemID: id, Event: dataset.Event(1 + k%3), Value: 1, Timestamp: int64(k)}
	}
	for _, batch := range []int{1, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			m, err := popularity.NewWithOptions(entries, popularity.Options{Scope: popularity.Category, HalfLifeDays: 7})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			events, k := 0, 0
			for b.Loop() {
				if k+batch > len(stream) {
					k = 0
				}
				m.LearnInteractions(stream[k : k+batch])
				k += batch
				events += batch
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

const benchItems = 2000

// benchFixture is a 2,000-item long-tail catalogue of 20 categories and 64
// queries with 20-item histories.
func benchFixture() ([]popularity.Entry, []models.Query) {
	r := rand.New(rand.NewPCG(1, 2))
	const items, cats = benchItems, 20
	entries := make([]popularity.Entry, items)
	ids := make([]string, items)
	for i := range entries {
		ids[i] = fmt.Sprintf("i%05d", i)
		// Zipf-like scores with ties among the rarest items.
		entries[i] = popularity.Entry{ItemID: ids[i], Category: fmt.Sprintf("c%02d", r.IntN(cats)), Score: float64(int(1e5 / float64(i+1)))}
	}
	qs := make([]models.Query, 64)
	for k := range qs {
		h := make([]dataset.Interaction, 20)
		seen := map[string]bool{}
		for j := range h {
			// Popular items are seen more often.
			id := ids[int(float64(items)*r.Float64()*r.Float64())]
			h[j] = dataset.Interaction{UserID: "u", ItemID: id, Event: dataset.View, Value: 1, Timestamp: int64(j)}
			seen[id] = true
		}
		qs[k] = models.Query{History: h, K: 20, Allow: func(id string) bool { return !seen[id] }}
	}
	return entries, qs
}

package content_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/content"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

// benchFixture is a model of a generated catalogue and real histories of
// several lengths.
type benchFixture struct {
	model *content.Model
	// histories[h] are 64 histories of exactly h events: a user's latest h
	// events, or, for users with fewer, the events of consecutive users
	// together (as a long-lived account would have).
	histories map[int][][]dataset.Interaction
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[int]*benchFixture{}
)

var benchHistorySizes = []int{10, 100, 1000}

func fixture(b *testing.B, items int) *benchFixture {
	b.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f := fixtures[items]; f != nil {
		return f
	}
	d, err := datagen.Generate(datagen.Config{Users: 5000, Items: items})
	if err != nil {
		b.Fatal(err)
	}
	m, err := trainer.FitContent(context.Background(), d.Items, trainer.ContentOptions{Serving: content.DefaultOptions()})
	if err != nil {
		b.Fatal(err)
	}
	byUser := map[string][]dataset.Interaction{}
	var users []string
	for _, in := range d.Interactions {
		if byUser[in.UserID] == nil {
			users = append(users, in.UserID)
		}
		byUser[in.UserID] = append(byUser[in.UserID], in)
	}
	slices.Sort(users)
	f := &benchFixture{model: m, histories: map[int][][]dataset.Interaction{}}
	for _, h := range benchHistorySizes {
		var cur []dataset.Interaction
		for _, u := range users {
			cur = append(cur, byUser[u]...)
			if len(cur) >= h {
				f.histories[h] = append(f.histories[h], slices.Clone(cur[len(cur)-h:]))
				cur = cur[:0]
				if len(f.histories[h]) == 64 {
					break
				}
			}
		}
	}
	fixtures[items] = f
	return f
}

func seenFilter(h []dataset.Interaction) func(string) bool {
	seen := make(map[string]struct{}, len(h))
	for _, in := range h {
		seen[in.ItemID] = struct{}{}
	}
	return func(id string) bool {
		_, ok := seen[id]
		return !ok
	}
}

// reportLatency adds p50 and p99 of the per-call latencies, in µs.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkRecommend: K=10 with the seen items filtered, as the router asks
// (it asks for 2K when the user has history), by catalogue size, history
// length and profile cut (profile_terms 256, the default, and 0 = every
// term).
func BenchmarkRecommend(b *testing.B) {
	for _, items := range []int{2000, 20000} {
		for _, h := range benchHistorySizes {
			for _, terms := range []int{content.DefaultProfileTerms, 0} {
				name := fmt.Sprintf("items=%d/history=%d/terms=%d", items, h, terms)
				b.Run(name, func(b *testing.B) {
					f := fixture(b, items)
					o := f.model.Options()
					o.ProfileTerms = terms
					m, err := f.model.WithOptions(o)
					if err != nil {
						b.Fatal(err)
					}
					hs := f.histories[h]
					allows := make([]func(string) bool, len(hs))
					for i := range hs {
						allows[i] = seenFilter(hs[i])
					}
					lat := make([]time.Duration, 0, 1<<16)
					ctx := context.Background()
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						k := i % len(hs)
						start := time.Now()
						out, err := m.Recommend(ctx, models.Query{History: hs[k], K: 20, Allow: allows[k]})
						lat = append(lat, time.Since(start))
						if err != nil || len(out) == 0 {
							b.Fatalf("Recommend() = %v, %v", out, err)
						}
						i++
					}
					reportLatency(b, lat)
				})
			}
		}
	}
}

// BenchmarkSimilarItems: K=10 neighbours of catalogue items, on the fly
// through the postings.
func BenchmarkSimilarItems(b *testing.B) {
	for _, items := range []int{2000, 20000} {
		b.Run(fmt.Sprintf("items=%d", items), func(b *testing.B) {
			f := fixture(b, items)
			ids := f.model.Items().IDs()
			lat := make([]time.Duration, 0, 1<<16)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := ids[(i*7919)%len(ids)]
				start := time.Now()
				_, err := f.model.SimilarItems(ctx, models.SimilarQuery{ItemID: id, K: 10})
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportLatency(b, lat)
		})
	}
}

// BenchmarkScore: 100 given items for a 100-event history.
func BenchmarkScore(b *testing.B) {
	for _, items := range []int{2000, 20000} {
		b.Run(fmt.Sprintf("items=%d/history=100/n=100", items), func(b *testing.B) {
			f := fixture(b, items)
			ids := f.model.Items().IDs()
			cand := make([]string, 100)
			for i := range cand {
				cand[i] = ids[(i*7919)%len(ids)]
			}
			hs := f.histories[100]
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := f.model.Score(ctx, models.Query{History: hs[i%len(hs)]}, cand); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkLoad: decoding and validating an artifact and building the
// postings, by catalogue size.
func BenchmarkLoad(b *testing.B) {
	for _, items := range []int{2000, 20000} {
		b.Run(fmt.Sprintf("items=%d", items), func(b *testing.B) {
			f := fixture(b, items)
			data := save(b, f.model)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := content.Load(bytes.NewReader(data), f.model.Items(), f.model.Options()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecommendLearned: Recommend (20k items, 100-event histories, K=20
// with the seen items filtered) after the model learned N new catalogue
// items (copies of existing items' text under new ids) without folding them:
// what the delta costs a query. learned=0 is the trained hot path.
func BenchmarkRecommendLearned(b *testing.B) {
	for _, n := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("items=20000/history=100/learned=%d", n), func(b *testing.B) {
			f := fixture(b, 20000)
			m, err := f.model.WithOptions(f.model.Options())
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				d, err := datagen.Generate(datagen.Config{Users: 10, Items: n, Seed: 9})
				if err != nil {
					b.Fatal(err)
				}
				for k := range d.Items {
					d.Items[k].ID = fmt.Sprintf("learned-%d", k)
				}
				m.LearnItems(d.Items, nil)
			}
			hs := f.histories[100]
			allows := make([]func(string) bool, len(hs))
			for i := range hs {
				allows[i] = seenFilter(hs[i])
			}
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % len(hs)
				if out, err := m.Recommend(ctx, models.Query{History: hs[k], K: 20, Allow: allows[k]}); err != nil || len(out) == 0 {
					b.Fatalf("Recommend() = %v, %v", out, err)
				}
				i++
			}
		})
	}
}

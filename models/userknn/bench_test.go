package userknn_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/userknn"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

// benchModel is a trained model with its training histories.
type benchModel struct {
	m       *userknn.Model
	history map[string][]dataset.Interaction // by user, oldest first
	users   []string                         // sorted
}

var (
	benchOnce   sync.Map // size → *sync.Once
	benchModels sync.Map // size → *benchModel
)

// loadBench trains (once per process) a model on generated data of the given
// size, with default options.
func loadBench(b *testing.B, users, items int) *benchModel {
	b.Helper()
	key := fmt.Sprint(users, items)
	once, _ := benchOnce.LoadOrStore(key, new(sync.Once))
	once.(*sync.Once).Do(func() {
		d, err := datagen.Generate(datagen.Config{Users: users, Items: items})
		if err != nil {
			b.Fatal(err)
		}
		m, err := trainer.FitUserKNN(context.Background(), d, userknn.DefaultOptions(), 0)
		if err != nil {
			b.Fatal(err)
		}
		bm := &benchModel{m: m, history: map[string][]dataset.Interaction{}}
		for _, in := range d.Interactions {
			bm.history[in.UserID] = append(bm.history[in.UserID], in)
		}
		for u, h := range bm.history {
			slices.SortStableFunc(h, func(a, b dataset.Interaction) int { return int(a.Timestamp - b.Timestamp) })
			bm.users = append(bm.users, u)
		}
		sort.Strings(bm.users)
		benchModels.Store(key, bm)
	})
	v, ok := benchModels.Load(key)
	if !ok {
		b.Fatal("model setup failed")
	}
	return v.(*benchModel)
}

// queries builds up to n queries whose histories have size events: known
// users whose training history has about that many events (their own, so
// the precomputed path answers), or anonymous sessions made of consecutive
// training events of several users (the online path).
func (bm *benchModel) queries(size int, known bool, n int) []models.Query {
	var qs []models.Query
	if known {
		type cand struct {
			u    string
			diff int
		}
		var cs []cand
		for _, u := range bm.users {
			d := len(bm.history[u]) - size
			cs = append(cs, cand{u, max(d, -d)})
		}
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].diff < cs[j].diff })
		for _, c := range cs[:min(n, len(cs))] {
			qs = append(qs, query(c.u, bm.history[c.u]))
		}
		return qs
	}
	for start := 0; len(qs) < n; start += 7 {
		var h []dataset.Interaction
		for j := start; len(h) < size; j++ {
			h = append(h, bm.history[bm.users[j%len(bm.users)]]...)
		}
		qs = append(qs, query("", h[:size]))
	}
	return qs
}

// query is a query excluding seen items, as the router builds it.
func query(user string, h []dataset.Interaction) models.Query {
	seen := make(map[string]struct{}, len(h))
	for _, in := range h {
		seen[in.ItemID] = struct{}{}
	}
	return models.Query{UserID: user, History: h, K: 20, Allow: func(id string) bool {
		_, ok := seen[id]
		return !ok
	}}
}

// BenchmarkRecommend measures Recommend in process by model size, history
// size and path (known users with their training history take the
// precomputed neighbours; anonymous histories search online), reporting the
// mean, p50 and p99 latency and the mean history size actually used.
func BenchmarkRecommend(b *testing.B) {
	for _, size := range []struct {
		name         string
		users, items int
	}{{"5k", 5000, 2000}, {"50k", 50000, 20000}} {
		b.Run("model="+size.name, func(b *testing.B) {
			bm := loadBench(b, size.users, size.items)
			for _, known := range []bool{true, false} {
				for _, h := range []int{10, 100, 1000} {
					path := "unknown"
					if known {
						path = "known"
					}
					qs := bm.queries(h, known, 200)
					b.Run(fmt.Sprintf("user=%s/history=%d", path, h), func(b *testing.B) {
						ctx := context.Background()
						var lat []time.Duration
						events := 0
						for _, q := range qs {
							events += len(q.History)
						}
						b.ReportAllocs()
						i := 0
						for b.Loop() {
							q := qs[i%len(qs)]
							i++
							t := time.Now()
							out, err := bm.m.Recommend(ctx, q)
							lat = append(lat, time.Since(t))
							if err != nil {
								b.Fatalf("Recommend = %v, %v", out, err)
							}
						}
						slices.Sort(lat)
						b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
						b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
						b.ReportMetric(float64(events)/float64(len(qs)), "events")
					})
				}
			}
		})
	}
}

// BenchmarkLoad measures decoding and validating an artifact (from memory,
// so disk speed is excluded) and rebuilding the inverted index.
func BenchmarkLoad(b *testing.B) {
	for _, size := range []struct {
		name         string
		users, items int
	}{{"5k", 5000, 2000}, {"50k", 50000, 20000}} {
		b.Run("model="+size.name, func(b *testing.B) {
			bm := loadBench(b, size.users, size.items)
			var buf bytes.Buffer
			if err := bm.m.Save(&buf); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := userknn.Load(bytes.NewReader(buf.Bytes()), bm.m.Items(), bm.m.Options()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package itemknn_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/itemknn"
	"github.com/recserve/recserve/training/datagen"
	"github.com/recserve/recserve/training/trainer"
)

// benchData is a model trained with the default options on a generated data
// set, and the users' histories, oldest first, as the store serves them.
type benchData struct {
	model     *itemknn.Model
	histories [][]dataset.Interaction
	artifact  []byte
}

var (
	benchOnce  sync.Map // size name → *sync.Once
	benchCache sync.Map // size name → *benchData
)

var benchSizes = []struct {
	name         string
	users, items int
}{
	{"5kx2k", 5000, 2000},
	{"50kx20k", 50000, 20000},
}

func loadBench(b *testing.B, name string, users, items int) *benchData {
	b.Helper()
	once, _ := benchOnce.LoadOrStore(name, &sync.Once{})
	once.(*sync.Once).Do(func() {
		d, err := datagen.Generate(datagen.Config{Users: users, Items: items})
		if err != nil {
			b.Fatal(err)
		}
		m, err := trainer.FitItemKNN(context.Background(), d, trainer.DefaultItemKNNOptions())
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			b.Fatal(err)
		}
		byUser := map[string][]dataset.Interaction{}
		for _, in := range d.Interactions {
			byUser[in.UserID] = append(byUser[in.UserID], in)
		}
		ids := make([]string, 0, len(byUser))
		for id, h := range byUser {
			sort.SliceStable(h, func(i, j int) bool { return h[i].Timestamp < h[j].Timestamp })
			ids = append(ids, id)
		}
		sort.Strings(ids)
		bd := &benchData{model: m, artifact: buf.Bytes()}
		for _, id := range ids {
			bd.histories = append(bd.histories, byUser[id])
		}
		benchCache.Store(name, bd)
	})
	bd, ok := benchCache.Load(name)
	if !ok {
		b.Fatal("benchmark data set failed to build")
	}
	return bd.(*benchData)
}

// queries are users' requests as the router builds them: the last n events
// of histories with at least n, and the seen-item filter.
func queries(bd *benchData, n int) []models.Query {
	var out []models.Query
	for _, h := range bd.histories {
		if len(h) < n {
			continue
		}
		h = h[len(h)-n:]
		seen := make(map[string]struct{}, len(h))
		for _, in := range h {
			seen[in.ItemID] = struct{}{}
		}
		out = append(out, models.Query{History: h, K: 20, Allow: func(id string) bool {
			_, ok := seen[id]
			return !ok
		}})
		if len(out) == 256 {
			break
		}
	}
	return out
}

// latencies keeps the last len(ring) per-call durations for percentiles,
// without allocating inside the timed loop.
type latencies struct {
	ring [1 << 16]time.Duration
	n    int
}

func (l *latencies) add(d time.Duration) { l.ring[l.n%len(l.ring)] = d; l.n++ }

func (l *latencies) report(b *testing.B) {
	s := slices.Clone(l.ring[:min(l.n, len(l.ring))])
	if len(s) == 0 {
		return
	}
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2]), "p50-ns")
	b.ReportMetric(float64(s[len(s)*99/100]), "p99-ns")
}

// BenchmarkRecommend measures Recommend (K=20, the router's 2×10, with the
// seen-item filter) by data set size and history length; p50-ns and p99-ns
// are per-call percentiles.
func BenchmarkRecommend(b *testing.B) {
	ctx := context.Background()
	for _, size := range benchSizes {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("data=%s/history=%d", size.name, n), func(b *testing.B) {
				bd := loadBench(b, size.name, size.users, size.items)
				qs := queries(bd, n)
				if len(qs) == 0 {
					b.Skipf("no history of %d events", n)
				}
				var lat latencies
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					start := time.Now()
					res, err := bd.model.Recommend(ctx, qs[i%len(qs)])
					lat.add(time.Since(start))
					if err != nil || len(res) == 0 {
						b.Fatalf("Recommend = %v, %v", res, err)
					}
					i++
				}
				lat.report(b)
			})
		}
	}
}

// BenchmarkScore scores 100 items for a 100-event history.
func BenchmarkScore(b *testing.B) {
	bd := loadBench(b, "50kx20k", 50000, 20000)
	qs := queries(bd, 100)
	items := bd.model.Items().IDs()[:100]
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := bd.model.Score(context.Background(), qs[i%len(qs)], items); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkSimilarItems(b *testing.B) {
	bd := loadBench(b, "50kx20k", 50000, 20000)
	ids := bd.model.Items().IDs()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, err := bd.model.SimilarItems(context.Background(), models.SimilarQuery{ItemID: ids[i%len(ids)], K: 10})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBuild loads a version directory (artifact + items.txt +
// model.yaml) as the server does on deploy.
func BenchmarkBuild(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("data="+size.name, func(b *testing.B) {
			bd := loadBench(b, size.name, size.users, size.items)
			dir := b.TempDir()
			if err := bd.model.Items().WriteFile(filepath.Join(dir, "items.txt")); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, itemknn.DefaultFile), bd.artifact, 0o644); err != nil {
				b.Fatal(err)
			}
			v := models.Version{Name: "itemknn", ID: "1", Dir: dir, Spec: models.Spec{Kind: itemknn.Kind}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := itemknn.Build(context.Background(), models.Env{}, v); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(bd.artifact)), "artifact-bytes")
		})
	}
}

// BenchmarkLoad decodes the artifact alone, from memory.
func BenchmarkLoad(b *testing.B) {
	bd := loadBench(b, "50kx20k", 50000, 20000)
	b.ReportAllocs()
	b.SetBytes(int64(len(bd.artifact)))
	for b.Loop() {
		if _, err := itemknn.Load(bytes.NewReader(bd.artifact), bd.model.Items(), itemknn.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

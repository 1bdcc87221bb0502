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
	r := rand.New(rand.NewPCG(1, 2))
	const items, cats = 2000, 20
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
	for _, scope := range []popularity.Scope{popularity.Global, popularity.Category} {
		b.Run("scope="+string(scope), func(b *testing.B) {
			m, err := popularity.New(entries, scope)
			if err != nil {
				b.Fatal(err)
			}
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

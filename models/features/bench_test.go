package features_test

import (
	"fmt"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/features"
	"github.com/recserve/recserve/training/datagen"
)

// BenchmarkRows measures the pipeline on the demo data set's shape: one
// user's summary plus rows for 1, 100 and 10,000 items (a Score request),
// and the per-user cost TargetAudience pays (one item per user).
func BenchmarkRows(b *testing.B) {
	d, err := datagen.Generate(datagen.Config{Users: 5000, Items: 2000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	p := features.New(d.Items, d.Interactions, features.Options{})
	byUser := map[string][]dataset.Interaction{}
	for _, in := range d.Interactions {
		byUser[in.UserID] = append(byUser[in.UserID], in)
	}
	var users []string
	for u := range byUser {
		users = append(users, u)
	}
	bind, err := p.Bind(features.Names())
	if err != nil {
		b.Fatal(err)
	}
	w := len(features.Names())
	for _, n := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = d.Items[i%len(d.Items)].ID
			}
			dst := make([]float64, n*w)
			i := 0
			for b.Loop() {
				u := users[i%len(users)]
				i++
				if err := bind.Rows(models.Query{UserID: u, History: byUser[u]}, ids, dst); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}

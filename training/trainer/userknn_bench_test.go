package trainer

import (
	"context"
	"fmt"
	"testing"

	"github.com/recserve/recserve/models/userknn"
	"github.com/recserve/recserve/training/datagen"
)

// BenchmarkFitUserKNN measures training at two data sizes.
func BenchmarkFitUserKNN(b *testing.B) {
	for _, size := range []struct{ users, items int }{{5000, 2000}, {50000, 20000}} {
		d, err := datagen.Generate(datagen.Config{Users: size.users, Items: size.items})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("users=%d/items=%d", size.users, size.items), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FitUserKNN(context.Background(), d, userknn.DefaultOptions(), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

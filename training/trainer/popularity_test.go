package trainer

import (
	"math"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
)

func TestFitPopularity(t *testing.T) {
	const day = 86400
	d := &dataset.Dataset{
		Items: []dataset.Item{{ID: "a", Category: "x"}, {ID: "b", Category: "y"}, {ID: "never", Category: "x"}},
		Interactions: []dataset.Interaction{
			{UserID: "u1", ItemID: "a", Event: dataset.View, Value: 1, Timestamp: 0},
			{UserID: "u1", ItemID: "a", Event: dataset.Purchase, Value: 1, Timestamp: 10 * day},
			{UserID: "u2", ItemID: "b", Event: dataset.Cart, Value: 1, Timestamp: 20 * day},
			{UserID: "u3", ItemID: "b", Event: dataset.Rating, Value: 4, Timestamp: 20 * day},
		},
	}
	tests := []struct {
		name string
		opt  PopularityOptions
		want map[string]float64
	}{
		// view 1 + purchase 5; cart 3 + rating 1×4.
		{"default weights", PopularityOptions{}, map[string]float64{"a": 6, "b": 7, "never": 0}},
		// Newest event is day 20: a's view is 20 days old (×1/4), its purchase 10 (×1/2).
		{"half-life 10 days", PopularityOptions{HalfLifeDays: 10}, map[string]float64{"a": 0.25 + 2.5, "b": 7, "never": 0}},
		{"custom weights", PopularityOptions{Weights: models.EventWeights{dataset.View: 2, dataset.Purchase: 0, dataset.Cart: 1, dataset.Rating: 0}},
			map[string]float64{"a": 2, "b": 1, "never": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := FitPopularity(d, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, e := range m.Entries() {
				got[e.ItemID] = e.Score
			}
			for id, want := range tt.want {
				if math.Abs(got[id]-want) > 1e-12 {
					t.Errorf("score(%s) = %v; want %v", id, got[id], want)
				}
			}
		})
	}
	if _, err := FitPopularity(&dataset.Dataset{}, PopularityOptions{Scope: popularity.Global}); err == nil {
		t.Error("FitPopularity(empty) = nil error; want an error")
	}
}

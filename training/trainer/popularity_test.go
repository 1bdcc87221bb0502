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

// TestPopularityOnlineMatchesRetraining trains on the older events, learns the
// newer ones online and checks that the ranking and the normalised scores
// equal a training on every event: online counting is retraining without
// the cost.
func TestPopularityOnlineMatchesRetraining(t *testing.T) {
	const day = 86400
	items := []dataset.Item{{ID: "a", Category: "x"}, {ID: "b", Category: "x"}, {ID: "c", Category: "y"}, {ID: "d", Category: "y"}}
	old := []dataset.Interaction{
		{UserID: "u1", ItemID: "a", Event: dataset.Purchase, Value: 1, Timestamp: 0},
		{UserID: "u1", ItemID: "a", Event: dataset.View, Value: 1, Timestamp: 2 * day},
		{UserID: "u2", ItemID: "b", Event: dataset.View, Value: 1, Timestamp: 3 * day},
		{UserID: "u3", ItemID: "c", Event: dataset.Cart, Value: 1, Timestamp: 5 * day},
	}
	recent := []dataset.Interaction{
		{UserID: "u4", ItemID: "b", Event: dataset.Cart, Value: 1, Timestamp: 9 * day},
		{UserID: "u4", ItemID: "d", Event: dataset.View, Value: 1, Timestamp: 12 * day},
		{UserID: "u5", ItemID: "d", Event: dataset.Rating, Value: 4, Timestamp: 12 * day},
		{UserID: "u5", ItemID: "new", Event: dataset.Purchase, Value: 1, Timestamp: 13 * day},
	}
	tests := []struct {
		name string
		opt  PopularityOptions
	}{
		{"no decay", PopularityOptions{}},
		{"half-life 7 days", PopularityOptions{HalfLifeDays: 7}},
		{"half-life 1 day, category scope", PopularityOptions{HalfLifeDays: 1, Scope: popularity.Category}},
		{"custom weights", PopularityOptions{HalfLifeDays: 3, Weights: models.EventWeights{dataset.View: 2, dataset.Cart: 1, dataset.Purchase: 10, dataset.Rating: 0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			online, err := FitPopularity(&dataset.Dataset{Items: items, Interactions: old}, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			online.LearnInteractions(recent)
			all := append(append([]dataset.Interaction(nil), old...), recent...)
			want, err := FitPopularity(&dataset.Dataset{Items: append(items, dataset.Item{ID: "new"}), Interactions: all}, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			ids := []string{"a", "b", "c", "d", "new"}
			got, _ := online.Score(t.Context(), models.Query{}, ids)
			exp, _ := want.Score(t.Context(), models.Query{}, ids)
			for i := range ids {
				if math.Abs(got[i]-exp[i]) > 1e-9 {
					t.Errorf("online Score(%s) = %v; retrained %v", ids[i], got[i], exp[i])
				}
			}
			q := models.Query{K: 5, History: old[2:3]}
			gotRec, _ := online.Recommend(t.Context(), q)
			wantRec, _ := want.Recommend(t.Context(), q)
			if len(gotRec) != len(wantRec) {
				t.Fatalf("online Recommend = %v; retrained %v", gotRec, wantRec)
			}
			for i := range gotRec {
				if gotRec[i].ItemID != wantRec[i].ItemID || math.Abs(gotRec[i].Score-wantRec[i].Score) > 1e-9 {
					t.Errorf("online Recommend = %v; retrained %v", gotRec, wantRec)
					break
				}
			}
		})
	}
}

package eval

import (
	"math"
	"testing"

	"github.com/recserve/recserve/dataset"
)

func set(ids ...string) map[string]struct{} {
	s := map[string]struct{}{}
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

func TestRank(t *testing.T) {
	l2 := math.Log2
	tests := []struct {
		name string
		recs []string
		rel  map[string]struct{}
		k    int
		want Ranking
	}{
		{"no hits", []string{"a", "b"}, set("x"), 2, Ranking{}},
		{"hit at 1 of 1", []string{"a", "b"}, set("a"), 2,
			Ranking{Precision: 0.5, Recall: 1, NDCG: 1, AP: 1, Hit: 1}},
		{"hit at 2 of 1", []string{"a", "b"}, set("b"), 2,
			// DCG = 1/log2(3), IDCG = 1; AP = (1/2)/1.
			Ranking{Precision: 0.5, Recall: 1, NDCG: 1 / l2(3), AP: 0.5, Hit: 1}},
		{"hits at 1 and 3 of 3 relevant, k=3", []string{"a", "b", "c"}, set("a", "c", "z"), 3,
			// DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/2; AP = (1/1 + 2/3)/3.
			Ranking{Precision: 2.0 / 3, Recall: 2.0 / 3, NDCG: 1.5 / (1 + 1/l2(3) + 0.5), AP: (1 + 2.0/3) / 3, Hit: 1}},
		{"only first k count", []string{"a", "b", "c"}, set("c"), 2, Ranking{}},
		{"more relevant than k", []string{"a", "b"}, set("a", "b", "c", "d"), 2,
			// IDCG over min(4,2) = 2 positions: perfect ranking.
			Ranking{Precision: 1, Recall: 0.5, NDCG: 1, AP: 1, Hit: 1}},
		{"short list", []string{"b"}, set("b"), 5,
			Ranking{Precision: 0.2, Recall: 1, NDCG: 1, AP: 1, Hit: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Rank(tt.recs, tt.rel, tt.k)
			if !closeRanking(got, tt.want) {
				t.Errorf("Rank(%v, %v, %d) = %+v; want %+v", tt.recs, tt.rel, tt.k, got, tt.want)
			}
		})
	}
}

func closeRanking(a, b Ranking) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	return eq(a.Precision, b.Precision) && eq(a.Recall, b.Recall) && eq(a.NDCG, b.NDCG) && eq(a.AP, b.AP) && eq(a.Hit, b.Hit)
}

func TestAUC(t *testing.T) {
	tests := []struct {
		name           string
		scores, labels []float64
		want           float64
	}{
		{"perfect", []float64{0.9, 0.8, 0.2, 0.1}, []float64{1, 1, 0, 0}, 1},
		{"inverted", []float64{0.1, 0.2, 0.8, 0.9}, []float64{1, 1, 0, 0}, 0},
		// Pairs (pos, neg): (0.8 vs 0.5) win, (0.8 vs 0.9) loss, (0.4 vs
		// 0.5) loss, (0.4 vs 0.9) loss → 1/4.
		{"by hand", []float64{0.8, 0.5, 0.9, 0.4}, []float64{1, 0, 0, 1}, 0.25},
		// Ties count one half: (0.5 vs 0.5) ½, (0.5 vs 0.1) 1 → 3/4.
		{"ties", []float64{0.5, 0.5, 0.1}, []float64{1, 0, 0}, 0.75},
	}
	for _, tt := range tests {
		if got := AUC(tt.scores, tt.labels); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: AUC = %v; want %v", tt.name, got, tt.want)
		}
	}
	if got := AUC([]float64{0.1, 0.2}, []float64{1, 1}); !math.IsNaN(got) {
		t.Errorf("AUC(one class) = %v; want NaN", got)
	}
}

func TestLogLoss(t *testing.T) {
	got, ok := LogLoss([]float64{0.8, 0.25}, []float64{1, 0})
	if want := -(math.Log(0.8) + math.Log(0.75)) / 2; !ok || math.Abs(got-want) > 1e-12 {
		t.Errorf("LogLoss = %v, %v; want %v, true", got, ok, want)
	}
	if got, ok := LogLoss([]float64{1, 0}, []float64{0, 1}); !ok || got < 34 || got > 35 {
		t.Errorf("LogLoss(confidently wrong) = %v; want about -log(1e-15) = 34.5 (clipped, finite)", got)
	}
	if _, ok := LogLoss([]float64{0.5, 3}, []float64{0, 1}); ok {
		t.Errorf("LogLoss of a non-probability score: ok = true; want false")
	}
}

func TestNextItemCases(t *testing.T) {
	ev := func(u, i string, ts int64) dataset.Interaction {
		return dataset.Interaction{UserID: u, ItemID: i, Event: dataset.View, Timestamp: ts}
	}
	train := &dataset.Dataset{Interactions: []dataset.Interaction{ev("a", "x", 1), ev("b", "y", 1)}}
	test := &dataset.Dataset{Interactions: []dataset.Interaction{
		ev("a", "z", 9), ev("a", "x", 2), ev("a", "w", 5), // x was seen: w (ts 5) is next
		ev("b", "y", 3),                  // only a seen item: no case
		ev("c", "q", 4), ev("c", "r", 4), // a tie keeps file order
	}}
	got := NextItemCases(train, test)
	if len(got) != 2 || got[0].UserID != "a" || got[1].UserID != "c" {
		t.Fatalf("NextItemCases = %+v; want cases for a and c", got)
	}
	if _, ok := got[0].Relevant["w"]; !ok || len(got[0].Relevant) != 1 {
		t.Errorf("a's next item = %v; want w", got[0].Relevant)
	}
	if _, ok := got[1].Relevant["q"]; !ok || len(got[1].Relevant) != 1 {
		t.Errorf("c's next item = %v; want q", got[1].Relevant)
	}
}

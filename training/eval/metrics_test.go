package eval

import (
	"math"
	"testing"
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

package router

import "testing"

// TestCandidates pins how many items a source is asked for, as the router
// has always asked: candidates when set, else the pool (k; the rerank's top_n
// or 4k with diversity when larger), doubled for a request with a history.
func TestCandidates(t *testing.T) {
	plain := &route{Route: &Route{}}
	rerank := &route{Route: &Route{}, rerankTopN: 50}
	diverse := &route{Route: &Route{}, diverse: true}
	both := &route{Route: &Route{}, rerankTopN: 50, diverse: true}
	tests := []struct {
		name    string
		rt      *route
		s       Source
		k       int
		history bool
		want    int
	}{
		{"model override, cold user", nil, Source{}, 10, false, 10},
		{"model override, history", nil, Source{}, 10, true, 20},
		{"backfill pins the missing count", nil, Source{Candidates: 3}, 10, true, 3},
		{"plain route", plain, Source{}, 10, true, 20},
		{"plain route, no history", plain, Source{}, 10, false, 10},
		{"source candidates win", plain, Source{Candidates: 37}, 10, true, 37},
		{"source candidates below k", both, Source{Candidates: 5}, 10, true, 5},
		{"rerank top_n above k", rerank, Source{}, 10, true, 100},
		{"rerank top_n below k", rerank, Source{}, 80, true, 160},
		{"diversity pools 4k", diverse, Source{}, 10, true, 80},
		{"rerank and diversity: the larger", both, Source{}, 10, true, 100},
		{"rerank and diversity, large k", both, Source{}, 20, false, 80},
	}
	for _, tt := range tests {
		if got := candidates(tt.rt, tt.s, tt.k, tt.history); got != tt.want {
			t.Errorf("%s: candidates(k=%d, history=%v) = %d; want %d", tt.name, tt.k, tt.history, got, tt.want)
		}
	}
}

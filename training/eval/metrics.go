// Package eval measures recommenders offline on held-out data. It drives the
// router — the code the server runs — so a model's or route's offline numbers
// are what it would serve.
package eval

import "math"

// Ranking holds the top-K metrics of one ranked list against a set of relevant
// items (binary relevance).
type Ranking struct {
	Precision float64 // hits / K
	Recall    float64 // hits / |relevant|
	NDCG      float64 // DCG / ideal DCG, gain 1/log2(rank+1)
	AP        float64 // average precision at K, normalised by min(|relevant|, K)
	Hit       float64 // 1 when any relevant item is in the top K
}

// Rank scores recs (best first; only the first k count) against relevant.
// relevant must be non-empty and k positive.
func Rank(recs []string, relevant map[string]struct{}, k int) Ranking {
	if len(recs) > k {
		recs = recs[:k]
	}
	var hits int
	var dcg, sumPrec float64
	for i, id := range recs {
		if _, ok := relevant[id]; !ok {
			continue
		}
		hits++
		dcg += 1 / math.Log2(float64(i)+2)
		sumPrec += float64(hits) / float64(i+1)
	}
	ideal := min(len(relevant), k)
	var idcg float64
	for i := 0; i < ideal; i++ {
		idcg += 1 / math.Log2(float64(i)+2)
	}
	r := Ranking{
		Precision: float64(hits) / float64(k),
		Recall:    float64(hits) / float64(len(relevant)),
		NDCG:      dcg / idcg,
		AP:        sumPrec / float64(ideal),
	}
	if hits > 0 {
		r.Hit = 1
	}
	return r
}

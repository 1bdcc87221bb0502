// Package eval measures recommenders offline on held-out data. It drives the
// router — the code the server runs — so a model's or route's offline numbers
// are what it would serve.
package eval

import (
	"cmp"
	"math"
	"slices"
)

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

// AUC is the area under the ROC curve of scores against binary labels (1 =
// positive): the probability that a random positive outranks a random
// negative, ties counting one half (Mann-Whitney with average ranks). It is
// NaN unless both classes occur.
func AUC(scores, labels []float64) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(scores[a], scores[b]) })
	var pos, rankSum float64
	for lo := 0; lo < len(idx); {
		hi := lo + 1
		for hi < len(idx) && scores[idx[hi]] == scores[idx[lo]] {
			hi++
		}
		avg := float64(lo+hi+1) / 2 // mean of the 1-based ranks lo+1..hi
		for _, i := range idx[lo:hi] {
			if labels[i] == 1 {
				pos++
				rankSum += avg
			}
		}
		lo = hi
	}
	neg := float64(len(scores)) - pos
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// LogLoss is the mean negative log-likelihood of binary labels under
// probabilities p, clipped to [1e-15, 1-1e-15] as scikit-learn does. ok is
// false when a score is not a probability (outside [0, 1] or NaN): log loss
// means nothing for a ranking score.
func LogLoss(p, labels []float64) (loss float64, ok bool) {
	const eps = 1e-15
	for i, v := range p {
		if !(v >= 0 && v <= 1) {
			return 0, false
		}
		v = min(max(v, eps), 1-eps)
		if labels[i] == 1 {
			loss -= math.Log(v)
		} else {
			loss -= math.Log(1 - v)
		}
	}
	if len(p) == 0 {
		return 0, false
	}
	return loss / float64(len(p)), true
}

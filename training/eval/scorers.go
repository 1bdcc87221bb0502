package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/features"
	"github.com/recserve/recserve/models/repository"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// ScorerResult is the purchase-propensity quality of one scorer: the test
// purchases against negatives drawn by features.Sample (the sampler of the
// training export), every pair scored through the router.
type ScorerResult struct {
	Model string  `json:"model"`
	AUC   float64 `json:"auc"`
	// LogLoss is absent when the scorer's outputs are not probabilities.
	LogLoss   *float64 `json:"log_loss,omitempty"`
	Examples  int      `json:"examples"`
	Positives int      `json:"positives"`
}

// ScoreRouter is what EvaluateScorer needs: the router's Score.
type ScoreRouter interface {
	Score(ctx context.Context, req router.ScoreRequest) (router.ScoreResponse, error)
}

// ScoreExamples labels the purchases of test as positives against sampled
// negatives, keeping only pairs whose user and item the train data knows (a
// scorer cannot be asked about an item it has never seen).
func ScoreExamples(train, test *dataset.Dataset, st *store.Memory) []features.Example {
	all := features.Sample(train.Interactions, test.Interactions, st.ItemIDs(), features.SampleOptions{Seed: 1})
	out := all[:0]
	for _, ex := range all {
		if _, ok := st.Item(ex.ItemID); ok {
			out = append(out, ex)
		}
	}
	return out
}

// EvaluateScorer scores examples (sorted by user) with model through sc, one
// request per user, on workers goroutines (0 = GOMAXPROCS). Log loss is
// computed when probabilities is set: for ranking scores it means nothing.
func EvaluateScorer(ctx context.Context, sc ScoreRouter, model string, examples []features.Example, probabilities bool, workers int) (ScorerResult, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type group struct{ lo, hi int }
	var groups []group
	for lo := 0; lo < len(examples); {
		hi := lo + 1
		for hi < len(examples) && examples[hi].UserID == examples[lo].UserID {
			hi++
		}
		groups = append(groups, group{lo, hi})
		lo = hi
	}
	scores := make([]float64, len(examples))
	labels := make([]float64, len(examples))
	jobs := make(chan group)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range jobs {
				if errs[w] != nil {
					continue
				}
				ids := make([]string, 0, g.hi-g.lo)
				for _, ex := range examples[g.lo:g.hi] {
					ids = append(ids, ex.ItemID)
				}
				resp, err := sc.Score(ctx, router.ScoreRequest{UserID: examples[g.lo].UserID, ItemIDs: ids, Model: model})
				if err != nil {
					errs[w] = err
					continue
				}
				copy(scores[g.lo:g.hi], resp.Scores)
			}
		}()
	}
	for _, g := range groups {
		jobs <- g
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return ScorerResult{}, err
	}
	res := ScorerResult{Model: model, Examples: len(examples)}
	for i, ex := range examples {
		labels[i] = ex.Label
		if ex.Label == 1 {
			res.Positives++
		}
	}
	res.AUC = AUC(scores, labels)
	if ll, ok := LogLoss(scores, labels); ok && probabilities {
		res.LogLoss = &ll
	}
	return res, nil
}

// evalScorers adds a ScorerResult for every scorer among names.
func evalScorers(ctx context.Context, rep *Report, rt *router.Router, repo *repository.Repository, names []string,
	train, test *dataset.Dataset, st *store.Memory, workers int) error {
	var examples []features.Example
	for _, name := range names {
		l, err := repo.Get(name)
		if err != nil {
			continue // already reported in Skipped
		}
		if _, ok := l.Model.(models.Scorer); !ok {
			continue
		}
		if examples == nil {
			examples = ScoreExamples(train, test, st)
		}
		p, ok := l.Model.(interface{ Probabilities() bool })
		res, err := EvaluateScorer(ctx, rt, name, examples, ok && p.Probabilities(), workers)
		if err != nil {
			return fmt.Errorf("scorer %s: %w", name, err)
		}
		if math.IsNaN(res.AUC) {
			rep.Skipped[name+" (scorer)"] = "the test data has no purchases of items known to train, or no negatives"
			continue
		}
		rep.Scorers = append(rep.Scorers, res)
	}
	return nil
}

package repository

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/recserve/recserve/models"
)

// probeTimeout bounds the validation of one version.
const probeTimeout = 30 * time.Second

// validate sends the probe through every role m has and checks the answers
// are well formed: a version that errors, panics, returns non-finite scores or
// more items than asked for never serves. Kinds check their own signatures at
// build time (the onnx kind also warms up on synthetic input); this check is
// the same for every kind and runs through the interfaces the router calls.
func validate(ctx context.Context, m models.Model, p *Probe) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("validation: the model panicked: %v", v)
		}
	}()
	if len(models.Roles(m)) == 0 {
		return errors.New("validation: the model has no role (recommender, scorer or similar_items)")
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var q models.Query
	var items []string
	if p != nil {
		q, items = p.Query, p.Items
	}
	if q.K == 0 {
		q.K = 10
	}
	if rec, ok := m.(models.Recommender); ok {
		got, err := rec.Recommend(ctx, q)
		switch {
		case errors.Is(err, models.ErrNotFound):
			// The probe user may be unknown to the model: not a fault.
		case err != nil:
			return fmt.Errorf("validation: Recommend: %w", err)
		case len(got) > q.K:
			return fmt.Errorf("validation: Recommend returned %d items for k=%d", len(got), q.K)
		}
		if err := finiteScored("Recommend", got); err != nil {
			return err
		}
	}
	if sc, ok := m.(models.Scorer); ok && len(items) > 0 {
		got, err := sc.Score(ctx, q, items)
		if err != nil {
			return fmt.Errorf("validation: Score: %w", err)
		}
		if len(got) != len(items) {
			return fmt.Errorf("validation: Score returned %d scores for %d items", len(got), len(items))
		}
		if i := slices.IndexFunc(got, notFinite); i >= 0 {
			return fmt.Errorf("validation: Score of item %q is %v: the model does not produce finite scores", items[i], got[i])
		}
	}
	if sim, ok := m.(models.ItemSimilarity); ok && len(items) > 0 {
		got, err := sim.SimilarItems(ctx, models.SimilarQuery{ItemID: items[0], K: q.K})
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return fmt.Errorf("validation: SimilarItems: %w", err)
		}
		if err := finiteScored("SimilarItems", got); err != nil {
			return err
		}
	}
	return nil
}

func notFinite(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

func finiteScored(op string, got []models.Scored) error {
	for _, s := range got {
		if notFinite(s.Score) {
			return fmt.Errorf("validation: %s scored item %q %v: the model does not produce finite scores", op, s.ItemID, s.Score)
		}
	}
	return nil
}

// sameRoles reports an error when a new version would change what a model
// can do: routes and callers rely on a model's roles, so a scorer cannot
// replace a recommender under the same name.
func sameRoles(next, serving *Loaded) error {
	if serving == nil {
		return nil
	}
	a, b := models.Roles(next.Model), models.Roles(serving.Model)
	if !slices.Equal(a, b) {
		return fmt.Errorf("version %s has roles %v but the serving version %s has %v: deploy it under another name",
			next.Version, a, serving.Version, b)
	}
	return nil
}

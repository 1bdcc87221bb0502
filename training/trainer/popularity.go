package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/popularity"
)

// PopularityOptions configure FitPopularity.
type PopularityOptions struct {
	// Scope is global or category (see popularity.Scope).
	Scope popularity.Scope
	// HalfLifeDays, when positive, decays each event's weight by
	// 2^(-age/half-life), age measured from the newest event in the data.
	HalfLifeDays float64
	// Weights per event kind.
	Weights models.EventWeights
}

// FitPopularity counts event-weighted (and optionally time-decayed)
// interactions per item. Catalogue items without interactions get score 0, so
// they can still be recommended after every popular item.
func FitPopularity(d *dataset.Dataset, o PopularityOptions) (*popularity.Model, error) {
	if len(d.Interactions) == 0 {
		return nil, errors.New("no interactions to count")
	}
	if o.Weights == nil {
		o.Weights = models.DefaultEventWeights()
	}
	var newest int64 = math.MinInt64
	for _, in := range d.Interactions {
		newest = max(newest, in.Timestamp)
	}
	scores := map[string]float64{}
	for _, it := range d.Items {
		scores[it.ID] = 0
	}
	for _, in := range d.Interactions {
		w := o.Weights.Of(in)
		if o.HalfLifeDays > 0 {
			ageDays := float64(newest-in.Timestamp) / 86400
			w *= math.Exp2(-ageDays / o.HalfLifeDays)
		}
		scores[in.ItemID] += w
	}
	cat := make(map[string]string, len(d.Items))
	for _, it := range d.Items {
		cat[it.ID] = it.Category
	}
	entries := make([]popularity.Entry, 0, len(scores))
	for id, s := range scores {
		entries = append(entries, popularity.Entry{ItemID: id, Category: cat[id], Score: s})
	}
	// The table records T0 and how it counted, so the model keeps counting
	// online on the same scale (see package popularity).
	return popularity.NewWithOptions(entries, popularity.Options{
		Scope: o.Scope, HalfLifeDays: o.HalfLifeDays, Weights: o.Weights, NewestEvent: time.Unix(newest, 0),
	})
}

func fitPopularity(_ context.Context, d *dataset.Dataset, p Params, dir string) (models.Spec, error) {
	if err := unknownParams(p, "scope", "half_life_days", "event_weights"); err != nil {
		return models.Spec{}, err
	}
	o := PopularityOptions{Scope: popularity.Scope(p["scope"])}
	if o.Scope == "" {
		o.Scope = popularity.Global
	}
	if s := p["half_life_days"]; s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			return models.Spec{}, fmt.Errorf("half_life_days %q: want a non-negative number", s)
		}
		o.HalfLifeDays = f
	}
	w, err := models.ParseEventWeights(p["event_weights"])
	if err != nil {
		return models.Spec{}, err
	}
	o.Weights = w
	m, err := FitPopularity(d, o)
	if err != nil {
		return models.Spec{}, err
	}
	if err := saveArtifact(dir, popularity.DefaultFile, m); err != nil {
		return models.Spec{}, err
	}
	return models.Spec{
		File: popularity.DefaultFile,
		Params: map[string]any{
			popularity.ParamScope:        string(o.Scope),
			popularity.ParamHalfLifeDays: o.HalfLifeDays,
			popularity.ParamEventWeights: o.Weights.String(),
		},
	}, nil
}

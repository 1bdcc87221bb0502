package userknn

import (
	"fmt"
	"math"

	"github.com/recserve/recserve/models"
)

// Similarity names a user–user similarity.
type Similarity string

// Similarities.
const (
	// Pearson is the seed's correlation, centred over co-rated items.
	Pearson Similarity = "pearson"
	// Cosine is the cosine of the users' whole value vectors.
	Cosine Similarity = "cosine"
)

// Damping names a transform of summed event weights into values.
type Damping string

// Dampings.
const (
	// NoDamping uses the event-weighted sum as the value.
	NoDamping Damping = "none"
	// LogDamping uses sign(s)·ln(1+|s|) of the sum s.
	LogDamping Damping = "log"
)

// Ranking names how Recommend orders candidate items.
type Ranking string

// Rankings.
const (
	// Pred ranks by the seed's prediction pred(u,i) itself. It averages over
	// the neighbours who have i, so an item one weak neighbour bought ranks
	// with one the whole neighbourhood bought: on implicit data it ranks
	// poorly (see the package documentation).
	Pred Ranking = "pred"
	// Expected ranks by pred(u,i) × share(u,i), share being the part of the
	// neighbourhood's similarity Σ_v |sim(u,v)| held by neighbours who have i:
	//
	//	Σ_{v has i} sim(u,v)·(x̄_u + x_vi − x̄_v) / Σ_v |sim(u,v)|
	//
	// the seed's formula with a neighbour who never touched i counted as
	// value 0, which is what absence means in implicit feedback.
	Expected Ranking = "expected"
)

// Parameter keys of model.yaml (and of `recctl train userknn --param`).
const (
	ParamEventWeights = "event_weights"
	ParamDamping      = "damping"
	ParamSimilarity   = "similarity"
	ParamShrinkage    = "shrinkage"
	ParamMinCommon    = "min_common"
	ParamNeighbors    = "neighbors"
	ParamRanking      = "ranking"
)

// ParamKeys lists every parameter key OptionsFromSpec reads.
func ParamKeys() []string {
	return []string{ParamEventWeights, ParamDamping, ParamSimilarity, ParamShrinkage,
		ParamMinCommon, ParamNeighbors, ParamRanking}
}

// Options are the settings of a model, shared by training and serving (the
// online path needs all of them). The zero value is not valid; start from
// DefaultOptions.
type Options struct {
	// Weights turn events into values.
	Weights models.EventWeights
	// Damping transforms summed weights.
	Damping Damping
	// Similarity is the user–user similarity.
	Similarity Similarity
	// Shrinkage is γ of the significance weight min(n, γ)/γ; 0 disables it.
	Shrinkage float64
	// MinCommon is the least number of co-rated items of two neighbours (≥ 1).
	MinCommon int
	// Neighbors is the neighbourhood size (≥ 1).
	Neighbors int
	// Ranking orders Recommend's candidates.
	Ranking Ranking
}

// Defaults of Options.
const (
	DefaultDamping    = LogDamping
	DefaultSimilarity = Pearson
	DefaultShrinkage  = 50
	DefaultMinCommon  = 2
	DefaultNeighbors  = 50
	DefaultRanking    = Expected
)

// DefaultOptions returns the defaults: the default event weights, log damping,
// Pearson, γ = 50, min_common 2, 50 neighbours, expected ranking. γ = 50 and
// log damping were tuned on a time split of the demo data.
func DefaultOptions() Options {
	return Options{
		Weights:    models.DefaultEventWeights(),
		Damping:    DefaultDamping,
		Similarity: DefaultSimilarity,
		Shrinkage:  DefaultShrinkage,
		MinCommon:  DefaultMinCommon,
		Neighbors:  DefaultNeighbors,
		Ranking:    DefaultRanking,
	}
}

// maxNeighbors bounds Options.Neighbors.
const maxNeighbors = 10000

// Validate reports the first invalid setting, naming its parameter.
func (o Options) Validate() error {
	switch {
	case o.Weights == nil:
		return fmt.Errorf("params.%s: missing", ParamEventWeights)
	case o.Damping != NoDamping && o.Damping != LogDamping:
		return fmt.Errorf("params.%s %q: want none or log", ParamDamping, o.Damping)
	case o.Similarity != Pearson && o.Similarity != Cosine:
		return fmt.Errorf("params.%s %q: want pearson or cosine", ParamSimilarity, o.Similarity)
	case math.IsNaN(o.Shrinkage) || math.IsInf(o.Shrinkage, 0) || o.Shrinkage < 0:
		return fmt.Errorf("params.%s %v: want a finite number ≥ 0", ParamShrinkage, o.Shrinkage)
	case o.MinCommon < 1:
		return fmt.Errorf("params.%s %d: want ≥ 1", ParamMinCommon, o.MinCommon)
	case o.Neighbors < 1 || o.Neighbors > maxNeighbors:
		return fmt.Errorf("params.%s %d: want 1..%d", ParamNeighbors, o.Neighbors, maxNeighbors)
	case o.Ranking != Pred && o.Ranking != Expected:
		return fmt.Errorf("params.%s %q: want expected or pred", ParamRanking, o.Ranking)
	}
	for ev, w := range o.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return fmt.Errorf("params.%s: weight of %s %v: want a finite number ≥ 0", ParamEventWeights, ev, w)
		}
	}
	return nil
}

// OptionsFromSpec reads the options from a spec's params, defaults for the
// absent ones, and validates them. Values may be typed (as model.yaml
// decodes them) or strings (as `--param k=v` gives them). Unknown keys are
// not checked here: the trainer rejects them, and a hand-written model.yaml
// may carry extra documentation keys.
func OptionsFromSpec(s models.Spec) (Options, error) {
	o := DefaultOptions()
	ew, err := s.ParamString(ParamEventWeights, "")
	if err != nil {
		return o, err
	}
	if o.Weights, err = models.ParseEventWeights(ew); err != nil {
		return o, fmt.Errorf("params.%s: %w", ParamEventWeights, err)
	}
	str := func(key string, def string) string {
		if err != nil {
			return ""
		}
		var v string
		v, err = s.ParamString(key, def)
		return v
	}
	o.Damping = Damping(str(ParamDamping, string(o.Damping)))
	o.Similarity = Similarity(str(ParamSimilarity, string(o.Similarity)))
	o.Ranking = Ranking(str(ParamRanking, string(o.Ranking)))
	if err != nil {
		return o, err
	}
	if o.Shrinkage, err = s.ParamFloat(ParamShrinkage, o.Shrinkage); err != nil {
		return o, err
	}
	if o.MinCommon, err = s.ParamInt(ParamMinCommon, o.MinCommon); err != nil {
		return o, err
	}
	if o.Neighbors, err = s.ParamInt(ParamNeighbors, o.Neighbors); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// Params returns o as model.yaml params, which OptionsFromSpec reads back.
func (o Options) Params() map[string]any {
	return map[string]any{
		ParamEventWeights: o.Weights.String(),
		ParamDamping:      string(o.Damping),
		ParamSimilarity:   string(o.Similarity),
		ParamShrinkage:    o.Shrinkage,
		ParamMinCommon:    o.MinCommon,
		ParamNeighbors:    o.Neighbors,
		ParamRanking:      string(o.Ranking),
	}
}

// Package content provides the content model kind: TF-IDF vectors of every
// catalogue item's title, description, category and brand, user profiles built
// from the vectors of the items a user touched, and cosine similarity between
// them.
//
// Because it needs only item text, the model covers every item of the
// catalogue, including items nobody has interacted with yet: it is how a new
// arrival reaches the shoppers whose history matches its description.
//
// Item vectors are L2-normalised sparse TF-IDF vectors (see Analyzer for the
// term frequencies and IDF for the weighting): w(t) = tf(t)·idf(t) / ‖·‖. A
// user's profile is the event-weighted mean of the vectors of the items in
// the history (models.EventWeights; optionally decayed by a half-life measured
// from the newest event in the history), L2-normalised, optionally cut to its
// heaviest terms. Every score is a cosine in [0, 1].
//
// Recommend and SimilarItems accumulate dot products through an inverted index
// (term → postings of item and weight) into a pooled dense score array, so
// their cost grows with the total length of the postings of the profile's
// terms (plus one pass over the scores when those postings touch a large
// share of the catalogue). The allow filter of a query is called only on the
// candidates that may make the top K, best first. A Model is safe for
// concurrent use.
//
// The model learns catalogue changes while it serves (LearnItems, see
// models.CatalogueLearner): a new or re-described item is vectorised with the
// model's own analyzer and IDF (terms outside the trained vocabulary are
// dropped, as TF-IDF must: the model has no idf for them) and a deleted item
// is forgotten. The trained index is never modified: the changes are kept
// in a small delta beside it (the new vectors, the deleted items), and a
// query corrects the scores of those items after the trained postings were
// accumulated, at a cost of the delta's vector lengths. Each change
// publishes a new immutable index (copy on write of the delta, an atomic
// pointer swap), so queries take no lock; with no delta a query pays one
// nil check. Once the delta holds more than a sixteenth of the catalogue
// (64 to 1024 items) the index is rebuilt with it folded in.
//
// The model's files are the binary artifact described at Save (model.yaml
// "file", default content.bin) and the item vocabulary (model.yaml "items",
// default items.txt). model.yaml params: event_weights ("view:1,cart:3,..."),
// half_life_days (>= 0, 0 = no decay) and profile_terms (>= 0, 0 = every
// term); unknown params are errors.
package content

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/vocab"
)

// Kind is the model.yaml kind of this family.
const Kind = "content"

// DefaultFile is the artifact name our trainer writes and Build reads when
// model.yaml names none.
const DefaultFile = "content.bin"

// Defaults of the serving options.
const (
	// DefaultHalfLifeDays is no decay: every event of the history counts by
	// its event weight alone.
	DefaultHalfLifeDays = 0
	// DefaultProfileTerms keeps the 256 heaviest profile terms: on the demo
	// data it costs no accuracy and bounds the cost of long histories.
	DefaultProfileTerms = 256
)

// Param names in model.yaml.
const (
	ParamEventWeights = "event_weights"
	ParamHalfLifeDays = "half_life_days"
	ParamProfileTerms = "profile_terms"
)

// Options are the serving settings of a model.
type Options struct {
	// Weights per event kind; nil means models.DefaultEventWeights.
	// Interactions of non-positive or non-finite weight are ignored.
	Weights models.EventWeights
	// HalfLifeDays, when positive, multiplies each interaction's weight by
	// 2^(-age/half-life), age measured from the newest event of the history.
	HalfLifeDays float64
	// ProfileTerms, when positive, keeps only that many of the heaviest
	// profile terms (ties to the smaller term index) before normalising.
	ProfileTerms int
}

// DefaultOptions are the settings Build uses for absent params.
func DefaultOptions() Options {
	return Options{Weights: models.DefaultEventWeights(), HalfLifeDays: DefaultHalfLifeDays, ProfileTerms: DefaultProfileTerms}
}

func (o Options) validate() error {
	for ev, w := range o.Weights {
		if math.IsNaN(w) || math.IsInf(w, 0) || w < 0 {
			return fmt.Errorf("params.%s: %s weight %v: want a finite number >= 0", ParamEventWeights, ev, w)
		}
	}
	if math.IsNaN(o.HalfLifeDays) || math.IsInf(o.HalfLifeDays, 0) || o.HalfLifeDays < 0 {
		return fmt.Errorf("params.%s: %v: want a finite number >= 0", ParamHalfLifeDays, o.HalfLifeDays)
	}
	if o.ProfileTerms < 0 {
		return fmt.Errorf("params.%s: %d: want an integer >= 0", ParamProfileTerms, o.ProfileTerms)
	}
	return nil
}

// Params returns o as model.yaml params, the form ParseOptions reads.
func (o Options) Params() map[string]any {
	w := o.Weights
	if w == nil {
		w = models.DefaultEventWeights()
	}
	return map[string]any{
		ParamEventWeights: w.String(),
		ParamHalfLifeDays: o.HalfLifeDays,
		ParamProfileTerms: o.ProfileTerms,
	}
}

// ParseOptions reads the serving options from model.yaml params; absent keys
// take DefaultOptions, unknown keys and invalid values are errors. Values may
// be strings, as --param flags are.
func ParseOptions(params map[string]any) (Options, error) {
	var unknown []string
	for k := range params {
		switch k {
		case ParamEventWeights, ParamHalfLifeDays, ParamProfileTerms:
		default:
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return Options{}, fmt.Errorf("unknown params %s (known: %s, %s, %s)", strings.Join(unknown, ", "),
			ParamEventWeights, ParamHalfLifeDays, ParamProfileTerms)
	}
	spec := models.Spec{Params: params}
	o := DefaultOptions()
	ws, err := spec.ParamString(ParamEventWeights, "")
	if err != nil {
		return Options{}, err
	}
	if o.Weights, err = models.ParseEventWeights(ws); err != nil {
		return Options{}, fmt.Errorf("params.%s: %w", ParamEventWeights, err)
	}
	if o.HalfLifeDays, err = spec.ParamFloat(ParamHalfLifeDays, DefaultHalfLifeDays); err != nil {
		return Options{}, err
	}
	if o.ProfileTerms, err = spec.ParamInt(ParamProfileTerms, DefaultProfileTerms); err != nil {
		return Options{}, err
	}
	return o, o.validate()
}

// Vector is a sparse vector over a model's terms: Terms strictly ascending,
// Weights aligned with them.
type Vector struct {
	Terms   []int32
	Weights []float32
}

// core is a content model's index as one query reads it: the trained
// vectors and postings, plus what was learned from the catalogue since
// (delta, nil when nothing was). It is immutable; Model publishes a new one
// for every change.
type core struct {
	items    *vocab.Vocab
	terms    []string  // term index → term, strictly ascending
	idf      []float32 // term index → idf
	analyzer Analyzer
	opts     Options

	// Item vectors, compressed rows: item i has terms rowTerm[rowPtr[i]:rowPtr[i+1]].
	rowPtr  []int
	rowTerm []int32
	rowW    []float32
	// Postings, compressed columns: term t occurs in items postItem[postPtr[t]:postPtr[t+1]],
	// ascending.
	postPtr  []int
	postItem []int32
	postW    []float32

	delta *delta     // items added, re-described or deleted since; nil: none
	pool  *sync.Pool // *scratch, shared by the cores of a Model
}

var (
	_ models.Recommender    = (*Model)(nil)
	_ models.Scorer         = (*Model)(nil)
	_ models.ItemSimilarity = (*Model)(nil)
)

// normTolerance is how far from 1 the squared norm of a stored vector may be.
const normTolerance = 1e-3

// New builds a model over items (vector i belongs to item index i) with the
// term dictionary terms (strictly ascending, unique, non-empty), their idf
// (finite, positive), the item vectors (unit L2 norm, or empty for an item
// without text; weights finite and positive), the analyzer that produced
// them and the serving options. The model keeps terms and idf, which the
// caller must not modify afterwards; the vectors and options are copied.
func New(items *vocab.Vocab, terms []string, idf []float32, vectors []Vector, a Analyzer, o Options) (*Model, error) {
	c, err := newCore(items, terms, idf, vectors, a, o)
	if err != nil {
		return nil, err
	}
	return newModel(c), nil
}

// newCore is New without the Model around the index.
func newCore(items *vocab.Vocab, terms []string, idf []float32, vectors []Vector, a Analyzer, o Options) (*core, error) {
	if items == nil {
		return nil, errors.New("nil item vocabulary")
	}
	if len(vectors) != items.Len() {
		return nil, fmt.Errorf("%d item vectors for %d items", len(vectors), items.Len())
	}
	nnz := 0
	for i, v := range vectors {
		if len(v.Terms) != len(v.Weights) {
			return nil, fmt.Errorf("item %q: %d terms but %d weights", items.ID(int32(i)), len(v.Terms), len(v.Weights))
		}
		nnz += len(v.Terms)
	}
	rowPtr := make([]int, len(vectors)+1)
	rowTerm := make([]int32, 0, nnz)
	rowW := make([]float32, 0, nnz)
	for i, v := range vectors {
		rowTerm = append(rowTerm, v.Terms...)
		rowW = append(rowW, v.Weights...)
		rowPtr[i+1] = len(rowTerm)
	}
	return build(items, terms, idf, rowPtr, rowTerm, rowW, a, o)
}

// build validates the compressed rows and indexes them; it never panics on
// bad input.
func build(items *vocab.Vocab, terms []string, idf []float32, rowPtr []int, rowTerm []int32, rowW []float32, a Analyzer, o Options) (*core, error) {
	o.Weights = maps.Clone(o.Weights)
	if o.Weights == nil {
		o.Weights = models.DefaultEventWeights()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := a.Fields.Validate(); err != nil {
		return nil, fmt.Errorf("analyzer: %w", err)
	}
	if len(idf) != len(terms) {
		return nil, fmt.Errorf("%d idf values for %d terms", len(idf), len(terms))
	}
	if len(terms) > math.MaxInt32 || items.Len() > math.MaxInt32 {
		return nil, errors.New("too many terms or items")
	}
	for t, term := range terms {
		if term == "" || !utf8.ValidString(term) {
			return nil, fmt.Errorf("term %d: %q is empty or not UTF-8", t, term)
		}
		if t > 0 && terms[t-1] >= term {
			return nil, fmt.Errorf("term %d: %q is not after %q (terms must be strictly ascending)", t, term, terms[t-1])
		}
		if x := idf[t]; !(x > 0) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("term %q: idf %v: want a finite number > 0", term, x)
		}
	}
	if len(rowPtr) != items.Len()+1 || rowPtr[0] != 0 || rowPtr[len(rowPtr)-1] != len(rowTerm) || len(rowW) != len(rowTerm) {
		return nil, errors.New("item vectors do not match the item count")
	}
	count := make([]int, len(terms)+1)
	for i := range items.Len() {
		lo, hi := rowPtr[i], rowPtr[i+1]
		if lo > hi {
			return nil, fmt.Errorf("item %q: bad vector bounds", items.ID(int32(i)))
		}
		ss := 0.0
		for j := lo; j < hi; j++ {
			t, w := rowTerm[j], rowW[j]
			if t < 0 || int(t) >= len(terms) {
				return nil, fmt.Errorf("item %q: term index %d out of range [0,%d)", items.ID(int32(i)), t, len(terms))
			}
			if j > lo && rowTerm[j-1] >= t {
				return nil, fmt.Errorf("item %q: term indices not strictly ascending", items.ID(int32(i)))
			}
			if !(w > 0) || math.IsInf(float64(w), 0) {
				return nil, fmt.Errorf("item %q: term %q weight %v: want a finite number > 0", items.ID(int32(i)), terms[t], w)
			}
			ss += float64(w) * float64(w)
			count[t+1]++
		}
		if hi > lo && math.Abs(ss-1) > normTolerance {
			return nil, fmt.Errorf("item %q: vector norm %.6f: want 1 (L2-normalised)", items.ID(int32(i)), math.Sqrt(ss))
		}
	}
	for t := range terms {
		count[t+1] += count[t]
	}
	m := &core{
		items: items, terms: terms, idf: idf, analyzer: a, opts: o,
		rowPtr: rowPtr, rowTerm: rowTerm, rowW: rowW,
		postPtr:  count,
		postItem: make([]int32, len(rowTerm)),
		postW:    make([]float32, len(rowTerm)),
	}
	next := slices.Clone(count[:len(terms)])
	for i := range items.Len() {
		for j := rowPtr[i]; j < rowPtr[i+1]; j++ {
			t := rowTerm[j]
			m.postItem[next[t]] = int32(i)
			m.postW[next[t]] = rowW[j]
			next[t]++
		}
	}
	m.pool = newPool(len(terms))
	return m, nil
}

// newPool returns the scratch pool of a model of nTerms terms. The item
// scores array grows to the item count on first use (getScratch): a model
// that learns items has more of them than it was built with.
func newPool(nTerms int) *sync.Pool {
	return &sync.Pool{New: func() any {
		return &scratch{acc: make([]float64, nTerms), prof: make([]float32, nTerms)}
	}}
}

// WithOptions returns a model sharing m's vectors and index, and what m
// learned so far, served with o (nil Weights means
// models.DefaultEventWeights). It learns on its own from then on.
func (m *Model) WithOptions(o Options) (*Model, error) {
	o.Weights = maps.Clone(o.Weights)
	if o.Weights == nil {
		o.Weights = models.DefaultEventWeights()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	c := *m.cur.Load()
	c.opts = o
	c.pool = newPool(len(c.terms))
	return newModel(&c), nil
}

// Items returns the item vocabulary of the index as last built (at load or
// at the last fold of learned items, see LearnItems); item index i has
// vector i, as Save writes them. Items learned since the last fold are not
// in it.
func (m *Model) Items() *vocab.Vocab { return m.cur.Load().items }

// Terms returns the term dictionary, strictly ascending. The slice must not
// be modified.
func (m *Model) Terms() []string { return m.cur.Load().terms }

// IDF returns the idf of each term, aligned with Terms. The slice must not be
// modified.
func (m *Model) IDF() []float32 { return m.cur.Load().idf }

// Analyzer returns the analysis the item vectors were built with.
func (m *Model) Analyzer() Analyzer { return m.cur.Load().analyzer }

// Options returns the serving options.
func (m *Model) Options() Options {
	o := m.cur.Load().opts
	o.Weights = maps.Clone(o.Weights)
	return o
}

// vector returns the vector of item index i, sharing the model's memory.
func (m *core) vector(i int32) Vector {
	t, w := m.row(i)
	return Vector{Terms: t[:len(t):len(t)], Weights: w[:len(w):len(w)]}
}

// Weights returns itemID's vector as term → weight, for inspection; false for
// an unknown item. Items learned from the catalogue count.
func (m *Model) Weights(itemID string) (map[string]float64, bool) {
	return m.cur.Load().weights(itemID)
}

func (m *core) weights(itemID string) (map[string]float64, bool) {
	i, ok := m.lookup(itemID)
	if !ok {
		return nil, false
	}
	v := m.vector(i)
	out := make(map[string]float64, len(v.Terms))
	for j, t := range v.Terms {
		out[m.terms[t]] = float64(v.Weights[j])
	}
	return out, true
}

// Similarity is the cosine similarity of items a and b, in [0, 1]; an unknown
// item is an error wrapping models.ErrNotFound. It is symmetric.
func (m *Model) Similarity(a, b string) (float64, error) {
	return m.cur.Load().similarity(a, b)
}

func (m *core) similarity(a, b string) (float64, error) {
	i, ok := m.lookup(a)
	if !ok {
		return 0, fmt.Errorf("item %q: %w", a, models.ErrNotFound)
	}
	j, ok := m.lookup(b)
	if !ok {
		return 0, fmt.Errorf("item %q: %w", b, models.ErrNotFound)
	}
	va, vb := m.vector(i), m.vector(j)
	var sum float32
	for x, y := 0, 0; x < len(va.Terms) && y < len(vb.Terms); {
		switch ta, tb := va.Terms[x], vb.Terms[y]; {
		case ta < tb:
			x++
		case ta > tb:
			y++
		default:
			sum += float32(va.Weights[x] * vb.Weights[y])
			x++
			y++
		}
	}
	return float64(sum), nil
}

// Close implements models.Model; the model holds no resources.
func (m *Model) Close() error { return nil }

// Build is the models.Builder of this kind: it reads the vocabulary named by
// model.yaml "items" (default items.txt), the artifact named by "file"
// (default content.bin) and the serving params.
func Build(ctx context.Context, _ models.Env, v models.Version) (models.Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o, err := ParseOptions(v.Spec.Params)
	if err != nil {
		return nil, err
	}
	itemsName := v.Spec.Items
	if itemsName == "" {
		itemsName = vocab.DefaultFile
	}
	itemsPath, err := models.Path(v.Dir, itemsName)
	if err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}
	name := v.Spec.File
	if name == "" {
		name = DefaultFile
	}
	path, err := models.Path(v.Dir, name)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	items, err := vocab.ReadFile(itemsPath)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Load(f, items, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Package popularity provides the popularity recommender: items ranked by
// (optionally time-decayed, event-weighted) interaction counts, globally or
// within the categories a user shows interest in. It is the cold-start fallback
// of every route and the baseline every other model must beat.
package popularity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
)

// Kind is the model.yaml kind of this family.
const Kind = "popularity"

// DefaultFile is the artifact name our trainer writes.
const DefaultFile = "popularity.json"

// Scope selects how Recommend personalises.
type Scope string

const (
	// Global ranks every user's candidates by global popularity.
	Global Scope = "global"
	// Category ranks items of the categories in the user's history first, by
	// popularity weighted by the share of the history each category has; the
	// most popular items of other categories follow when those run short.
	Category Scope = "category"
)

// Entry is one item's popularity.
type Entry struct {
	ItemID   string  `json:"id"`
	Category string  `json:"category,omitempty"`
	Score    float64 `json:"score"`
}

// artifact is the on-disk JSON layout: {"items":[{"id":…,"category":…,"score":…}]}.
type artifact struct {
	Items []Entry `json:"items"`
}

// Model is a trained popularity table. It is immutable and safe for concurrent
// use.
type Model struct {
	scope      Scope
	ranked     []Entry          // descending score, ties by id
	index      map[string]int   // item id → position in ranked
	byCategory map[string][]int // category → positions in ranked, descending
	max        float64
}

var (
	_ models.Recommender = (*Model)(nil)
	_ models.Scorer      = (*Model)(nil)
)

// New builds a model from entries (any order; scores must be finite and
// non-negative, ids unique).
func New(entries []Entry, scope Scope) (*Model, error) {
	switch scope {
	case "":
		scope = Global
	case Global, Category:
	default:
		return nil, fmt.Errorf("scope %q: want global or category", scope)
	}
	m := &Model{
		scope:      scope,
		ranked:     append([]Entry(nil), entries...),
		index:      make(map[string]int, len(entries)),
		byCategory: map[string][]int{},
	}
	sort.Slice(m.ranked, func(i, j int) bool {
		a, b := m.ranked[i], m.ranked[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.ItemID < b.ItemID
	})
	for i, e := range m.ranked {
		if e.ItemID == "" {
			return nil, fmt.Errorf("entry %d: empty item id", i)
		}
		if math.IsNaN(e.Score) || math.IsInf(e.Score, 0) || e.Score < 0 {
			return nil, fmt.Errorf("item %q: score %v must be finite and non-negative", e.ItemID, e.Score)
		}
		if _, dup := m.index[e.ItemID]; dup {
			return nil, fmt.Errorf("item %q: duplicate", e.ItemID)
		}
		m.index[e.ItemID] = i
		m.byCategory[e.Category] = append(m.byCategory[e.Category], i)
		m.max = max(m.max, e.Score)
	}
	return m, nil
}

// Load reads a model saved by Save.
func Load(r io.Reader, scope Scope) (*Model, error) {
	var a artifact
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("decode popularity table: %w", err)
	}
	return New(a.Items, scope)
}

// Save writes the model's table as JSON, most popular first.
func (m *Model) Save(w io.Writer) error {
	enc := json.NewEncoder(w)
	return enc.Encode(artifact{Items: m.ranked})
}

// Entries returns the table, most popular first. The slice must not be
// modified.
func (m *Model) Entries() []Entry { return m.ranked }

// Build is the models.Builder of this kind: it reads the file named by the
// spec (default popularity.json) and params.scope.
func Build(_ context.Context, _ models.Env, v models.Version) (models.Model, error) {
	name := v.Spec.File
	if name == "" {
		name = DefaultFile
	}
	path, err := models.Path(v.Dir, name)
	if err != nil {
		return nil, err
	}
	scope, err := v.Spec.ParamString("scope", string(Global))
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Load(f, Scope(scope))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Close implements models.Model; the table holds no resources.
func (m *Model) Close() error { return nil }

// Recommend returns the most popular allowed items, personalised by category
// in Category scope.
func (m *Model) Recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 {
		return nil, nil
	}
	if m.scope == Category {
		if shares := m.categoryShares(q); len(shares) > 0 {
			return m.recommendByCategory(q, shares), nil
		}
	}
	c := topk.New(q.K)
	m.walk(c, nil, 0, 1, q)
	return c.Sorted(), nil
}

// walk pushes allowed items from positions (nil = all, in rank order) scored
// offset+weight*norm, stopping after q.K of them: positions are in descending
// score.
func (m *Model) walk(c *topk.Collector, positions []int, offset, weight float64, q models.Query) {
	n := len(m.ranked)
	if positions != nil {
		n = len(positions)
	}
	taken := 0
	for i := 0; i < n && taken < q.K; i++ {
		p := i
		if positions != nil {
			p = positions[i]
		}
		e := m.ranked[p]
		if !q.Allowed(e.ItemID) {
			continue
		}
		c.Push(e.ItemID, offset+weight*m.norm(e.Score))
		taken++
	}
}

func (m *Model) norm(s float64) float64 {
	if m.max == 0 {
		return 0
	}
	return s / m.max
}

// categoryShares is the fraction of q's known history in each category.
func (m *Model) categoryShares(q models.Query) map[string]float64 {
	shares := map[string]float64{}
	total := 0.0
	for _, in := range q.History {
		p, ok := m.index[in.ItemID]
		if !ok {
			continue
		}
		shares[m.ranked[p].Category]++
		total++
	}
	for c := range shares {
		shares[c] /= total
	}
	return shares
}

func (m *Model) recommendByCategory(q models.Query, shares map[string]float64) []models.Scored {
	c := topk.New(q.K)
	cats := make([]string, 0, len(shares))
	for cat := range shares {
		cats = append(cats, cat)
	}
	sort.Strings(cats) // deterministic push order
	// Items of the user's categories score 1 + share × popularity, so they
	// rank above the fill from other categories (scored at most 1/2), however
	// long the popularity tail: a share-weighted score alone would let a hugely
	// popular untouched item outrank a niche category the user lives in.
	for _, cat := range cats {
		m.walk(c, m.byCategory[cat], 1, shares[cat], q)
	}
	if c.Full() {
		return c.Sorted()
	}
	taken := c.Len()
	for _, e := range m.ranked {
		if taken >= q.K {
			break
		}
		if _, preferred := shares[e.Category]; preferred || !q.Allowed(e.ItemID) {
			continue
		}
		c.Push(e.ItemID, m.norm(e.Score)/2)
		taken++
	}
	return c.Sorted()
}

// Score returns each item's popularity scaled to [0,1]; unknown items score 0.
func (m *Model) Score(ctx context.Context, _ models.Query, itemIDs []string) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]float64, len(itemIDs))
	for i, id := range itemIDs {
		if p, ok := m.index[id]; ok {
			out[i] = m.norm(m.ranked[p].Score)
		}
	}
	return out, nil
}

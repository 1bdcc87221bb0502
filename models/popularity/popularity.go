// Package popularity provides the popularity recommender: items ranked by
// (optionally time-decayed, event-weighted) interaction counts, globally or
// within the categories a user shows interest in. It is the cold-start fallback
// of every route and the baseline every other model must beat.
//
// # Online counts
//
// A trained table scores item i as Σ weight·2^(-age/h) over its events, age
// measured from T0, the newest event of the training data (h = 0: no decay).
// The model keeps counting while it serves (LearnInteractions, see
// models.InteractionLearner): an event at time t adds weight·2^((t−T0)/h) to
// its item. That is the from-scratch score multiplied by 2^((now−T0)/h), a
// factor common to every item, so the ranking and the normalised scores are
// the ones a retraining on the same events would give, without rescaling
// every item at every event. T0 comes from the artifact ("newest_event"); a
// table written before it existed has none, and the model then takes the
// time of the first event it learns as T0, treating the trained scores as
// current at that moment.
//
// The trained ranking is immutable. Learned counts go to an overlay of
// cells, one per item touched since the last fold, each holding the item's
// current score; scores only grow. A query walks the ranking, skipping items
// that have a cell, and offers the cells as well: O(K + overlay) per query.
// Once the overlay holds more than a sixteenth of the catalogue (at least
// 256, at most 4096 items) the writer folds it into a new ranking, copy on
// write, and publishes it with an atomic pointer: O(catalogue) per fold,
// amortised over the items folded. A fold also rebases T0 to the newest
// event seen (multiplying every score by the same factor), so the weights of
// new events stay within floating-point range however long the model
// serves. Items the trained table does not know enter through their events;
// they have no category.
package popularity

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
)

// Kind is the model.yaml kind of this family.
const Kind = "popularity"

// DefaultFile is the artifact name our trainer writes.
const DefaultFile = "popularity.json"

// Param names in model.yaml, as the trainer writes them.
const (
	ParamScope        = "scope"
	ParamHalfLifeDays = "half_life_days"
	ParamEventWeights = "event_weights"
)

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

// artifact is the on-disk JSON layout:
// {"items":[{"id":…,"category":…,"score":…}],"newest_event":…}.
// newest_event (Unix seconds, T0) is absent in tables written before online
// learning existed; they still load.
type artifact struct {
	Items       []Entry `json:"items"`
	NewestEvent *int64  `json:"newest_event,omitempty"`
}

// Options are how a model ranks and how it learns online.
type Options struct {
	// Scope is Global (the default) or Category.
	Scope Scope
	// HalfLifeDays is the half-life the table was decayed with (0: no
	// decay); learned events decay the same way.
	HalfLifeDays float64
	// Weights weigh learned events, as the trainer weighed the trained
	// ones; nil means models.DefaultEventWeights.
	Weights models.EventWeights
	// NewestEvent is T0, the time the trained scores were decayed to; the
	// zero Time means unknown (see the package documentation).
	NewestEvent time.Time
}

// Fold bounds of the overlay: it is folded into the ranking once it holds
// more than a sixteenth of the catalogue, within these bounds. The lower
// bound keeps a small catalogue from folding at every event; the upper one
// bounds what a query scans.
const (
	foldMin = 256
	foldMax = 4096
	// rebaseAfter is how many half-lives past T0 a learned event may be
	// before the next batch folds (and so rebases T0): 2^64 is far from
	// overflowing a float64 yet keeps the trained scores' precision.
	rebaseAfter = 64
)

// Model is a popularity table that keeps counting online. It is safe for
// concurrent use: queries read an immutable ranking and atomic overlay
// cells, learning is serialised by a mutex.
type Model struct {
	scope    Scope
	halfLife float64 // days; 0: no decay
	weights  models.EventWeights

	cur atomic.Pointer[table]

	mu     sync.Mutex // serialises LearnInteractions, folds and snapshots
	t0     int64      // guarded by mu: the time scores are relative to
	hasT0  bool       // guarded by mu
	newest int64      // guarded by mu: the newest event learned
}

// table is an immutable ranking plus the overlay of what was learned since
// it was built. Slots number the items; a slot never changes meaning.
type table struct {
	ids        []string         // slot → item id
	cats       []string         // slot → category
	trained    int              // slots below are items of the trained table
	index      map[string]int32 // trained item id → slot; shared by every table
	extra      map[string]int32 // id → slot of items learned and folded since
	score      []float64        // slot → score when the table was built
	ranked     []int32          // slots by descending score, ties by id
	byCategory map[string][]int32
	max        float64
	t0         int64 // T0 of score, for Save
	hasT0      bool
	foldAt     int

	ov overlay
}

// overlay is what was learned since its table was built. The writer (under
// Model.mu) creates cells and raises their scores; readers load them
// atomically.
type overlay struct {
	cells []atomic.Pointer[cell]  // slot → the slot's cell, nil if untouched
	list  atomic.Pointer[[]*cell] // every cell, in creation order
	fresh sync.Map                // id → *cell of items the table has no slot for
	max   atomic.Uint64           // bits of the highest cell score
	added map[string]*cell        // guarded by Model.mu: fresh, for the writer
}

// cell is one item's current score in an overlay.
type cell struct {
	id    string
	cat   string
	slot  int32 // -1: an item the table does not know
	seq   int32 // position in the overlay's list
	score atomic.Uint64
}

func (c *cell) load() float64 { return math.Float64frombits(c.score.Load()) }

var (
	_ models.Recommender        = (*Model)(nil)
	_ models.Scorer             = (*Model)(nil)
	_ models.InteractionLearner = (*Model)(nil)
)

// New builds a model from entries (any order; scores must be finite and
// non-negative, ids unique) that learns with the default options of scope.
func New(entries []Entry, scope Scope) (*Model, error) {
	return NewWithOptions(entries, Options{Scope: scope})
}

// NewWithOptions builds a model from entries with o.
func NewWithOptions(entries []Entry, o Options) (*Model, error) {
	switch o.Scope {
	case "":
		o.Scope = Global
	case Global, Category:
	default:
		return nil, fmt.Errorf("scope %q: want global or category", o.Scope)
	}
	if math.IsNaN(o.HalfLifeDays) || math.IsInf(o.HalfLifeDays, 0) || o.HalfLifeDays < 0 {
		return nil, fmt.Errorf("half-life %v days: want a finite number >= 0", o.HalfLifeDays)
	}
	w := maps.Clone(o.Weights)
	if w == nil {
		w = models.DefaultEventWeights()
	}
	for ev, x := range w {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return nil, fmt.Errorf("%s weight %v: want a finite number >= 0", ev, x)
		}
	}
	ranked := slices.Clone(entries)
	sort.Slice(ranked, func(i, j int) bool { return better(ranked[i], ranked[j]) })
	t := &table{
		ids:     make([]string, len(ranked)),
		cats:    make([]string, len(ranked)),
		trained: len(ranked),
		index:   make(map[string]int32, len(ranked)),
		score:   make([]float64, len(ranked)),
		ranked:  make([]int32, len(ranked)),
	}
	for i, e := range ranked {
		if e.ItemID == "" {
			return nil, fmt.Errorf("entry %d: empty item id", i)
		}
		if math.IsNaN(e.Score) || math.IsInf(e.Score, 0) || e.Score < 0 {
			return nil, fmt.Errorf("item %q: score %v must be finite and non-negative", e.ItemID, e.Score)
		}
		if _, dup := t.index[e.ItemID]; dup {
			return nil, fmt.Errorf("item %q: duplicate", e.ItemID)
		}
		t.ids[i], t.cats[i], t.score[i], t.ranked[i] = e.ItemID, e.Category, e.Score, int32(i)
		t.index[e.ItemID] = int32(i)
	}
	m := &Model{scope: o.Scope, halfLife: o.HalfLifeDays, weights: w}
	if !o.NewestEvent.IsZero() {
		m.t0, m.hasT0 = o.NewestEvent.Unix(), true
		m.newest = m.t0
	}
	t.t0, t.hasT0 = m.t0, m.hasT0
	t.finish()
	m.cur.Store(t)
	return m, nil
}

// better orders entries by descending score, ties by id.
func better(a, b Entry) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.ItemID < b.ItemID
}

// finish derives what a table's ranking determines (categories, maximum,
// fold threshold) and gives it an empty overlay.
func (t *table) finish() {
	t.byCategory = map[string][]int32{}
	for _, s := range t.ranked {
		t.byCategory[t.cats[s]] = append(t.byCategory[t.cats[s]], s)
	}
	t.max = 0
	if len(t.ranked) > 0 {
		t.max = t.score[t.ranked[0]]
	}
	t.foldAt = min(max(len(t.ids)/16, foldMin), foldMax)
	t.ov = overlay{cells: make([]atomic.Pointer[cell], len(t.ids)), added: map[string]*cell{}}
	t.ov.list.Store(new([]*cell))
}

// Load reads a model saved by Save, served and learning with o; the
// artifact's newest_event, when present, is T0 (o.NewestEvent is ignored).
func Load(r io.Reader, o Options) (*Model, error) {
	var a artifact
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("decode popularity table: %w", err)
	}
	o.NewestEvent = time.Time{}
	if a.NewestEvent != nil {
		o.NewestEvent = time.Unix(*a.NewestEvent, 0)
	}
	return NewWithOptions(a.Items, o)
}

// Save writes the model's table as JSON, most popular first, with T0 when
// the model knows it. Learned counts are included.
func (m *Model) Save(w io.Writer) error {
	a := artifact{Items: m.Entries()}
	m.mu.Lock()
	if m.hasT0 {
		t0 := m.t0
		a.NewestEvent = &t0
	}
	m.mu.Unlock()
	return json.NewEncoder(w).Encode(a)
}

// Entries returns the table with what was learned online, most popular
// first, scores relative to the current T0. It copies the table: it is for
// saving and inspection, not for queries.
func (m *Model) Entries() []Entry {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.cur.Load()
	ids, cats, score, ranked := t.merged()
	out := make([]Entry, len(ranked))
	for i, s := range ranked {
		out[i] = Entry{ItemID: ids[s], Category: cats[s], Score: score[s]}
	}
	return out
}

// Build is the models.Builder of this kind: it reads the file named by the
// spec (default popularity.json) and params scope, half_life_days and
// event_weights (absent: global, no decay, the default weights), as the
// trainer writes them.
func Build(_ context.Context, _ models.Env, v models.Version) (models.Model, error) {
	name := v.Spec.File
	if name == "" {
		name = DefaultFile
	}
	path, err := models.Path(v.Dir, name)
	if err != nil {
		return nil, err
	}
	scope, err := v.Spec.ParamString(ParamScope, string(Global))
	if err != nil {
		return nil, err
	}
	o := Options{Scope: Scope(scope)}
	if o.HalfLifeDays, err = v.Spec.ParamFloat(ParamHalfLifeDays, 0); err != nil {
		return nil, err
	}
	ws, err := v.Spec.ParamString(ParamEventWeights, "")
	if err != nil {
		return nil, err
	}
	if o.Weights, err = models.ParseEventWeights(ws); err != nil {
		return nil, fmt.Errorf("params.%s: %w", ParamEventWeights, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := Load(f, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Close implements models.Model; the table holds no resources.
func (m *Model) Close() error { return nil }

// LearnInteractions implements models.InteractionLearner: each event adds
// weight·2^((t−T0)/h) to its item (see the package documentation), visible
// to the next query. Events of non-positive weight are ignored. It costs
// O(1) per event plus, when the overlay outgrows its bound, one fold.
func (m *Model) LearnInteractions(in []dataset.Interaction) {
	if len(in) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.cur.Load()
	list := *t.ov.list.Load()
	published := len(list)
	top := math.Float64frombits(t.ov.max.Load())
	rebase := false
	for _, x := range in {
		w := m.weights.Of(x)
		if m.halfLife > 0 {
			if !m.hasT0 {
				m.t0, m.hasT0, m.newest = x.Timestamp, true, x.Timestamp
			}
			halfLives := float64(x.Timestamp-m.t0) / 86400 / m.halfLife
			w *= math.Exp2(halfLives)
			rebase = rebase || halfLives > rebaseAfter
			m.newest = max(m.newest, x.Timestamp)
		}
		if !(w > 0) || math.IsInf(w, 0) {
			continue
		}
		var c *cell
		list, c = t.ov.cellFor(t, x.ItemID, list)
		s := c.load() + w
		c.score.Store(math.Float64bits(s))
		top = max(top, s)
	}
	t.ov.max.Store(math.Float64bits(top))
	if len(list) != published {
		t.ov.list.Store(&list)
	}
	if len(list) > t.foldAt || rebase {
		m.fold(t)
	}
}

// cellFor returns id's cell, creating it (with the item's current score,
// appended to list) if the overlay has none. Called under Model.mu.
func (o *overlay) cellFor(t *table, id string, list []*cell) ([]*cell, *cell) {
	if s, ok := t.slot(id); ok {
		if c := o.cells[s].Load(); c != nil {
			return list, c
		}
		c := &cell{id: id, cat: t.cats[s], slot: s, seq: int32(len(list))}
		c.score.Store(math.Float64bits(t.score[s]))
		o.cells[s].Store(c)
		return append(list, c), c
	}
	if c := o.added[id]; c != nil {
		return list, c
	}
	c := &cell{id: id, slot: -1, seq: int32(len(list))}
	o.added[id] = c
	o.fresh.Store(id, c)
	return append(list, c), c
}

// merged returns the table's slots with the overlay folded in: ids,
// categories and scores by slot (new items get new slots) and the slots by
// descending score, ties by id. Called under Model.mu.
func (t *table) merged() (ids, cats []string, score []float64, ranked []int32) {
	list := *t.ov.list.Load()
	ids, cats, score = slices.Clone(t.ids), slices.Clone(t.cats), slices.Clone(t.score)
	touched := make([]int32, 0, len(list))
	for _, c := range list {
		s := c.slot
		if s < 0 {
			s = int32(len(ids))
			ids, cats, score = append(ids, c.id), append(cats, ""), append(score, 0)
		}
		score[s] = c.load()
		touched = append(touched, s)
	}
	order := func(a, b int32) int { return rankCmp(score, ids, a, b) }
	slices.SortFunc(touched, order)
	// The untouched slots keep their order: merge the two sorted runs.
	ranked = make([]int32, 0, len(ids))
	i := 0
	for _, s := range t.ranked {
		if t.ov.cells[s].Load() != nil {
			continue
		}
		for i < len(touched) && order(touched[i], s) < 0 {
			ranked = append(ranked, touched[i])
			i++
		}
		ranked = append(ranked, s)
	}
	ranked = append(ranked, touched[i:]...)
	return ids, cats, score, ranked
}

// fold publishes a new table holding t's overlay, rebased to the newest
// event learned. Called under Model.mu; queries keep reading t meanwhile.
func (m *Model) fold(t *table) {
	ids, cats, score, ranked := t.merged()
	n := &table{ids: ids, cats: cats, trained: t.trained, score: score, ranked: ranked}
	if m.halfLife > 0 && m.hasT0 && m.newest > m.t0 {
		f := math.Exp2(-float64(m.newest-m.t0) / 86400 / m.halfLife)
		for i := range score {
			score[i] *= f
		}
		m.t0 = m.newest
		// Multiplying by f keeps the order but may create ties the ids
		// must break.
		if !slices.IsSortedFunc(ranked, func(a, b int32) int { return rankCmp(score, ids, a, b) }) {
			slices.SortFunc(ranked, func(a, b int32) int { return rankCmp(score, ids, a, b) })
		}
	}
	n.t0, n.hasT0 = m.t0, m.hasT0
	n.index, n.extra = t.index, t.extra
	if len(ids) > len(t.ids) {
		n.extra = make(map[string]int32, len(ids)-t.trained)
		maps.Copy(n.extra, t.extra)
		for s := len(t.ids); s < len(ids); s++ {
			n.extra[ids[s]] = int32(s)
		}
	}
	n.finish()
	m.cur.Store(n)
}

// rankCmp orders slots by descending score, ties by id.
func rankCmp(score []float64, ids []string, a, b int32) int {
	if c := cmp.Compare(score[b], score[a]); c != 0 {
		return c
	}
	return cmp.Compare(ids[a], ids[b])
}

// slot returns id's slot.
func (t *table) slot(id string) (int32, bool) {
	if s, ok := t.index[id]; ok {
		return s, true
	}
	s, ok := t.extra[id]
	return s, ok
}

// view is one query's consistent reading of a table: the overlay cells that
// existed when it began, and the maximum score to normalise by.
type view struct {
	t     *table
	cells []*cell
	top   float64
}

func (m *Model) view() view {
	t := m.cur.Load()
	cells := *t.ov.list.Load()
	return view{t: t, cells: cells, top: max(t.max, math.Float64frombits(t.ov.max.Load()))}
}

// stale reports whether slot s has a cell of the view: its ranked entry is
// out of date and the cell stands for it.
func (v *view) stale(s int32) bool {
	c := v.t.ov.cells[s].Load()
	return c != nil && int(c.seq) < len(v.cells)
}

// norm scales a score to [0, 1] by the view's maximum. A cell may have grown
// past the maximum the view read, hence the clamp.
func (v *view) norm(s float64) float64 {
	if v.top == 0 {
		return 0
	}
	return min(s/v.top, 1)
}

// Recommend returns the most popular allowed items, personalised by category
// in Category scope; what was learned online counts.
func (m *Model) Recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.K <= 0 {
		return nil, nil
	}
	v := m.view()
	if m.scope == Category {
		if shares := v.categoryShares(q); len(shares) > 0 {
			return v.recommendByCategory(q, shares), nil
		}
	}
	c := topk.New(q.K)
	v.walk(c, v.t.ranked, 0, 1, q)
	v.offer(c, 0, 1, q, func(string) (float64, bool) { return 1, true })
	return c.Sorted(), nil
}

// walk pushes allowed items of the ranked slots scored offset+weight*norm,
// stopping after q.K of them (the slots are in descending score). Slots
// with a cell are skipped: offer pushes the cells.
func (v *view) walk(c *topk.Collector, slots []int32, offset, weight float64, q models.Query) {
	taken := 0
	for _, s := range slots {
		if taken >= q.K {
			return
		}
		if len(v.cells) > 0 && v.stale(s) {
			continue
		}
		id := v.t.ids[s]
		if !q.Allowed(id) {
			continue
		}
		c.Push(id, offset+weight*v.norm(v.t.score[s]))
		taken++
	}
}

// offer pushes the allowed cells that pick accepts, scored
// offset+share*weight*norm for the share pick returns; the allow filter is
// asked only about cells that can make the top.
func (v *view) offer(c *topk.Collector, offset, weight float64, q models.Query, pick func(cat string) (float64, bool)) {
	for _, x := range v.cells {
		share, ok := pick(x.cat)
		if !ok {
			continue
		}
		score := offset + share*weight*v.norm(x.load())
		if c.Admits(x.id, score) && q.Allowed(x.id) {
			c.Push(x.id, score)
		}
	}
}

// categoryShares is the fraction of q's history in each category, counting
// the items of the trained table: items learned online have no category.
func (v *view) categoryShares(q models.Query) map[string]float64 {
	shares := map[string]float64{}
	total := 0.0
	for _, in := range q.History {
		s, ok := v.t.index[in.ItemID]
		if !ok {
			continue
		}
		shares[v.t.cats[s]]++
		total++
	}
	for c := range shares {
		shares[c] /= total
	}
	return shares
}

func (v *view) recommendByCategory(q models.Query, shares map[string]float64) []models.Scored {
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
		v.walk(c, v.t.byCategory[cat], 1, shares[cat], q)
	}
	v.offer(c, 1, 1, q, func(cat string) (float64, bool) {
		share, ok := shares[cat]
		return share, ok
	})
	if c.Full() {
		return c.Sorted()
	}
	taken := c.Len()
	for _, s := range v.t.ranked {
		if taken >= q.K {
			break
		}
		if _, preferred := shares[v.t.cats[s]]; preferred || (len(v.cells) > 0 && v.stale(s)) {
			continue
		}
		id := v.t.ids[s]
		if !q.Allowed(id) {
			continue
		}
		c.Push(id, v.norm(v.t.score[s])/2)
		taken++
	}
	v.offer(c, 0, 0.5, q, func(cat string) (float64, bool) {
		_, preferred := shares[cat]
		return 1, !preferred
	})
	return c.Sorted()
}

// Score returns each item's popularity scaled to [0,1], with what was
// learned online; unknown items score 0.
func (m *Model) Score(ctx context.Context, _ models.Query, itemIDs []string) ([]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v := m.view()
	out := make([]float64, len(itemIDs))
	for i, id := range itemIDs {
		if s, ok := v.t.slot(id); ok {
			if x := v.t.ov.cells[s].Load(); x != nil {
				out[i] = v.norm(x.load())
			} else {
				out[i] = v.norm(v.t.score[s])
			}
		} else if x, ok := v.t.ov.fresh.Load(id); ok {
			out[i] = v.norm(x.(*cell).load())
		}
	}
	return out, nil
}

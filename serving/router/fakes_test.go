package router_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// fakeLease is a router.Lease of a fixed model version. Nothing retires
// it, so Release has nothing to do.
type fakeLease struct {
	model         models.Model
	version, kind string
	canary        bool
}

func (l *fakeLease) Model() models.Model { return l.model }
func (l *fakeLease) Version() string     { return l.version }
func (l *fakeLease) Kind() string        { return l.kind }
func (l *fakeLease) Canary() bool        { return l.canary }
func (l *fakeLease) Release()            {}

// fakeModels is a router.Models over a fixed table; a lease without a model
// stands for a model that has no loaded version.
type fakeModels map[string]*fakeLease

var _ router.Models = fakeModels(nil)

func (f fakeModels) Acquire(name, _ string) (router.Lease, error) {
	l, ok := f[name]
	if !ok {
		return nil, fmt.Errorf("model %q: %w", name, models.ErrNotFound)
	}
	if l.model == nil {
		return nil, fmt.Errorf("model %q: %w", name, models.ErrNotReady)
	}
	return l, nil
}

// add registers m as version "v1" of name, of the given kind.
func (f fakeModels) add(name, kind string, m models.Model) {
	f[name] = &fakeLease{model: m, version: "v1", kind: kind}
}

// countingModels lends fakes' leases and counts those not yet released.
type countingModels struct {
	fakeModels
	held atomic.Int64
}

// countedLease decrements its countingModels' count once released.
type countedLease struct {
	router.Lease
	from *countingModels
}

func (l countedLease) Release() { l.from.held.Add(-1) }

func (c *countingModels) Acquire(name, unit string) (router.Lease, error) {
	l, err := c.fakeModels.Acquire(name, unit)
	if err != nil {
		return nil, err
	}
	c.held.Add(1)
	return countedLease{l, c}, nil
}

// fakeRec is a recommender with a fixed ranked list. It honours q.Allow and
// q.K like a real model, and records the queries it saw.
type fakeRec struct {
	items []models.Scored
	err   error

	mu      sync.Mutex
	queries []models.Query
}

func (f *fakeRec) Close() error { return nil }

func (f *fakeRec) Recommend(ctx context.Context, q models.Query) ([]models.Scored, error) {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []models.Scored
	for _, s := range f.items {
		if len(out) >= q.K {
			break
		}
		if q.Allowed(s.ItemID) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeRec) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}

func (f *fakeRec) lastQuery() models.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return models.Query{}
	}
	return f.queries[len(f.queries)-1]
}

// ranked returns items ids[0] (best) .. ids[n-1], scored n, n-1, ..., 1.
func ranked(ids ...string) []models.Scored {
	out := make([]models.Scored, len(ids))
	for i, id := range ids {
		out[i] = models.Scored{ItemID: id, Score: float64(len(ids) - i)}
	}
	return out
}

// fakeScorer scores item "iN" as N/100 and anything else as -1.
type fakeScorer struct {
	err       error
	wrongSize bool

	mu   sync.Mutex
	last models.Query
}

func (f *fakeScorer) Close() error { return nil }

func (f *fakeScorer) Score(ctx context.Context, q models.Query, ids []string) ([]float64, error) {
	f.mu.Lock()
	f.last = q
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := make([]float64, len(ids))
	for i, id := range ids {
		var n int
		if _, err := fmt.Sscanf(id, "i%d", &n); err != nil {
			out[i] = -1
			continue
		}
		out[i] = float64(n) / 100
	}
	if f.wrongSize {
		out = out[:len(out)-1]
	}
	return out, nil
}

// plainModel has no role at all.
type plainModel struct{}

func (plainModel) Close() error { return nil }

var errBoom = errors.New("boom")

// testStore is a store with three categories: items i1..i20, where i1..i8 are
// "shoes", i9..i14 "hats" and i15..i20 "bags". User u1 viewed i1 and i2 (in
// that order by time); user u2 bought i9.
func testStore() *store.Memory {
	d := &dataset.Dataset{}
	for n := 1; n <= 20; n++ {
		cat := "shoes"
		switch {
		case n >= 15:
			cat = "bags"
		case n >= 9:
			cat = "hats"
		}
		d.Items = append(d.Items, dataset.Item{ID: fmt.Sprintf("i%d", n), Category: cat})
	}
	d.Interactions = []dataset.Interaction{
		{UserID: "u1", ItemID: "i2", Event: dataset.View, Value: 1, Timestamp: 200},
		{UserID: "u1", ItemID: "i1", Event: dataset.View, Value: 1, Timestamp: 100},
		{UserID: "u2", ItemID: "i9", Event: dataset.Purchase, Value: 1, Timestamp: 50},
	}
	return store.New(d)
}

// allItems is i1..i20 in rank order (i1 best).
func allItems() []models.Scored {
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%d", i+1)
	}
	return ranked(ids...)
}

// Package store provides the item catalogue and user histories the server
// reads on every request, kept current as events and catalogue changes
// arrive. Memory holds the indexes the router and the models read (histories,
// seen and excluded sets, item users, category affinities, availability);
// Live keeps a Memory in step with a durable Backend (Pebble embedded, Redis
// shared by replicas; see backend.go). The router consumes all of it through
// a small interface of its own.
package store

import (
	"context"
	"iter"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// Profile is what the store knows of one user at one moment. It is a
// snapshot: later events do not change it, and it must not be modified.
type Profile struct {
	// History is the user's interactions, oldest first.
	History []dataset.Interaction
	// Seen holds the distinct items of History, cached because every
	// request excludes them.
	Seen map[string]struct{}
	// Excluded holds the items of the user's negative events (dislike,
	// return): never recommended to them, whatever the route says of seen
	// items. Nil for most users.
	Excluded map[string]struct{}
}

// Memory is the in-memory index of a store. Reads are safe concurrently with
// each other and with Apply and the other writes; a reader gets a consistent
// snapshot of one user, not of the whole store.
//
// Writers serialise on mu. Histories are append-only slices (an event older
// than the last one copies the slice), so a reader holding a history keeps a
// valid snapshot without copying; seen sets are immutable maps cached per
// history length; the catalogue is an immutable snapshot swapped atomically,
// because filters read it for every candidate of every request.
type Memory struct {
	weights models.EventWeights
	cat     atomic.Pointer[catalogue]

	mu       sync.RWMutex
	users    map[string]*user
	events   int
	audience audience

	// sorted caches the sorted audience lists, dropped whenever a write
	// changes them (TargetAudience is rare next to writes).
	sorted sortedCache
}

// user is one user's state. history, excluded and index are written under
// Memory.mu; seen is a cache readers fill.
type user struct {
	history  []dataset.Interaction
	excluded map[string]struct{}
	// index holds the history's distinct items once the history is long
	// enough that scanning it per event would cost more; writers only.
	index map[string]struct{}
	seen  atomic.Pointer[seenSet]
}

// seenSet is the immutable distinct-item set of the first n interactions of
// a history.
type seenSet struct {
	n   int
	set map[string]struct{}
}

// Affinity is a user's weighted engagement with a category (view 1, cart 3,
// purchase 5, rating 1 × value: models.DefaultEventWeights).
type Affinity struct {
	UserID string
	Weight float64
}

// Load reads a canonical data set directory into a Memory store.
func Load(dir string) (*Memory, error) {
	d, err := dataset.Read(dir)
	if err != nil {
		return nil, err
	}
	return New(d), nil
}

// New indexes d. Items that appear only in interactions are added to the
// catalogue with empty metadata, so every item a user touched can be looked
// up. Histories are ordered by timestamp, stable in file order.
func New(d *dataset.Dataset) *Memory {
	b := newBuilder()
	for _, it := range d.Items {
		b.item(it)
	}
	for _, in := range d.Interactions {
		b.interaction(in)
	}
	return b.finish()
}

// builder assembles a Memory from items and then interactions given one at
// a time (a data set, or a backend's Scan), so that millions of events are
// indexed without first being held in one slice.
type builder struct {
	m     *Memory
	items map[string]dataset.Item
	// ids is a catalogue over items for intern, before the real one is
	// built.
	ids *catalogue
}

func newBuilder() *builder {
	items := map[string]dataset.Item{}
	return &builder{
		m:     &Memory{weights: models.DefaultEventWeights(), users: map[string]*user{}, audience: newAudience()},
		items: items,
		ids:   &catalogue{items: items},
	}
}

// item adds a catalogue item; items come before interactions.
func (b *builder) item(it dataset.Item) { b.items[it.ID] = it }

// interaction adds one interaction to its user's history.
func (b *builder) interaction(in dataset.Interaction) {
	if _, ok := b.items[in.ItemID]; !ok {
		b.items[in.ItemID] = dataset.Item{ID: in.ItemID, Price: math.NaN()}
	}
	u := b.m.users[in.UserID]
	if u == nil {
		u = &user{}
		b.m.users[in.UserID] = u
	}
	b.m.intern(&in, u, b.ids)
	u.history = append(u.history, in)
	b.m.events++
}

// finish orders the histories by time and builds the catalogue and the
// audience indexes.
func (b *builder) finish() *Memory {
	m := b.m
	m.cat.Store(newCatalogue(b.items))
	for id, u := range m.users {
		sort.SliceStable(u.history, func(i, j int) bool { return u.history[i].Timestamp < u.history[j].Timestamp })
		if len(u.history) > indexAbove {
			u.index = distinct(u.history)
		}
		m.audience.addHistory(id, u.history, m.cat.Load(), m.weights)
	}
	return m
}

// Items iterates over the catalogue, in id order (a snapshot: later
// catalogue changes do not show).
func (m *Memory) Items() iter.Seq[dataset.Item] {
	return func(yield func(dataset.Item) bool) {
		c := m.cat.Load()
		for _, id := range c.ids {
			if !yield(c.items[id]) {
				return
			}
		}
	}
}

// Interactions iterates over every indexed interaction, user by user (each
// history oldest first), under the read lock: the feature pipeline is built
// from it without a copy of the events. The callback must not call the
// store's write methods.
func (m *Memory) Interactions() iter.Seq[dataset.Interaction] {
	return func(yield func(dataset.Interaction) bool) {
		m.mu.RLock()
		defer m.mu.RUnlock()
		for _, u := range m.users {
			for _, in := range u.history {
				if !yield(in) {
					return
				}
			}
		}
	}
}

// Availability reports whether an item is hidden or out of stock. It is
// cheap for the common catalogue where every item is available.
func (m *Memory) Availability(id string) (hidden, outOfStock bool) {
	return m.cat.Load().availability(id)
}

// History returns the user's interactions, oldest first, or nil for an unknown
// user (cold start is not an error). The slice must not be modified.
func (m *Memory) History(ctx context.Context, userID string) ([]dataset.Interaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if u := m.users[userID]; u != nil {
		return u.history, nil
	}
	return nil, nil
}

// Profile returns the user's history, seen and excluded items; an unknown
// user has an empty profile (cold start is not an error). The profile must
// not be modified.
func (m *Memory) Profile(ctx context.Context, userID string) (Profile, error) {
	if err := ctx.Err(); err != nil {
		return Profile{}, err
	}
	m.mu.RLock()
	u := m.users[userID]
	if u == nil {
		m.mu.RUnlock()
		return Profile{}, nil
	}
	p := Profile{History: u.history, Excluded: u.excluded}
	m.mu.RUnlock()
	p.Seen = u.seenOf(p.History)
	return p, nil
}

// seenOf returns the distinct items of h, a snapshot of u's history, from the
// cache when it is current. Building outside the lock is safe: h never
// changes, and a cache stored for an older length is simply rebuilt.
func (u *user) seenOf(h []dataset.Interaction) map[string]struct{} {
	if c := u.seen.Load(); c != nil && c.n == len(h) {
		return c.set
	}
	set := distinct(h)
	u.seen.Store(&seenSet{n: len(h), set: set})
	return set
}

func distinct(h []dataset.Interaction) map[string]struct{} {
	set := make(map[string]struct{}, len(h))
	for _, in := range h {
		set[in.ItemID] = struct{}{}
	}
	return set
}

// Item returns a catalogue entry.
func (m *Memory) Item(id string) (dataset.Item, bool) {
	it, ok := m.cat.Load().items[id]
	return it, ok
}

// ItemIDs returns every catalogue item id, sorted. The slice must not be
// modified.
func (m *Memory) ItemIDs() []string { return m.cat.Load().ids }

// Users returns the number of users with a history.
func (m *Memory) Users() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.users)
}

// Events returns the number of interactions indexed.
func (m *Memory) Events() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.events
}

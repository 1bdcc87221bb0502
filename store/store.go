// Package store provides the item catalogue and user histories the server
// reads on every request. Memory is the embedded default, loaded from a
// canonical data set directory; the router consumes it through a small
// interface of its own, so a networked store can replace it without touching
// any model.
package store

import (
	"context"
	"math"
	"sort"

	"github.com/recserve/recserve/dataset"
)

// Profile is what the store knows of one user.
type Profile struct {
	// History is the user's interactions, oldest first.
	History []dataset.Interaction
	// Seen holds the distinct items of History, precomputed because every
	// request excludes them.
	Seen map[string]struct{}
}

// Memory is an immutable in-memory store. It is safe for concurrent use.
type Memory struct {
	items    map[string]dataset.Item
	itemIDs  []string
	profiles map[string]Profile
	events   int
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
	m := &Memory{
		items:    make(map[string]dataset.Item, len(d.Items)),
		profiles: map[string]Profile{},
		events:   len(d.Interactions),
	}
	histories := map[string][]dataset.Interaction{}
	for _, it := range d.Items {
		m.items[it.ID] = it
	}
	counts := map[string]int{}
	for _, in := range d.Interactions {
		counts[in.UserID]++
	}
	for u, n := range counts {
		histories[u] = make([]dataset.Interaction, 0, n)
	}
	for _, in := range d.Interactions {
		histories[in.UserID] = append(histories[in.UserID], in)
		if _, ok := m.items[in.ItemID]; !ok {
			m.items[in.ItemID] = dataset.Item{ID: in.ItemID, Price: nan()}
		}
	}
	for u, h := range histories {
		sort.SliceStable(h, func(i, j int) bool { return h[i].Timestamp < h[j].Timestamp })
		seen := make(map[string]struct{}, len(h))
		for _, in := range h {
			seen[in.ItemID] = struct{}{}
		}
		m.profiles[u] = Profile{History: h, Seen: seen}
	}
	m.itemIDs = make([]string, 0, len(m.items))
	for id := range m.items {
		m.itemIDs = append(m.itemIDs, id)
	}
	sort.Strings(m.itemIDs)
	return m
}

// History returns the user's interactions, oldest first, or nil for an unknown
// user (cold start is not an error). The slice must not be modified.
func (m *Memory) History(ctx context.Context, userID string) ([]dataset.Interaction, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.profiles[userID].History, nil
}

// Profile returns the user's history and seen items; an unknown user has an
// empty profile (cold start is not an error). The profile must not be
// modified.
func (m *Memory) Profile(ctx context.Context, userID string) (Profile, error) {
	if err := ctx.Err(); err != nil {
		return Profile{}, err
	}
	return m.profiles[userID], nil
}

// Item returns a catalogue entry.
func (m *Memory) Item(id string) (dataset.Item, bool) {
	it, ok := m.items[id]
	return it, ok
}

// ItemIDs returns every catalogue item id, sorted. The slice must not be
// modified.
func (m *Memory) ItemIDs() []string { return m.itemIDs }

// Users returns the number of users with a history.
func (m *Memory) Users() int { return len(m.profiles) }

// Events returns the number of interactions loaded.
func (m *Memory) Events() int { return m.events }

func nan() float64 { return math.NaN() }

// Package store provides the item catalogue and user histories the server
// reads on every request. Memory is the embedded default, loaded from a
// canonical data set directory; the router consumes it through a small
// interface of its own, so a networked store can replace it without touching
// any model.
package store

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sort"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
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
	// Audience indexes, for targeting: who touched an item; who engages
	// with a category, most engaged first; a category's items, most popular
	// first.
	itemUsers     map[string][]string
	categoryUsers map[string][]Affinity
	categoryItems map[string][]string
	// unavailable holds the hidden or out-of-stock items only: usually
	// empty, so the per-candidate check on the request path is one length
	// test.
	unavailable map[string]dataset.Item
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
	m.indexAudience()
	for id, it := range m.items {
		if it.Hidden || it.OutOfStock {
			if m.unavailable == nil {
				m.unavailable = map[string]dataset.Item{}
			}
			m.unavailable[id] = it
		}
	}
	return m
}

// Availability reports whether an item is hidden or out of stock
// (items.csv columns hidden and in_stock). It is cheap for the common
// catalogue where every item is available.
func (m *Memory) Availability(id string) (hidden, outOfStock bool) {
	if len(m.unavailable) == 0 {
		return false, false
	}
	it := m.unavailable[id]
	return it.Hidden, it.OutOfStock
}

// indexAudience builds the targeting indexes from the profiles.
func (m *Memory) indexAudience() {
	m.itemUsers = map[string][]string{}
	catWeight := map[string]map[string]float64{}
	itemWeight := map[string]float64{}
	weights := models.DefaultEventWeights()
	for u, p := range m.profiles {
		for id := range p.Seen {
			m.itemUsers[id] = append(m.itemUsers[id], u)
		}
		for _, in := range p.History {
			w := weights.Of(in)
			itemWeight[in.ItemID] += w
			cat := m.items[in.ItemID].Category
			if cat == "" {
				continue
			}
			cw := catWeight[cat]
			if cw == nil {
				cw = map[string]float64{}
				catWeight[cat] = cw
			}
			cw[u] += w
		}
	}
	for _, us := range m.itemUsers {
		sort.Strings(us)
	}
	m.categoryUsers = make(map[string][]Affinity, len(catWeight))
	for cat, cw := range catWeight {
		a := make([]Affinity, 0, len(cw))
		for u, w := range cw {
			a = append(a, Affinity{u, w})
		}
		slices.SortFunc(a, func(x, y Affinity) int {
			return cmp.Or(cmp.Compare(y.Weight, x.Weight), cmp.Compare(x.UserID, y.UserID))
		})
		m.categoryUsers[cat] = a
	}
	m.categoryItems = map[string][]string{}
	for _, id := range m.itemIDs {
		if cat := m.items[id].Category; cat != "" {
			m.categoryItems[cat] = append(m.categoryItems[cat], id)
		}
	}
	for _, ids := range m.categoryItems {
		slices.SortStableFunc(ids, func(a, b string) int { return cmp.Compare(itemWeight[b], itemWeight[a]) })
	}
}

// ItemUsers returns the users who touched an item, sorted by id. The slice
// must not be modified.
func (m *Memory) ItemUsers(itemID string) []string { return m.itemUsers[itemID] }

// CategoryUsers returns the users who engaged with a category, most engaged
// first. The slice must not be modified.
func (m *Memory) CategoryUsers(category string) []Affinity { return m.categoryUsers[category] }

// CategoryItems returns a category's items, most engaged with first (ties in
// id order); nil for an unknown category. The slice must not be modified.
func (m *Memory) CategoryItems(category string) []string { return m.categoryItems[category] }

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

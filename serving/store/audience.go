package store

import (
	"cmp"
	"slices"
	"sync"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
)

// audience holds the targeting indexes: who touched an item, who engages
// with a category and how much, and how much each item is engaged with. It
// is guarded by Memory.mu; writes keep it current per event, and the sorted
// views TargetAudience reads are built on demand (sortedCache).
type audience struct {
	// itemUsers lists the distinct users of an item, in the order they
	// first touched it.
	itemUsers map[string][]string
	// categoryUsers weighs each user's engagement with a category, by the
	// item's category when the event arrived.
	categoryUsers map[string]map[string]float64
	itemWeight    map[string]float64
}

func newAudience() audience {
	return audience{itemUsers: map[string][]string{}, categoryUsers: map[string]map[string]float64{}, itemWeight: map[string]float64{}}
}

// addHistory indexes a whole history of a user new to the index.
func (a *audience) addHistory(userID string, h []dataset.Interaction, c *catalogue, w models.EventWeights) {
	first := make(map[string]struct{}, len(h))
	for _, in := range h {
		_, seen := first[in.ItemID]
		first[in.ItemID] = struct{}{}
		a.add(userID, in, !seen, c, w)
	}
}

// add indexes one interaction; newPair says the user had not touched the
// item before.
func (a *audience) add(userID string, in dataset.Interaction, newPair bool, c *catalogue, w models.EventWeights) {
	if newPair {
		a.itemUsers[in.ItemID] = append(a.itemUsers[in.ItemID], userID)
	}
	wt := w.Of(in)
	a.itemWeight[in.ItemID] += wt
	cat := c.items[in.ItemID].Category
	if cat == "" {
		return
	}
	cu := a.categoryUsers[cat]
	if cu == nil {
		cu = map[string]float64{}
		a.categoryUsers[cat] = cu
	}
	cu[userID] += wt
}

// removeUser takes a deleted user's history out of the indexes.
func (a *audience) removeUser(userID string, h []dataset.Interaction, w models.EventWeights) {
	for _, in := range h {
		if a.itemWeight[in.ItemID] -= w.Of(in); a.itemWeight[in.ItemID] <= 0 {
			delete(a.itemWeight, in.ItemID)
		}
		if us := a.itemUsers[in.ItemID]; us != nil {
			if us = slices.DeleteFunc(us, func(u string) bool { return u == userID }); len(us) == 0 {
				delete(a.itemUsers, in.ItemID)
			} else {
				a.itemUsers[in.ItemID] = us
			}
		}
	}
	for cat, cu := range a.categoryUsers {
		if _, ok := cu[userID]; ok {
			delete(cu, userID)
			if len(cu) == 0 {
				delete(a.categoryUsers, cat)
			}
		}
	}
}

// sortedCache holds the sorted audience lists built since the last write.
// gen is the write generation they were built at (Memory.mu guards the
// generation writers bump; mu guards the maps).
type sortedCache struct {
	mu            sync.Mutex
	gen           uint64
	itemUsers     map[string][]string
	categoryUsers map[string][]Affinity
	categoryItems map[string][]string
}

// invalidate drops the cached lists; called under Memory.mu's write lock.
func (s *sortedCache) invalidate() {
	s.mu.Lock()
	s.gen++
	s.itemUsers, s.categoryUsers, s.categoryItems = nil, nil, nil
	s.mu.Unlock()
}

// cached returns a list from the cache, or builds it under the read lock and
// caches it unless a write happened meanwhile.
func cached[V any](m *Memory, pick func(*sortedCache) *map[string]V, key string, build func() V) V {
	s := &m.sorted
	s.mu.Lock()
	if v, ok := (*pick(s))[key]; ok {
		s.mu.Unlock()
		return v
	}
	s.mu.Unlock()
	m.mu.RLock()
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	v := build()
	m.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		p := pick(s)
		if *p == nil {
			*p = map[string]V{}
		}
		(*p)[key] = v
	}
	return v
}

// ItemUsers returns the users who touched an item, sorted by id. The slice
// must not be modified.
func (m *Memory) ItemUsers(itemID string) []string {
	return cached(m, func(s *sortedCache) *map[string][]string { return &s.itemUsers }, itemID, func() []string {
		us := slices.Clone(m.audience.itemUsers[itemID])
		slices.Sort(us)
		return us
	})
}

// CategoryUsers returns the users who engaged with a category, most engaged
// first (ties by id). The slice must not be modified.
func (m *Memory) CategoryUsers(category string) []Affinity {
	return cached(m, func(s *sortedCache) *map[string][]Affinity { return &s.categoryUsers }, category, func() []Affinity {
		cu := m.audience.categoryUsers[category]
		if len(cu) == 0 {
			return nil
		}
		a := make([]Affinity, 0, len(cu))
		for u, w := range cu {
			a = append(a, Affinity{u, w})
		}
		slices.SortFunc(a, func(x, y Affinity) int {
			return cmp.Or(cmp.Compare(y.Weight, x.Weight), cmp.Compare(x.UserID, y.UserID))
		})
		return a
	})
}

// CategoryItems returns a category's items, most engaged with first (ties in
// id order); nil for an unknown category. The slice must not be modified.
func (m *Memory) CategoryItems(category string) []string {
	return cached(m, func(s *sortedCache) *map[string][]string { return &s.categoryItems }, category, func() []string {
		ids := slices.Clone(m.cat.Load().category(category))
		w := m.audience.itemWeight
		slices.SortStableFunc(ids, func(a, b string) int { return cmp.Compare(w[b], w[a]) })
		return ids
	})
}

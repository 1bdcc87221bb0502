package store

import (
	"maps"
	"slices"

	"github.com/recserve/recserve/dataset"
)

// indexAbove is the history length above which a user keeps a writer-side
// index of their items; below it, a scan of the history is cheaper than the
// map (profiled at ingest: comparing ids of equal length costs a memeq each,
// so the scan loses beyond a dozen or so).
const indexAbove = 16

// applyChunk bounds how many events one hold of the write lock applies, so a
// large batch does not stall readers.
const applyChunk = 256

// Apply indexes events already stored by the backend: histories (in
// timestamp order), seen sets, negative exclusions and the audience indexes.
// Events of a type types does not know are ignored. A user unknown until now
// is known afterwards. It returns the interactions that entered histories.
func (m *Memory) Apply(types EventTypes, events []Event) []dataset.Interaction {
	var applied []dataset.Interaction
	for len(events) > 0 {
		n := min(len(events), applyChunk)
		applied = m.applyLocked(types, events[:n], applied)
		events = events[n:]
	}
	return applied
}

func (m *Memory) applyLocked(types EventTypes, events []Event, applied []dataset.Interaction) []dataset.Interaction {
	m.mu.Lock()
	defer m.mu.Unlock()
	cat := m.cat.Load()
	for _, e := range events {
		u := m.users[e.UserID]
		if u == nil {
			u = &user{}
			m.users[e.UserID] = u
		}
		if et, ok := types[e.Type]; ok && et.Negative {
			ex := make(map[string]struct{}, len(u.excluded)+1)
			maps.Copy(ex, u.excluded)
			ex[e.ItemID] = struct{}{}
			u.excluded = ex
			continue
		}
		in, ok := types.Interaction(e)
		if !ok {
			continue
		}
		m.intern(&in, u, cat)
		newPair := !u.touched(in.ItemID)
		u.insert(in)
		if u.index != nil {
			u.index[in.ItemID] = struct{}{}
		} else if len(u.history) > indexAbove {
			u.index = distinct(u.history)
		}
		m.audience.add(e.UserID, in, newPair, cat, m.weights)
		m.events++
		applied = append(applied, in)
	}
	m.sorted.invalidate()
	return applied
}

// touched reports whether the user's history holds itemID.
func (u *user) touched(itemID string) bool {
	if u.index != nil {
		_, ok := u.index[itemID]
		return ok
	}
	for _, in := range u.history {
		if in.ItemID == itemID {
			return true
		}
	}
	return false
}

// insert adds in to the history in timestamp order (after equal
// timestamps). Appending in place is safe for readers holding the shorter
// slice; an event older than the last one goes into a copy.
func (u *user) insert(in dataset.Interaction) {
	h := u.history
	if len(h) == 0 || h[len(h)-1].Timestamp <= in.Timestamp {
		u.history = append(h, in)
		return
	}
	i, _ := slices.BinarySearchFunc(h, in.Timestamp, func(x dataset.Interaction, ts int64) int {
		if x.Timestamp <= ts {
			return -1
		}
		return 1
	})
	out := make([]dataset.Interaction, 0, len(h)+1+len(h)/4)
	out = append(out, h[:i]...)
	out = append(out, in)
	u.history = append(out, h[i:]...)
}

// UpsertItems replaces catalogue entries (creating new ones).
func (m *Memory) UpsertItems(items []dataset.Item) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, _ := m.cat.Load().with(items, nil)
	m.cat.Store(c)
	m.sorted.invalidate()
}

// DeleteItems removes catalogue entries and returns how many existed.
// Histories keep their events of the items.
func (m *Memory) DeleteItems(ids []string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, n := m.cat.Load().with(nil, ids)
	m.cat.Store(c)
	m.sorted.invalidate()
	return n
}

// DeleteUser forgets a user: history, seen and excluded sets, and their
// share of the audience indexes. It returns the number of interactions
// removed.
func (m *Memory) DeleteUser(userID string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := m.users[userID]
	if u == nil {
		return 0
	}
	delete(m.users, userID)
	m.audience.removeUser(userID, u.history, m.weights)
	m.events -= len(u.history)
	m.sorted.invalidate()
	return len(u.history)
}

// intern points in's strings at copies the store already holds (the user's
// key, the catalogue's item id, the session of the user's last event), so
// millions of events do not each keep their own copies of the same ids.
func (m *Memory) intern(in *dataset.Interaction, u *user, cat *catalogue) {
	if in.SessionID != "" && len(u.history) > 0 {
		if last := u.history[len(u.history)-1].SessionID; last == in.SessionID {
			in.SessionID = last
		}
	}
	if len(u.history) > 0 {
		in.UserID = u.history[0].UserID
	}
	if it, ok := cat.items[in.ItemID]; ok {
		in.ItemID = it.ID
	}
}

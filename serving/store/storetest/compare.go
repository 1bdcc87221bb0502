package storetest

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// at returns the time of a fixture event: n seconds after a base time that
// carries nanoseconds, so a backend keeping less than microseconds is
// caught.
func at(n int) time.Time {
	return time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC).Add(time.Duration(n) * time.Second)
}

// ev returns an event of user on item with the given ID, at base plus n
// seconds, with every optional field set so round trips are checked in
// full.
func ev(id, user, item string, n int) store.Event {
	return store.Event{
		ID: id, UserID: user, ItemID: item, Type: "view", Value: 1.5 + float64(n),
		Time:      at(n),
		SessionID: "s-" + user, RecommendationID: "r-" + item,
		Context: map[string]string{"page": "home", "n": fmt.Sprint(n)},
	}
}

// eventEqual reports whether got is want as a backend must give it back:
// every field equal, the time to the microsecond (in any location), a nil
// Context equal to an empty one.
func eventEqual(got, want store.Event) bool {
	if got.ID != want.ID || got.UserID != want.UserID || got.ItemID != want.ItemID ||
		got.Type != want.Type || got.SessionID != want.SessionID ||
		got.RecommendationID != want.RecommendationID {
		return false
	}
	if got.Value != want.Value && !(math.IsNaN(got.Value) && math.IsNaN(want.Value)) {
		return false
	}
	if got.Time.Sub(want.Time).Abs() >= time.Microsecond {
		return false
	}
	return maps.Equal(got.Context, want.Context)
}

// itemEqual reports whether two items are equal, NaN prices included.
func itemEqual(got, want dataset.Item) bool {
	gp, wp := got.Price, want.Price
	if math.IsNaN(gp) && math.IsNaN(wp) {
		gp, wp = 0, 0
	}
	got.Price, want.Price = gp, wp
	return got == want
}

func fmtEvents(es []store.Event) string {
	var b strings.Builder
	b.WriteString("[")
	for i, e := range es {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "{%q %q %q %s %v %s %q %q %v}", e.ID, e.UserID, e.ItemID, e.Type, e.Value,
			e.Time.UTC().Format(time.RFC3339Nano), e.SessionID, e.RecommendationID, e.Context)
	}
	b.WriteString("]")
	return b.String()
}

func eventsEqual(got, want []store.Event) bool {
	return slices.EqualFunc(got, want, eventEqual)
}

// snapshot is a backend's whole state as Scan reports it.
type snapshot struct {
	items map[string]dataset.Item
	// events holds each user's events in the order Scan gave them.
	events map[string][]store.Event
	count  int
}

// scan reads b's whole state and checks what holds for every Scan: items
// come before events, and no item is reported twice.
func scan(t *testing.T, b store.Backend) snapshot {
	t.Helper()
	s := snapshot{items: map[string]dataset.Item{}, events: map[string][]store.Event{}}
	var eventsStarted bool
	err := b.Scan(t.Context(), func(it dataset.Item) error {
		if eventsStarted {
			return fmt.Errorf("item %q after an event; want items first", it.ID)
		}
		if _, dup := s.items[it.ID]; dup {
			return fmt.Errorf("item %q reported twice", it.ID)
		}
		s.items[it.ID] = it
		return nil
	}, func(e store.Event) error {
		eventsStarted = true
		s.events[e.UserID] = append(s.events[e.UserID], e)
		s.count++
		return nil
	})
	if err != nil {
		t.Fatalf("Scan() error = %v; want nil", err)
	}
	return s
}

// want builds the snapshot a backend should hold after storing items and,
// in arrival order, events.
func want(items []dataset.Item, events []store.Event) snapshot {
	s := snapshot{items: map[string]dataset.Item{}, events: map[string][]store.Event{}}
	for _, it := range items {
		s.items[it.ID] = it
	}
	for _, e := range events {
		s.events[e.UserID] = append(s.events[e.UserID], e)
		s.count++
	}
	return s
}

// check reports every difference between the snapshot got and want.
func check(t *testing.T, got, want snapshot) {
	t.Helper()
	for id, w := range want.items {
		g, ok := got.items[id]
		switch {
		case !ok:
			t.Errorf("Scan() has no item %q; want %+v", id, w)
		case !itemEqual(g, w):
			t.Errorf("Scan() item %q = %+v; want %+v", id, g, w)
		}
	}
	for id, g := range got.items {
		if _, ok := want.items[id]; !ok {
			t.Errorf("Scan() item %q = %+v; want none", id, g)
		}
	}
	for u, w := range want.events {
		if g := got.events[u]; !eventsEqual(g, w) {
			t.Errorf("Scan() events of user %q =\n  %s\nwant\n  %s", u, fmtEvents(g), fmtEvents(w))
		}
	}
	for u, g := range got.events {
		if _, ok := want.events[u]; !ok {
			t.Errorf("Scan() events of user %q = %s; want none", u, fmtEvents(g))
		}
	}
}

// mustAppend appends events and returns what the backend stored.
func mustAppend(t *testing.T, b store.Backend, events ...store.Event) []store.Event {
	t.Helper()
	stored, err := b.Append(t.Context(), events)
	if err != nil {
		t.Fatalf("Append(%d events) error = %v; want nil", len(events), err)
	}
	return stored
}

func mustUpsert(t *testing.T, b store.Backend, items ...dataset.Item) {
	t.Helper()
	if err := b.UpsertItems(t.Context(), items); err != nil {
		t.Fatalf("UpsertItems(%d items) error = %v; want nil", len(items), err)
	}
}

// cancelled returns a context that has already ended.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}

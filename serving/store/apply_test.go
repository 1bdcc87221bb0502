package store_test

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/store"
)

func ev(user, item, typ string, ts int64) store.Event {
	return store.Event{UserID: user, ItemID: item, Type: typ, Value: 1, Time: time.Unix(ts, 0)}
}

func TestApply(t *testing.T) {
	types := store.DefaultEventTypes()
	types["wishlist"] = store.EventType{Weight: 2}
	tests := []struct {
		name     string
		events   []store.Event
		user     string
		history  []string
		seen     []string
		excluded []string
	}{
		{"appends to a known user", []store.Event{ev("u1", "d", "view", 400)}, "u1",
			[]string{"a/cart", "c/view", "b/view", "ghost/rating", "b/purchase", "d/view"}, []string{"a", "b", "c", "d", "ghost"}, nil},
		{"an older event is inserted in time order", []store.Event{ev("u1", "d", "cart", 150)}, "u1",
			[]string{"a/cart", "d/cart", "c/view", "b/view", "ghost/rating", "b/purchase"}, []string{"a", "b", "c", "d", "ghost"}, nil},
		{"a new user is known after the first event", []store.Event{ev("new", "a", "view", 1), ev("new", "b", "purchase", 2)}, "new",
			[]string{"a/view", "b/purchase"}, []string{"a", "b"}, nil},
		{"a negative event excludes without entering the history", []store.Event{ev("u2", "b", "dislike", 20)}, "u2",
			[]string{"a/purchase"}, []string{"a"}, []string{"b"}},
		{"a custom type enters as a weighted rating", []store.Event{ev("u2", "b", "wishlist", 20)}, "u2",
			[]string{"a/purchase", "b/rating"}, []string{"a", "b"}, nil},
		{"an unknown type is ignored", []store.Event{ev("u2", "b", "teleport", 20)}, "u2",
			[]string{"a/purchase"}, []string{"a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := store.New(testData())
			before, _ := m.Profile(t.Context(), tt.user)
			beforeHist := itemsOf(before.History)
			m.Apply(types, tt.events)
			p, err := m.Profile(t.Context(), tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if got := itemsOf(p.History); !reflect.DeepEqual(got, tt.history) {
				t.Errorf("history = %v; want %v", got, tt.history)
			}
			if got := keys(p.Seen); !reflect.DeepEqual(got, tt.seen) {
				t.Errorf("seen = %v; want %v", got, tt.seen)
			}
			if got := keys(p.Excluded); !reflect.DeepEqual(got, tt.excluded) {
				t.Errorf("excluded = %v; want %v", got, tt.excluded)
			}
			// The profile taken before is a snapshot: Apply did not change it.
			if got := itemsOf(before.History); !reflect.DeepEqual(got, beforeHist) {
				t.Errorf("earlier profile's history changed to %v; want %v", got, beforeHist)
			}
		})
	}
}

func TestApplyWeightedRating(t *testing.T) {
	types := store.DefaultEventTypes()
	types["wishlist"] = store.EventType{Weight: 2.5}
	m := store.New(&dataset.Dataset{})
	m.Apply(types, []store.Event{ev("u", "x", "wishlist", 1)})
	h, _ := m.History(t.Context(), "u")
	if len(h) != 1 || models.DefaultEventWeights().Of(h[0]) != 2.5 {
		t.Errorf("history = %+v; want one interaction weighing 2.5", h)
	}
}

func TestApplyAudience(t *testing.T) {
	m := store.New(testData())
	if got := m.ItemUsers("b"); !reflect.DeepEqual(got, []string{"u1"}) {
		t.Fatalf("ItemUsers(b) = %v; want [u1]", got)
	}
	m.Apply(store.DefaultEventTypes(), []store.Event{ev("u0", "b", "purchase", 500), ev("u0", "b", "view", 501)})
	if got := m.ItemUsers("b"); !reflect.DeepEqual(got, []string{"u0", "u1"}) {
		t.Errorf("ItemUsers(b) after u0's events = %v; want [u0 u1] (distinct, sorted)", got)
	}
	// u0: purchase 5 + view 1 = 6 on shoes; u1: view 1 + purchase 5 = 6; ties by id.
	if got := m.CategoryUsers("shoes"); !reflect.DeepEqual(got, []store.Affinity{{"u0", 6}, {"u1", 6}}) {
		t.Errorf("CategoryUsers(shoes) = %v; want u0 and u1 at 6", got)
	}
	m.DeleteUser("u1")
	if got := m.ItemUsers("b"); !reflect.DeepEqual(got, []string{"u0"}) {
		t.Errorf("ItemUsers(b) after deleting u1 = %v; want [u0]", got)
	}
	if got := m.CategoryUsers("shoes"); !reflect.DeepEqual(got, []store.Affinity{{"u0", 6}}) {
		t.Errorf("CategoryUsers(shoes) after deleting u1 = %v; want [u0 6]", got)
	}
}

func TestDeleteUser(t *testing.T) {
	m := store.New(testData())
	if n := m.DeleteUser("u1"); n != 5 {
		t.Errorf("DeleteUser(u1) = %d; want 5", n)
	}
	if p, _ := m.Profile(t.Context(), "u1"); p.History != nil || p.Seen != nil {
		t.Errorf("Profile(u1) after delete = %+v; want empty", p)
	}
	if m.Users() != 1 || m.Events() != 1 {
		t.Errorf("after delete: %d users, %d events; want 1, 1", m.Users(), m.Events())
	}
	if n := m.DeleteUser("u1"); n != 0 {
		t.Errorf("DeleteUser(u1) again = %d; want 0", n)
	}
}

func TestCatalogueChanges(t *testing.T) {
	m := store.New(testData())
	m.UpsertItems([]dataset.Item{
		{ID: "n", Title: "New", Category: "shoes", Price: 5},
		{ID: "b", Title: "Boots", Category: "shoes", Price: 80, OutOfStock: true},
	})
	if it, ok := m.Item("n"); !ok || it.Title != "New" {
		t.Errorf("Item(n) = %+v, %v; want the new item", it, ok)
	}
	if _, out := m.Availability("b"); !out {
		t.Errorf("Availability(b) out of stock = false after the upsert; want true")
	}
	if got := m.CategoryItems("shoes"); !reflect.DeepEqual(got, []string{"b", "n"}) {
		t.Errorf("CategoryItems(shoes) = %v; want [b n] (b engaged with)", got)
	}
	if n := m.DeleteItems([]string{"n", "missing"}); n != 1 {
		t.Errorf("DeleteItems = %d; want 1", n)
	}
	if _, ok := m.Item("n"); ok {
		t.Errorf("Item(n) found after DeleteItems")
	}
	if got := m.ItemIDs(); slices.Contains(got, "n") {
		t.Errorf("ItemIDs() = %v still holds n", got)
	}
}

// TestApplyConcurrent races readers against writers (run with -race): every
// profile read must be internally consistent (seen = distinct items of the
// history) and the final state holds every event.
func TestApplyConcurrent(t *testing.T) {
	m := store.New(testData())
	types := store.DefaultEventTypes()
	const writers, perWriter = 4, 300
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Out-of-order timestamps exercise the copying insert too.
				ts := int64(1000 + (i*7919)%perWriter)
				m.Apply(types, []store.Event{ev(fmt.Sprintf("w%d", w%2), fmt.Sprintf("i%d", i%100), "view", ts)})
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, u := range []string{"w0", "w1", "u1"} {
					p, err := m.Profile(t.Context(), u)
					if err != nil {
						errs <- err
						return
					}
					for _, in := range p.History {
						if _, ok := p.Seen[in.ItemID]; !ok {
							errs <- fmt.Errorf("%s: history item %s not in seen", u, in.ItemID)
							return
						}
					}
					if !slices.IsSortedFunc(p.History, func(a, b dataset.Interaction) int { return int(a.Timestamp - b.Timestamp) }) {
						errs <- fmt.Errorf("%s: history out of time order", u)
						return
					}
				}
				m.ItemUsers("i1")
				m.CategoryUsers("shoes")
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"w0", "w1"} {
		h, _ := m.History(t.Context(), u)
		if len(h) != 2*perWriter {
			t.Errorf("History(%s) holds %d events; want %d", u, len(h), 2*perWriter)
		}
	}
	if got := m.ItemUsers("i1"); !reflect.DeepEqual(got, []string{"w0", "w1"}) {
		t.Errorf("ItemUsers(i1) = %v; want [w0 w1]", got)
	}
}

func TestParseEventTypes(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]store.EventType
		wantErr string
	}{
		{"", nil, ""},
		{"wishlist=2, dislike=negative", map[string]store.EventType{"wishlist": {Weight: 2}, "dislike": {Negative: true}}, ""},
		{"view=2", nil, "built in"},
		{"wishlist", nil, "want name=weight"},
		{"wishlist=-1", nil, "positive weight"},
		{"wishlist=NaN", nil, "positive weight"},
	}
	for _, tt := range tests {
		got, err := store.ParseEventTypes(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEventTypes(%q) error = %v; want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseEventTypes(%q) error = %v", tt.in, err)
			continue
		}
		for name, et := range tt.want {
			if got[name] != et {
				t.Errorf("ParseEventTypes(%q)[%s] = %+v; want %+v", tt.in, name, got[name], et)
			}
		}
		if got["view"].As != dataset.View {
			t.Errorf("ParseEventTypes(%q) lost the built-in view", tt.in)
		}
	}
}

func TestValidate(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	long := strings.Repeat("x", store.MaxIDBytes+1)
	tests := []struct {
		name  string
		mod   func(*store.Event)
		field string
	}{
		{"valid", func(*store.Event) {}, ""},
		{"empty user", func(e *store.Event) { e.UserID = "" }, "events[3].user_id"},
		{"long item", func(e *store.Event) { e.ItemID = long }, "events[3].item_id"},
		{"control character", func(e *store.Event) { e.ItemID = "a\nb" }, "events[3].item_id"},
		{"long event id", func(e *store.Event) { e.ID = long }, "events[3].event_id"},
		{"unknown type", func(e *store.Event) { e.Type = "teleport" }, "events[3].event"},
		{"NaN value", func(e *store.Event) { e.Value = math.NaN() }, "events[3].value"},
		{"infinite value", func(e *store.Event) { e.Value = math.Inf(1) }, "events[3].value"},
		{"far future", func(e *store.Event) { e.Time = now.Add(25 * time.Hour) }, "events[3].timestamp"},
		{"near future is skew", func(e *store.Event) { e.Time = now.Add(time.Hour) }, ""},
	}
	types := store.DefaultEventTypes()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := store.Event{UserID: "u", ItemID: "i", Type: "view", Value: 1}
			tt.mod(&e)
			err := types.Validate("events[3].", &e, now)
			var fe *models.FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("Validate error = %v; want nil", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Errorf("Validate error = %v; want a FieldError on %s", err, tt.field)
			}
		})
	}
	e := store.Event{UserID: "u", ItemID: "i", Type: "view"}
	if err := types.Validate("", &e, now); err != nil || !e.Time.Equal(now) {
		t.Errorf("Validate without a time: err %v, time %v; want nil and the server's time", err, e.Time)
	}
}

func keys(m map[string]struct{}) []string {
	if m == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

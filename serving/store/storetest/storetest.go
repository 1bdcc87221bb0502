// Package storetest is the conformance suite of store.Backend: the
// behaviour the server relies on (idempotent, atomic, ordered appends;
// whole-item upserts; complete user deletion; replica following), written
// once so the embedded and the shared backends are held to the same
// contract. Only tests import it.
//
// Every backend's tests call Run; backends that keep state across a
// reopen call RunDurable; shared backends (store.Follower) call
// RunFollower. Run checks store.ImpressionStore too, for a backend that
// implements it (at the default retention); such a backend's tests also
// call RunImpressions, which opens it with short retentions.
//
// What the suite cannot check portably: that a batch failing half way
// (disk full, connection lost after some writes) leaves nothing behind.
// Nothing in the Backend interface can make a backend fail mid-batch, so
// Run checks the one portable fault, an ended context, and each backend
// documents how its write is atomic (one Pebble batch, one MULTI/EXEC or
// Lua script).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// Run runs the conformance suite against the backend open returns. Each
// subtest calls open for a fresh, empty backend, so open must give one that
// shares nothing with earlier calls (a new directory, a new key prefix),
// and register its Close with t.Cleanup; the suite closes some backends
// itself, so Close must tolerate being called twice.
func Run(t *testing.T, open func(t *testing.T) store.Backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, open func(t *testing.T) store.Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"Idempotency", testIdempotency},
		{"EndedContext", testEndedContext},
		{"Items", testItems},
		{"DeleteUser", testDeleteUser},
		{"UserEvents", testUserEvents},
		{"Seeded", testSeeded},
		{"ScanCallbackError", testScanCallbackError},
		{"ConcurrentAppend", testConcurrentAppend},
		{"Closed", testClosed},
		{"Impressions", testImpressions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

// testRoundTrip checks that every field of items and events comes back as
// stored, and that a user's events come back in arrival order even when
// their times say otherwise (a late event keeps its place).
func testRoundTrip(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	items := []dataset.Item{
		{ID: "i1", Title: "Boots", Category: "shoes", Brand: "acme", Price: 79.99, Description: "warm\nand dry"},
		{ID: "i2", Title: "Apron", Price: math.NaN(), OutOfStock: true},
		{ID: "i3", Hidden: true, Price: -0.5},
		{ID: "", Title: "empty id"},
		{ID: "i\x00\xff", Title: "binary id"},
	}
	mustUpsert(t, b, items...)

	late := ev("e4", "u1", "i2", -3600) // arrives fourth, happened an hour earlier
	late.Type, late.Value = "rating", -2.25
	bare := store.Event{ID: "e5", UserID: "u1", ItemID: "i1", Type: "purchase", Time: at(7)}
	odd := ev("e\x00:6", "u\x00:2", "i\xff", 8)
	odd.Context = map[string]string{"": "", "k\x00": "v\xff", "long": string(make([]byte, 300))}
	batches := [][]store.Event{
		{ev("e1", "u1", "i1", 1), ev("e2", "u2", "i1", 2)},
		{ev("e3", "u1", "i3", 3), late, bare},
		{ev("", "u2", "i2", 4), odd, ev("e7", "u2", "i9", 9)},
	}
	var all []store.Event
	for _, batch := range batches {
		stored := mustAppend(t, b, batch...)
		if !eventsEqual(stored, batch) {
			t.Errorf("Append() = %s; want %s", fmtEvents(stored), fmtEvents(batch))
		}
		all = append(all, batch...)
	}
	check(t, scan(t, b), want(items, all))
}

// testIdempotency checks that an event ID is stored once: across batches,
// within a batch, and across users (IDs are global), while events without
// an ID are all kept.
func testIdempotency(t *testing.T, open func(t *testing.T) store.Backend) {
	// Each event's ItemID names it, so expectations read as lists of names.
	type batch []store.Event
	tests := []struct {
		name    string
		batches []batch
		// stored lists, per batch, the names Append must return.
		stored [][]string
		// scan lists the names Scan must give, per user, in order.
		scan map[string][]string
	}{{
		name:    "repeat in a later batch",
		batches: []batch{{ev("a", "u", "n1", 1), ev("b", "u", "n2", 2)}, {ev("a", "u", "n3", 3), ev("c", "u", "n4", 4)}},
		stored:  [][]string{{"n1", "n2"}, {"n4"}},
		scan:    map[string][]string{"u": {"n1", "n2", "n4"}},
	}, {
		name:    "repeat within a batch",
		batches: []batch{{ev("a", "u", "n1", 1), ev("b", "u", "n2", 2), ev("a", "u", "n3", 3), ev("a", "u", "n4", 4)}},
		stored:  [][]string{{"n1", "n2"}},
		scan:    map[string][]string{"u": {"n1", "n2"}},
	}, {
		name:    "batch of repeats only",
		batches: []batch{{ev("a", "u", "n1", 1)}, {ev("a", "u", "n2", 2), ev("a", "u", "n3", 3)}},
		stored:  [][]string{{"n1"}, {}},
		scan:    map[string][]string{"u": {"n1"}},
	}, {
		name:    "empty IDs are never deduplicated",
		batches: []batch{{ev("", "u", "n1", 1), ev("", "u", "n2", 1)}, {ev("", "u", "n3", 1)}},
		stored:  [][]string{{"n1", "n2"}, {"n3"}},
		scan:    map[string][]string{"u": {"n1", "n2", "n3"}},
	}, {
		name:    "IDs are global across users",
		batches: []batch{{ev("a", "u1", "n1", 1)}, {ev("a", "u2", "n2", 2), ev("b", "u2", "n3", 3)}},
		stored:  [][]string{{"n1"}, {"n3"}},
		scan:    map[string][]string{"u1": {"n1"}, "u2": {"n3"}},
	}, {
		name:    "IDs that prefix each other are distinct",
		batches: []batch{{ev("a", "u", "n1", 1), ev("ab", "u", "n2", 2), ev("a\x00", "u", "n3", 3)}},
		stored:  [][]string{{"n1", "n2", "n3"}},
		scan:    map[string][]string{"u": {"n1", "n2", "n3"}},
	}, {
		name:    "empty batch",
		batches: []batch{{}, nil},
		stored:  [][]string{{}, {}},
		scan:    map[string][]string{},
	}}
	names := func(es []store.Event) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.ItemID)
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t)
			for i, batch := range tt.batches {
				stored := mustAppend(t, b, batch...)
				if got := names(stored); !slices.Equal(got, tt.stored[i]) {
					t.Errorf("batch %d: Append(%v) stored %v; want %v", i, names(batch), got, tt.stored[i])
				}
			}
			s := scan(t, b)
			got := map[string][]string{}
			for u, es := range s.events {
				got[u] = names(es)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.scan) {
				t.Errorf("Scan() = %v; want %v", got, tt.scan)
			}
		})
	}
}

// testEndedContext checks that a write whose context has ended fails with
// the context's error and changes nothing, not even the idempotency keys:
// the same batch appended again afterwards is stored whole.
func testEndedContext(t *testing.T, open func(t *testing.T) store.Backend) {
	batch := []store.Event{ev("x1", "u0", "i0", 5), ev("x2", "u1", "i1", 6), ev("", "u1", "i1", 7)}
	tests := []struct {
		name  string
		write func(ctx context.Context, b store.Backend) error
	}{
		{"Append", func(ctx context.Context, b store.Backend) error {
			stored, err := b.Append(ctx, batch)
			if len(stored) != 0 {
				return fmt.Errorf("stored %d events with an error", len(stored))
			}
			return err
		}},
		{"UpsertItems", func(ctx context.Context, b store.Backend) error {
			return b.UpsertItems(ctx, []dataset.Item{{ID: "i0", Title: "changed"}, {ID: "i9"}})
		}},
		{"DeleteItems", func(ctx context.Context, b store.Backend) error {
			_, err := b.DeleteItems(ctx, []string{"i0"})
			return err
		}},
		{"DeleteUser", func(ctx context.Context, b store.Backend) error {
			_, err := b.DeleteUser(ctx, "u0")
			return err
		}},
		{"MarkSeeded", func(ctx context.Context, b store.Backend) error { return b.MarkSeeded(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t)
			items := []dataset.Item{{ID: "i0", Title: "Boots", Price: 3}}
			events := []store.Event{ev("e0", "u0", "i0", 1)}
			mustUpsert(t, b, items...)
			mustAppend(t, b, events...)

			if err := tt.write(cancelled(t), b); !errors.Is(err, context.Canceled) {
				t.Errorf("%s(cancelled ctx) error = %v; want %v", tt.name, err, context.Canceled)
			}
			check(t, scan(t, b), want(items, events))
			if seeded, err := b.Seeded(t.Context()); err != nil || seeded {
				t.Errorf("Seeded() = %v, %v; want false, nil", seeded, err)
			}
			if stored := mustAppend(t, b, batch...); !eventsEqual(stored, batch) {
				t.Errorf("Append() after a cancelled write = %s; want %s", fmtEvents(stored), fmtEvents(batch))
			}
		})
	}
}

// testItems checks that an upsert replaces the whole item (fields it leaves
// empty become empty) and that DeleteItems counts only items that existed.
func testItems(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	mustUpsert(t, b,
		dataset.Item{ID: "a", Title: "Apron", Category: "kitchen", Brand: "acme", Price: 12, Description: "cotton", Hidden: true},
		dataset.Item{ID: "b", Title: "Boots", Price: math.NaN(), OutOfStock: true},
		dataset.Item{ID: "c", Title: "Cap", Price: 5},
		dataset.Item{ID: "cc", Title: "Cape", Price: 50},
	)
	// Replace a whole; upsert the same ID twice in one call (the last wins).
	mustUpsert(t, b,
		dataset.Item{ID: "a", Title: "Apron v2", Price: math.NaN()},
		dataset.Item{ID: "d", Title: "Dress", Price: 1},
		dataset.Item{ID: "d", Title: "Dress v2", Price: 2, OutOfStock: true, Hidden: true},
	)
	check(t, scan(t, b), want([]dataset.Item{
		{ID: "a", Title: "Apron v2", Price: math.NaN()},
		{ID: "b", Title: "Boots", Price: math.NaN(), OutOfStock: true},
		{ID: "c", Title: "Cap", Price: 5},
		{ID: "cc", Title: "Cape", Price: 50},
		{ID: "d", Title: "Dress v2", Price: 2, OutOfStock: true, Hidden: true},
	}, nil))

	tests := []struct {
		ids  []string
		want int
	}{
		{[]string{"b", "missing"}, 1},
		{[]string{"b"}, 0}, // already gone
		{[]string{"c", "d"}, 2},
		{nil, 0},
	}
	for _, tt := range tests {
		n, err := b.DeleteItems(t.Context(), tt.ids)
		if err != nil || n != tt.want {
			t.Errorf("DeleteItems(%q) = %d, %v; want %d, nil", tt.ids, n, err, tt.want)
		}
	}
	check(t, scan(t, b), want([]dataset.Item{
		{ID: "a", Title: "Apron v2", Price: math.NaN()},
		{ID: "cc", Title: "Cape", Price: 50},
	}, nil))
}

// testDeleteUser checks that DeleteUser removes the user's events and
// idempotency keys and nothing of anyone else, including users whose IDs
// the deleted one is a prefix of.
func testDeleteUser(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	items := []dataset.Item{{ID: "i1", Title: "Boots"}}
	mustUpsert(t, b, items...)
	gone := []store.Event{ev("a1", "a", "i1", 1), ev("a2", "a", "i2", 2), ev("", "a", "i3", 3)}
	kept := []store.Event{
		ev("b1", "ab", "i1", 1), ev("b2", "a\x00", "i1", 2), ev("b3", "", "i1", 3),
		ev("b4", "b", "a", 4), // item named like the deleted user
	}
	mustAppend(t, b, gone[0], kept[0], kept[1])
	mustAppend(t, b, gone[1], kept[2], gone[2], kept[3])

	n, err := b.DeleteUser(t.Context(), "a")
	if err != nil || n != len(gone) {
		t.Fatalf("DeleteUser(%q) = %d, %v; want %d, nil", "a", n, err, len(gone))
	}
	check(t, scan(t, b), want(items, kept))
	if es, total, err := b.UserEvents(t.Context(), "a", 10); err != nil || len(es) != 0 || total != 0 {
		t.Errorf("UserEvents(%q, 10) = %s, %d, %v; want [], 0, nil", "a", fmtEvents(es), total, err)
	}
	for _, u := range []string{"a", "nobody"} {
		if n, err := b.DeleteUser(t.Context(), u); err != nil || n != 0 {
			t.Errorf("DeleteUser(%q) of a user with no events = %d, %v; want 0, nil", u, n, err)
		}
	}

	// The deleted user's event IDs are free again; others' are still held.
	again := []store.Event{ev("a1", "a", "i1", 10), ev("b1", "ab", "i1", 11), ev("a2", "c", "i1", 12)}
	stored := mustAppend(t, b, again...)
	if wantStored := []store.Event{again[0], again[2]}; !eventsEqual(stored, wantStored) {
		t.Errorf("Append() after DeleteUser = %s; want %s", fmtEvents(stored), fmtEvents(wantStored))
	}
	check(t, scan(t, b), want(items, append(kept, again[0], again[2])))
}

// testUserEvents checks that UserEvents gives the newest arrivals first,
// cut at limit, with the user's full count.
func testUserEvents(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	// Arrival order e1..e5; e4 carries the oldest time but arrived fourth.
	es := []store.Event{
		ev("e1", "u", "i1", 1), ev("e2", "u", "i2", 2), ev("e3", "u", "i3", 3),
		ev("e4", "u", "i4", -100), ev("", "u", "i5", 5),
	}
	mustAppend(t, b, es[0], ev("x1", "u2", "i1", 1), ev("x2", "uu", "i1", 1))
	mustAppend(t, b, es[1:3]...)
	mustAppend(t, b, ev("x3", "u2", "i1", 1))
	mustAppend(t, b, es[3:]...)

	newest := slices.Clone(es)
	slices.Reverse(newest)
	tests := []struct {
		user      string
		limit     int
		want      []store.Event
		wantTotal int
	}{
		{"u", 1, newest[:1], 5},
		{"u", 3, newest[:3], 5},
		{"u", 5, newest, 5},
		{"u", 100, newest, 5},
		{"u", 0, nil, 5},
		{"u2", 10, []store.Event{ev("x3", "u2", "i1", 1), ev("x1", "u2", "i1", 1)}, 2},
		{"nobody", 10, nil, 0},
	}
	for _, tt := range tests {
		got, total, err := b.UserEvents(t.Context(), tt.user, tt.limit)
		if err != nil || !eventsEqual(got, tt.want) || total != tt.wantTotal {
			t.Errorf("UserEvents(%q, %d) = %s, %d, %v; want %s, %d, nil",
				tt.user, tt.limit, fmtEvents(got), total, err, fmtEvents(tt.want), tt.wantTotal)
		}
	}
}

// testSeeded checks the seeding flag: false on a new backend, true after
// MarkSeeded, which may be called again.
func testSeeded(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	steps := []struct {
		mark bool
		want bool
	}{{false, false}, {true, true}, {true, true}}
	for i, s := range steps {
		if s.mark {
			if err := b.MarkSeeded(t.Context()); err != nil {
				t.Fatalf("step %d: MarkSeeded() error = %v; want nil", i, err)
			}
		}
		if got, err := b.Seeded(t.Context()); err != nil || got != s.want {
			t.Errorf("step %d: Seeded() = %v, %v; want %v, nil", i, got, err, s.want)
		}
	}
}

// testScanCallbackError checks that Scan stops at the first callback error
// and returns it, so a failed start-up load is not mistaken for a complete
// one.
func testScanCallbackError(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	mustUpsert(t, b, dataset.Item{ID: "i1"}, dataset.Item{ID: "i2"})
	mustAppend(t, b, ev("e1", "u", "i1", 1), ev("e2", "u", "i1", 2))
	errStop := errors.New("stop")
	tests := []struct {
		name       string
		failItem   bool
		wantItems  int
		wantEvents int
	}{
		{name: "item callback", failItem: true, wantItems: 1, wantEvents: 0},
		{name: "event callback", wantItems: 2, wantEvents: 1},
	}
	for _, tt := range tests {
		var items, events int
		err := b.Scan(t.Context(), func(dataset.Item) error {
			items++
			if tt.failItem {
				return errStop
			}
			return nil
		}, func(store.Event) error {
			events++
			return errStop
		})
		if !errors.Is(err, errStop) || items != tt.wantItems || events != tt.wantEvents {
			t.Errorf("%s: Scan() = %v after %d items, %d events; want %v after %d, %d",
				tt.name, err, items, events, errStop, tt.wantItems, tt.wantEvents)
		}
	}
	err := b.Scan(cancelled(t), func(dataset.Item) error { return nil }, func(store.Event) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Scan(cancelled ctx) = %v; want %v", err, context.Canceled)
	}
}

// testConcurrentAppend appends overlapping ID sets from many goroutines and
// checks every ID is stored, and reported stored, exactly once: the check
// for a held ID and the write are one atomic step.
func testConcurrentAppend(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	const (
		writers = 8
		batches = 20
		size    = 25
		pool    = 300
	)
	var (
		mu       sync.Mutex
		reported = map[string]int{}
		wg       sync.WaitGroup
		errs     = make(chan error, writers)
	)
	want := map[string]bool{}
	plans := make([][][]store.Event, writers)
	for w := range plans {
		r := rand.New(rand.NewPCG(uint64(w), 7))
		for range batches {
			var batch []store.Event
			for range size {
				n := r.IntN(pool)
				id := fmt.Sprintf("id%d", n)
				want[id] = true
				batch = append(batch, ev(id, fmt.Sprintf("u%d", n%7), fmt.Sprintf("i%d", n), n))
			}
			plans[w] = append(plans[w], batch)
		}
	}
	for _, plan := range plans {
		wg.Go(func() {
			for _, batch := range plan {
				stored, err := b.Append(t.Context(), batch)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, e := range stored {
					reported[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Append() error = %v; want nil", err)
	}
	scanned := map[string]int{}
	for _, es := range scan(t, b).events {
		for _, e := range es {
			scanned[e.ID]++
		}
	}
	for id := range want {
		if reported[id] != 1 || scanned[id] != 1 {
			t.Errorf("ID %q: reported stored %d times, scanned %d times; want 1, 1", id, reported[id], scanned[id])
		}
	}
	if len(scanned) != len(want) {
		t.Errorf("Scan() holds %d distinct IDs; want %d", len(scanned), len(want))
	}
}

// testClosed checks that a closed backend answers every call with an error
// wrapping store.ErrUnavailable (the server maps it to Unavailable during
// shutdown) instead of panicking, and that a second Close is harmless.
func testClosed(t *testing.T, open func(t *testing.T) store.Backend) {
	b := open(t)
	mustAppend(t, b, ev("e1", "u", "i1", 1))
	if err := b.Close(); err != nil {
		t.Fatalf("Close() error = %v; want nil", err)
	}
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"Append", func() error { _, err := b.Append(ctx, []store.Event{ev("e2", "u", "i1", 2)}); return err }},
		{"UpsertItems", func() error { return b.UpsertItems(ctx, []dataset.Item{{ID: "i1"}}) }},
		{"DeleteItems", func() error { _, err := b.DeleteItems(ctx, []string{"i1"}); return err }},
		{"DeleteUser", func() error { _, err := b.DeleteUser(ctx, "u"); return err }},
		{"UserEvents", func() error { _, _, err := b.UserEvents(ctx, "u", 10); return err }},
		{"Scan", func() error {
			return b.Scan(ctx, func(dataset.Item) error { return nil }, func(store.Event) error { return nil })
		}},
		{"Seeded", func() error { _, err := b.Seeded(ctx); return err }},
		{"MarkSeeded", func() error { return b.MarkSeeded(ctx) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s() on a closed backend error = %v; want %v", c.name, err, store.ErrUnavailable)
		}
	}
	_ = b.Close() // must not panic; its error is the backend's choice
}

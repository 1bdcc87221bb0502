package storetest

import (
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// RunDurable checks that a backend keeps its whole state across Close and
// a new open: items, events in arrival order, idempotency keys, deletions,
// the seeded flag and, for a store.ImpressionStore, impressions and
// outcomes, and that events appended after a reopen still come
// after the old ones.
//
// newStore creates one empty underlying store (a directory, a key prefix on
// a server) and returns a function that opens it; RunDurable calls that
// function several times, closing each backend before it opens the next
// (and again at cleanup, so Close must tolerate a second call).
// It is shaped so an embedded backend reopens its directory and a shared
// one reconnects to the same server.
func RunDurable(t *testing.T, newStore func(t *testing.T) (open func() (store.Backend, error))) {
	open := newStore(t)
	reopen := func(step string) store.Backend {
		t.Helper()
		b, err := open()
		if err != nil {
			t.Fatalf("%s: open() error = %v; want nil", step, err)
		}
		t.Cleanup(func() { b.Close() }) // for a test that stops half way
		return b
	}
	closeBackend := func(step string, b store.Backend) {
		t.Helper()
		if err := b.Close(); err != nil {
			t.Fatalf("%s: Close() error = %v; want nil", step, err)
		}
	}

	// First life: write everything, ending with a deletion of the user whose
	// events are newest, so a backend recovering its sequence from the
	// newest remaining event is tested too.
	b := reopen("first open")
	items := []dataset.Item{{ID: "i1", Title: "Boots", Price: 80}, {ID: "i2", Title: "Apron", OutOfStock: true}}
	mustUpsert(t, b, append(items, dataset.Item{ID: "i3"})...)
	if _, err := b.DeleteItems(t.Context(), []string{"i3"}); err != nil {
		t.Fatalf("DeleteItems() error = %v; want nil", err)
	}
	u1 := []store.Event{ev("e1", "u1", "i1", 1), ev("", "u1", "i2", 2), ev("e2", "u1", "i1", 3)}
	mustAppend(t, b, u1[0], u1[1])
	mustAppend(t, b, u1[2], ev("e3", "u2", "i1", 4), ev("e4", "u2", "i2", 5))
	if n, err := b.DeleteUser(t.Context(), "u2"); err != nil || n != 2 {
		t.Fatalf("DeleteUser(u2) = %d, %v; want 2, nil", n, err)
	}
	if err := b.MarkSeeded(t.Context()); err != nil {
		t.Fatalf("MarkSeeded() error = %v; want nil", err)
	}
	// Impressions need not be synced, but a clean Close keeps them.
	base := impBase()
	imps := []store.Impression{imp("r1", "u1", base, 1), imp("r2", "u1", base, 2)}
	outs := []store.Outcome{outcome("r1", "e1", "u1", base, 3)}
	is, hasImps := b.(store.ImpressionStore)
	if hasImps {
		mustAppendImps(t, is, imps...)
		mustAppendOutcomes(t, is, outs...)
	}
	closeBackend("first life", b)

	// Second life: the state is back; idempotency keys held and freed as
	// before; new events follow the old ones.
	b = reopen("second open")
	check(t, scan(t, b), want(items, u1))
	if seeded, err := b.Seeded(t.Context()); err != nil || !seeded {
		t.Errorf("Seeded() after reopen = %v, %v; want true, nil", seeded, err)
	}
	if hasImps {
		checkScan(t, scanImps(t, b.(store.ImpressionStore), time.Time{}, base.Add(time.Hour)),
			map[string][]store.Impression{"u1": imps}, map[string][]store.Outcome{"u1": outs})
	}
	later := []store.Event{ev("e1", "u1", "i9", 9), ev("e3", "u2", "i1", 10), ev("e5", "u1", "i2", -50)}
	stored := mustAppend(t, b, later...)
	if want := later[1:]; !eventsEqual(stored, want) {
		t.Errorf("Append() after reopen = %s; want %s", fmtEvents(stored), fmtEvents(want))
	}
	final := append(u1, later[1:]...)
	check(t, scan(t, b), want(items, final))
	closeBackend("second life", b)

	// Third life: nothing written since, nothing lost.
	b = reopen("third open")
	check(t, scan(t, b), want(items, final))
	if got, total, err := b.UserEvents(t.Context(), "u1", 1); err != nil || total != 4 || !eventsEqual(got, later[2:]) {
		t.Errorf("UserEvents(u1, 1) after reopen = %s, %d, %v; want %s, 4, nil", fmtEvents(got), total, err, fmtEvents(later[2:]))
	}
	closeBackend("third life", b)
}

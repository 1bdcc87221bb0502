package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// followTimeout bounds how long RunFollower waits for a change to travel
// between replicas; it only matters when a change is lost.
const followTimeout = 10 * time.Second

// RunFollower checks the change feed of a shared backend. open returns two
// replicas, a and b, on one fresh underlying store (both implementing
// store.Follower) and registers their Close with t.Cleanup.
//
// It checks that every write through a (Append, UpsertItems, DeleteItems,
// DeleteUser) reaches b's Follow, in order, with the events as stored
// (duplicates dropped); that a replica is not told of its own writes; and
// that Follow returns once its context ends. Writes made after b was
// opened but before b.Follow was called must reach it too: a replica Scans
// and then Follows, and nothing written in between may be lost.
func RunFollower(t *testing.T, open func(t *testing.T) (a, b store.Backend)) {
	a, b := open(t)
	fa, ok := a.(store.Follower)
	if !ok {
		t.Fatalf("replica a (%T) does not implement store.Follower", a)
	}
	fb, ok := b.(store.Follower)
	if !ok {
		t.Fatalf("replica b (%T) does not implement store.Follower", b)
	}

	// Written before b follows.
	first := []store.Event{ev("e1", "u1", "i1", 1), ev("e2", "u2", "i1", 2)}
	mustAppend(t, a, first...)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seenByA, doneA := follow(ctx, fa)
	seenByB, doneB := follow(ctx, fb)

	items := []dataset.Item{{ID: "i1", Title: "Boots", Price: 80}, {ID: "i2", Price: math.NaN(), Hidden: true}}
	e3 := ev("e3", "u1", "i2", 3)
	mustAppend(t, a, ev("e1", "u1", "i1", 1), e3) // e1 is a duplicate
	mustAppend(t, a, ev("e2", "u2", "i1", 2))     // duplicates only: no events to report
	mustUpsert(t, a, items...)
	if n, err := a.DeleteItems(t.Context(), []string{"i1"}); err != nil || n != 1 {
		t.Fatalf("DeleteItems(i1) = %d, %v; want 1, nil", n, err)
	}
	if n, err := a.DeleteUser(t.Context(), "u1"); err != nil || n != 2 {
		t.Fatalf("DeleteUser(u1) = %d, %v; want 2, nil", n, err)
	}
	wantB := []op{
		{kind: "event", event: first[0]}, {kind: "event", event: first[1]},
		{kind: "event", event: e3},
		{kind: "item", item: items[0]}, {kind: "item", item: items[1]},
		{kind: "deleted item", id: "i1"},
		{kind: "deleted user", id: "u1"},
	}
	expect(t, "b", seenByB, doneB, wantB)

	// A write through b reaches a as the first thing a hears: a was not told
	// of its own writes above. Then the same the other way round.
	fromB := ev("e9", "u3", "i2", 9)
	mustAppend(t, b, fromB)
	expect(t, "a", seenByA, doneA, []op{{kind: "event", event: fromB}})
	fromA := ev("e10", "u3", "i2", 10)
	mustAppend(t, a, fromA)
	expect(t, "b", seenByB, doneB, []op{{kind: "event", event: fromA}})

	cancel()
	for name, done := range map[string]<-chan error{"a": doneA, "b": doneB} {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("replica %s: Follow() after cancel = %v; want nil or %v", name, err, context.Canceled)
			}
		case <-time.After(followTimeout):
			t.Errorf("replica %s: Follow() still running %v after its context ended", name, followTimeout)
		}
	}
}

// op is one write as a follower sees it, a Change flattened so the order
// of writes can be checked whatever way a backend groups them.
type op struct {
	kind  string
	event store.Event
	item  dataset.Item
	id    string
}

func (o op) String() string {
	switch o.kind {
	case "event":
		return "event " + fmtEvents([]store.Event{o.event})
	case "item":
		return fmt.Sprintf("item %+v", o.item)
	default:
		return fmt.Sprintf("%s %q", o.kind, o.id)
	}
}

func (o op) equal(w op) bool {
	return o.kind == w.kind && o.id == w.id && eventEqual(o.event, w.event) && itemEqual(o.item, w.item)
}

// follow runs f.Follow until ctx ends, sending every change it reports as
// ops; done receives Follow's result.
func follow(ctx context.Context, f store.Follower) (<-chan op, <-chan error) {
	ops := make(chan op, 1024)
	done := make(chan error, 1)
	// send gives up once ctx ends, so a test that stopped reading does not
	// leave Follow blocked in apply.
	send := func(o op) {
		select {
		case ops <- o:
		case <-ctx.Done():
		}
	}
	go func() {
		done <- f.Follow(ctx, func(c store.Change) {
			if c.Resync {
				send(op{kind: "resync"})
			}
			for _, e := range c.Events {
				send(op{kind: "event", event: e})
			}
			for _, it := range c.Items {
				send(op{kind: "item", item: it})
			}
			for _, id := range c.DeletedItems {
				send(op{kind: "deleted item", id: id})
			}
			if c.DeletedUser != "" {
				send(op{kind: "deleted user", id: c.DeletedUser})
			}
		})
	}()
	return ops, done
}

// expect waits for the ops want, in order, from a replica's feed.
func expect(t *testing.T, replica string, ops <-chan op, done <-chan error, want []op) {
	t.Helper()
	timeout := time.NewTimer(followTimeout)
	defer timeout.Stop()
	for i, w := range want {
		select {
		case got := <-ops:
			if !got.equal(w) {
				t.Fatalf("replica %s: change %d = %v; want %v", replica, i, got, w)
			}
		case err := <-done:
			t.Fatalf("replica %s: Follow() = %v before change %d (%v) arrived", replica, err, i, w)
		case <-timeout.C:
			t.Fatalf("replica %s: change %d (%v) not reported within %v", replica, i, w, followTimeout)
		}
	}
}

package storetest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/storetest"
)

// shared is a reference in-memory store written the obvious way, for
// checking the suite itself: a correct backend must pass it. Replicas are
// views of it with their own identity in the change log.
type shared struct {
	mu      sync.Mutex
	changed *sync.Cond
	items   map[string]dataset.Item
	events  []store.Event // arrival order
	ids     map[string]bool
	seeded  bool
	log     []logged
}

type logged struct {
	writer *replica
	change store.Change
}

func newShared() *shared {
	s := &shared{items: map[string]dataset.Item{}, ids: map[string]bool{}}
	s.changed = sync.NewCond(&s.mu)
	return s
}

// replica is one Backend over a shared store.
type replica struct {
	s      *shared
	start  int // log position when opened: Follow reports from here
	closed bool
}

func (s *shared) open() *replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &replica{s: s, start: len(s.log)}
}

// begin locks the store and checks the call may proceed.
func (r *replica) begin(ctx context.Context) error {
	r.s.mu.Lock()
	if r.closed {
		r.s.mu.Unlock()
		return fmt.Errorf("closed: %w", store.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		r.s.mu.Unlock()
		return err
	}
	return nil
}

func (r *replica) publishLocked(c store.Change) {
	r.s.log = append(r.s.log, logged{writer: r, change: c})
	r.s.changed.Broadcast()
}

func (r *replica) Append(ctx context.Context, events []store.Event) ([]store.Event, error) {
	if err := r.begin(ctx); err != nil {
		return nil, err
	}
	defer r.s.mu.Unlock()
	var stored []store.Event
	for _, e := range events {
		if e.ID != "" {
			if r.s.ids[e.ID] {
				continue
			}
			r.s.ids[e.ID] = true
		}
		stored = append(stored, e)
	}
	r.s.events = append(r.s.events, stored...)
	r.publishLocked(store.Change{Events: stored})
	return stored, nil
}

func (r *replica) UpsertItems(ctx context.Context, items []dataset.Item) error {
	if err := r.begin(ctx); err != nil {
		return err
	}
	defer r.s.mu.Unlock()
	for _, it := range items {
		r.s.items[it.ID] = it
	}
	r.publishLocked(store.Change{Items: items})
	return nil
}

func (r *replica) DeleteItems(ctx context.Context, ids []string) (int, error) {
	if err := r.begin(ctx); err != nil {
		return 0, err
	}
	defer r.s.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := r.s.items[id]; ok {
			delete(r.s.items, id)
			n++
		}
	}
	r.publishLocked(store.Change{DeletedItems: ids})
	return n, nil
}

func (r *replica) DeleteUser(ctx context.Context, userID string) (int, error) {
	if err := r.begin(ctx); err != nil {
		return 0, err
	}
	defer r.s.mu.Unlock()
	n := len(r.s.events)
	r.s.events = slices.DeleteFunc(r.s.events, func(e store.Event) bool {
		if e.UserID == userID {
			delete(r.s.ids, e.ID)
			return true
		}
		return false
	})
	r.publishLocked(store.Change{DeletedUser: userID})
	return n - len(r.s.events), nil
}

func (r *replica) UserEvents(ctx context.Context, userID string, limit int) ([]store.Event, int, error) {
	if err := r.begin(ctx); err != nil {
		return nil, 0, err
	}
	defer r.s.mu.Unlock()
	var out []store.Event
	total := 0
	for _, e := range slices.Backward(r.s.events) {
		if e.UserID == userID {
			if total < limit {
				out = append(out, e)
			}
			total++
		}
	}
	return out, total, nil
}

func (r *replica) Scan(ctx context.Context, item func(dataset.Item) error, event func(store.Event) error) error {
	if err := r.begin(ctx); err != nil {
		return err
	}
	defer r.s.mu.Unlock()
	for _, it := range r.s.items {
		if err := item(it); err != nil {
			return err
		}
	}
	for _, e := range r.s.events {
		if err := event(e); err != nil {
			return err
		}
	}
	return nil
}

func (r *replica) Seeded(ctx context.Context) (bool, error) {
	if err := r.begin(ctx); err != nil {
		return false, err
	}
	defer r.s.mu.Unlock()
	return r.s.seeded, nil
}

func (r *replica) MarkSeeded(ctx context.Context) error {
	if err := r.begin(ctx); err != nil {
		return err
	}
	defer r.s.mu.Unlock()
	r.s.seeded = true
	return nil
}

func (r *replica) Close() error {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.closed = true
	r.s.changed.Broadcast()
	return nil
}

func (r *replica) Follow(ctx context.Context, apply func(store.Change)) error {
	stop := context.AfterFunc(ctx, func() {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		r.s.changed.Broadcast()
	})
	defer stop()
	next := r.start
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	for {
		for next == len(r.s.log) && ctx.Err() == nil && !r.closed {
			r.s.changed.Wait()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.closed {
			return fmt.Errorf("closed: %w", store.ErrUnavailable)
		}
		l := r.s.log[next]
		next++
		if l.writer != r {
			r.s.mu.Unlock()
			apply(l.change)
			r.s.mu.Lock()
		}
	}
}

var (
	_ store.Backend  = (*replica)(nil)
	_ store.Follower = (*replica)(nil)
)

func TestReference(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		r := newShared().open()
		t.Cleanup(func() { r.Close() })
		return r
	})
}

func TestReferenceDurable(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T) func() (store.Backend, error) {
		s := newShared()
		return func() (store.Backend, error) { return s.open(), nil }
	})
}

func TestReferenceFollower(t *testing.T) {
	storetest.RunFollower(t, func(t *testing.T) (a, b store.Backend) {
		s := newShared()
		ra, rb := s.open(), s.open()
		t.Cleanup(func() { ra.Close(); rb.Close() })
		return ra, rb
	})
}

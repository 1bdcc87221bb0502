package storetest_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
	// impressions and outcomes are kept for retention.
	impressions []store.Impression
	outcomes    []store.Outcome
	retention   time.Duration
}

type logged struct {
	writer *replica
	change store.Change
}

func newShared() *shared {
	s := &shared{items: map[string]dataset.Item{}, ids: map[string]bool{}, retention: store.DefaultImpressionRetention}
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
	r.s.impressions = slices.DeleteFunc(r.s.impressions, func(m store.Impression) bool { return m.UserID == userID })
	r.s.outcomes = slices.DeleteFunc(r.s.outcomes, func(o store.Outcome) bool { return o.UserID == userID })
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

// AppendImpressions keeps impressions of identified users, an impression
// of the same ID and time replacing the one held.
func (r *replica) AppendImpressions(ctx context.Context, imps []store.Impression) error {
	if err := r.begin(ctx); err != nil {
		return err
	}
	defer r.s.mu.Unlock()
	for _, m := range imps {
		if m.UserID == "" {
			continue
		}
		m.Models, m.Items = slices.Clone(m.Models), slices.Clone(m.Items)
		r.s.impressions = slices.DeleteFunc(r.s.impressions, func(h store.Impression) bool {
			return h.UserID == m.UserID && h.ID == m.ID && h.Time.Equal(m.Time)
		})
		r.s.impressions = append(r.s.impressions, m)
	}
	return nil
}

// AppendOutcomes keeps outcomes of identified users, an equal one once.
func (r *replica) AppendOutcomes(ctx context.Context, outs []store.Outcome) error {
	if err := r.begin(ctx); err != nil {
		return err
	}
	defer r.s.mu.Unlock()
	for _, o := range outs {
		if o.UserID != "" && !slices.ContainsFunc(r.s.outcomes, func(h store.Outcome) bool { return h == o }) {
			r.s.outcomes = append(r.s.outcomes, o)
		}
	}
	return nil
}

// byTime orders impressions oldest first, then by ID.
func byTime(a, b store.Impression) int {
	return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID, b.ID))
}

func (r *replica) UserImpressions(ctx context.Context, userID string, since time.Time) ([]store.Impression, error) {
	if err := r.begin(ctx); err != nil {
		return nil, err
	}
	defer r.s.mu.Unlock()
	cutoff := time.Now().Add(-r.s.retention)
	var out []store.Impression
	for _, m := range r.s.impressions {
		if m.UserID == userID && !m.Time.Before(since) && !m.Time.Before(cutoff) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b store.Impression) int { return byTime(b, a) })
	return out, nil
}

func (r *replica) ScanImpressions(ctx context.Context, since, until time.Time, fn func(string, []store.Impression, []store.Outcome) error) error {
	if err := r.begin(ctx); err != nil {
		return err
	}
	defer r.s.mu.Unlock()
	cutoff := time.Now().Add(-r.s.retention)
	byUser := map[string][]store.Impression{}
	for _, m := range r.s.impressions {
		if !m.Time.Before(since) && m.Time.Before(until) && !m.Time.Before(cutoff) {
			byUser[m.UserID] = append(byUser[m.UserID], m)
		}
	}
	for _, u := range slices.Sorted(maps.Keys(byUser)) {
		imps := byUser[u]
		slices.SortFunc(imps, byTime)
		var outs []store.Outcome
		for _, o := range r.s.outcomes {
			if o.UserID == u && !o.Time.Before(cutoff) &&
				slices.ContainsFunc(imps, func(m store.Impression) bool { return m.ID == o.ImpressionID }) {
				outs = append(outs, o)
			}
		}
		if err := fn(u, imps, outs); err != nil {
			return err
		}
	}
	return nil
}

var (
	_ store.Backend         = (*replica)(nil)
	_ store.Follower        = (*replica)(nil)
	_ store.ImpressionStore = (*replica)(nil)
)

func TestReference(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		r := newShared().open()
		t.Cleanup(func() { r.Close() })
		return r
	})
}

func TestReferenceImpressions(t *testing.T) {
	storetest.RunImpressions(t, func(t *testing.T, retention time.Duration) storetest.ImpressionBackend {
		s := newShared()
		s.retention = retention
		r := s.open()
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

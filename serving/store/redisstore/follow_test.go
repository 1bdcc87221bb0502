package redisstore

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/serving/store"
)

// follower runs Follow on a Store in the background and hands its changes
// over a channel; stop ends Follow and returns its error.
type follower struct {
	changes chan store.Change
	cancel  context.CancelFunc
	done    chan error
}

func follow(t *testing.T, s *Store, apply func(store.Change)) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{changes: make(chan store.Change, 1000), cancel: cancel, done: make(chan error, 1)}
	if apply == nil {
		apply = func(ch store.Change) { f.changes <- ch }
	}
	go func() { f.done <- s.Follow(ctx, apply) }()
	t.Cleanup(func() { f.stop(t) })
	return f
}

func (f *follower) stop(t *testing.T) error {
	t.Helper()
	f.cancel()
	select {
	case err, ok := <-f.done:
		if ok {
			close(f.done)
		}
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return within 5s of its ctx ending")
		return nil
	}
}

func (f *follower) next(t *testing.T) store.Change {
	t.Helper()
	select {
	case ch := <-f.changes:
		return ch
	case <-time.After(5 * time.Second):
		t.Fatal("no change within 5s")
		return store.Change{}
	}
}

// quiet checks that no change arrives for a while.
func (f *follower) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ch := <-f.changes:
		t.Errorf("unexpected change %+v", ch)
	case <-time.After(d):
	}
}

func TestFollowSeesOtherReplicasWrites(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := open(t, srv, Options{})
	b := open(t, srv, Options{FollowBlock: 100 * time.Millisecond})
	f := follow(t, b, nil)

	e1, e2, e3 := ev("1", "u1", "i1", 1), ev("2", "u2", "i1", 2), ev("3", "u1", "i2", 3)
	e1.Context = map[string]string{"k": "v"}
	steps := []struct {
		name  string
		write func() error
		want  []store.Change
	}{
		{"append, one entry per user", func() error {
			_, err := a.Append(ctx, []store.Event{e1, e2, e3, e1})
			return err
		}, []store.Change{{Events: []store.Event{e1, e3}}, {Events: []store.Event{e2}}}},
		{"upsert items", func() error {
			return a.UpsertItems(ctx, []dataset.Item{{ID: "i1", Title: "T", Price: 3}, {ID: "i2"}})
		}, []store.Change{{Items: []dataset.Item{{ID: "i1", Title: "T", Price: 3}, {ID: "i2"}}}}},
		{"delete items", func() error {
			_, err := a.DeleteItems(ctx, []string{"i2", "none"})
			return err
		}, []store.Change{{DeletedItems: []string{"i2", "none"}}}},
		{"delete user", func() error {
			_, err := a.DeleteUser(ctx, "u1")
			return err
		}, []store.Change{{DeletedUser: "u1"}}},
		{"own writes are not reported", func() error {
			if _, err := b.Append(ctx, []store.Event{ev("4", "u3", "i1", 4)}); err != nil {
				return err
			}
			return b.UpsertItems(ctx, []dataset.Item{{ID: "i9"}})
		}, nil},
		{"duplicates announce nothing", func() error {
			_, err := a.Append(ctx, []store.Event{e2})
			return err
		}, nil},
	}
	for _, st := range steps {
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for _, want := range st.want {
			if got := f.next(t); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: change %+v; want %+v", st.name, got, want)
			}
		}
	}
	f.quiet(t, 300*time.Millisecond)
	start := time.Now()
	if err := f.stop(t); err != context.Canceled {
		t.Errorf("Follow after cancel = %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Follow took %v to return after cancel; want about FollowBlock (100ms)", d)
	}
}

func TestFollowTwiceAtOnce(t *testing.T) {
	srv := redistest.Start(t)
	b := open(t, srv, Options{FollowBlock: 50 * time.Millisecond})
	follow(t, b, func(store.Change) {})
	time.Sleep(50 * time.Millisecond)
	if err := b.Follow(context.Background(), func(store.Change) {}); err != errFollowing {
		t.Errorf("second concurrent Follow = %v; want errFollowing", err)
	}
}

// state is a replica's view built from Scan and Follow, counting how often
// each event ID reached it.
type state struct {
	mu     sync.Mutex
	seen   map[string]int
	user   map[string]string // event ID → user ID
	items  map[string]dataset.Item
	resync int
}

func newState() *state {
	return &state{seen: map[string]int{}, user: map[string]string{}, items: map[string]dataset.Item{}}
}

func (st *state) addLocked(e store.Event) {
	st.seen[e.ID]++
	st.user[e.ID] = e.UserID
}

func (st *state) load(t *testing.T, s *Store) {
	st.mu.Lock()
	st.seen, st.user, st.items = map[string]int{}, map[string]string{}, map[string]dataset.Item{}
	st.mu.Unlock()
	err := s.Scan(context.Background(),
		func(it dataset.Item) error { st.mu.Lock(); st.items[it.ID] = it; st.mu.Unlock(); return nil },
		func(e store.Event) error { st.mu.Lock(); st.addLocked(e); st.mu.Unlock(); return nil })
	if err != nil {
		t.Errorf("Scan = %v", err)
	}
}

func (st *state) apply(t *testing.T, s *Store) func(store.Change) {
	return func(ch store.Change) {
		if ch.Resync {
			st.mu.Lock()
			st.resync++
			st.mu.Unlock()
			st.load(t, s)
			return
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		for _, e := range ch.Events {
			st.addLocked(e)
		}
		for _, it := range ch.Items {
			st.items[it.ID] = it
		}
		for _, id := range ch.DeletedItems {
			delete(st.items, id)
		}
		if ch.DeletedUser != "" {
			for id, u := range st.user {
				if u == ch.DeletedUser {
					delete(st.seen, id)
					delete(st.user, id)
				}
			}
		}
	}
}

func (st *state) has(id string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.seen[id] > 0
}

// check compares st with the events in Redis: each exactly once.
func (st *state) check(t *testing.T, s *Store) {
	t.Helper()
	_, events := scanAll(t, s)
	st.mu.Lock()
	defer st.mu.Unlock()
	want := map[string]int{}
	for _, e := range events {
		want[e.ID]++
	}
	for id, n := range st.seen {
		if n != 1 || want[id] != 1 {
			t.Errorf("event %s reached the replica %d times; Redis holds it %d times", id, n, want[id])
		}
	}
	for id := range want {
		if st.seen[id] == 0 {
			t.Errorf("event %s is in Redis but never reached the replica", id)
		}
	}
}

// TestScanThenFollowExactlyOnce starts a replica (Open, Scan, Follow)
// while another writes without pause: every event must reach it once.
func TestScanThenFollowExactlyOnce(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a := open(t, srv, Options{})
	var pre []store.Event
	for i := range 20000 {
		pre = append(pre, ev(fmt.Sprintf("p%d", i), fmt.Sprintf("u%d", i%500), "i", int64(i)))
	}
	if _, err := a.Append(ctx, pre); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				written = i
				return
			default:
			}
			batch := []store.Event{
				ev(fmt.Sprintf("w%d", i), fmt.Sprintf("u%d", i%7), "i", int64(i)),
				ev(fmt.Sprintf("x%d", i), fmt.Sprintf("u%d", i%11), "i", int64(i)),
			}
			if _, err := a.Append(ctx, batch); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 0 {
				if err := a.UpsertItems(ctx, []dataset.Item{{ID: "i", Price: float64(i)}}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})

	b := open(t, srv, Options{FollowBlock: 100 * time.Millisecond})
	time.Sleep(20 * time.Millisecond) // writes between Open and Scan
	st := newState()
	st.load(t, b)
	f := follow(t, b, st.apply(t, b))
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if _, err := a.Append(ctx, []store.Event{ev("end", "u0", "i", 0)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !st.has("end") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not receive the last event within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.stop(t)
	t.Logf("%d batches written while the replica started", written)
	if written < 10 {
		t.Errorf("only %d batches written during the start-up; the race was not exercised", written)
	}
	st.check(t, b)
	if st.resync != 0 {
		t.Errorf("%d resyncs; want none", st.resync)
	}
	if got, _ := scanAll(t, b); st.items["i"] != got[0] {
		t.Errorf("replica's item %+v; Redis holds %+v", st.items["i"], got[0])
	}
}

// TestFollowBehind has a replica fall behind in ways that lose change
// entries (trimmed, a purged deletion) or do not (a user deleted).
func TestFollowBehind(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		behind     func(t *testing.T, a *Store) // writes while b does not follow
		wantResync bool
	}{
		{"trimmed", Options{MaxChanges: 10}, func(t *testing.T, a *Store) {
			for i := range 60 {
				if _, err := a.Append(context.Background(), []store.Event{ev(fmt.Sprint(i), "u", "i", int64(i))}); err != nil {
					t.Fatal(err)
				}
			}
		}, true},
		{"user deleted, its deletion purged", Options{DeletionRetention: -1}, func(t *testing.T, a *Store) {
			ctx := context.Background()
			if _, err := a.Append(ctx, []store.Event{ev("1", "gone", "i", 1), ev("2", "kept", "i", 2)}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.DeleteUser(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"user deleted, its deletion still there", Options{}, func(t *testing.T, a *Store) {
			ctx := context.Background()
			if _, err := a.Append(ctx, []store.Event{ev("1", "gone", "i", 1), ev("2", "kept", "i", 2)}); err != nil {
				t.Fatal(err)
			}
			if _, err := a.DeleteUser(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Small stream nodes make MAXLEN ~ trim close to the limit.
			srv := redistest.Start(t, redistest.Args("--stream-node-max-entries", "2"))
			ctx := context.Background()
			a := open(t, srv, tt.opts)
			b := open(t, srv, Options{FollowBlock: 50 * time.Millisecond})
			st := newState()
			st.load(t, b)
			tt.behind(t, a)
			f := follow(t, b, st.apply(t, b))
			if _, err := a.Append(ctx, []store.Event{ev("end", "u", "i", 0)}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !st.has("end") {
				if time.Now().After(deadline) {
					t.Fatal("the follower did not receive the last event within 10s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			f.stop(t)
			if got := st.resync > 0; got != tt.wantResync {
				t.Errorf("resynced %d times; want resync %v", st.resync, tt.wantResync)
			}
			st.check(t, b)
		})
	}
}

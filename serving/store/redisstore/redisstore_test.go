package redisstore

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/serving/store"
)

func open(t testing.TB, srv *redistest.Server, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), srv.URL(), opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", srv.URL(), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ev(id, user, item string, sec int64) store.Event {
	return store.Event{ID: id, UserID: user, ItemID: item, Type: "view", Value: 1, Time: time.Unix(sec, 0).UTC()}
}

func ids(events []store.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// scanAll reads the whole state through Scan.
func scanAll(t testing.TB, s *Store) ([]dataset.Item, []store.Event) {
	t.Helper()
	var items []dataset.Item
	var events []store.Event
	err := s.Scan(context.Background(),
		func(it dataset.Item) error { items = append(items, it); return nil },
		func(e store.Event) error { events = append(events, e); return nil })
	if err != nil {
		t.Fatalf("Scan = %v", err)
	}
	return items, events
}

func TestAppendDeduplicates(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, []store.Event{ev("a", "u1", "i1", 1), ev("b", "u2", "i1", 2)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []store.Event
		want []string
	}{
		{"all known", []store.Event{ev("a", "u1", "i1", 1), ev("b", "u1", "i1", 1)}, []string{}},
		{"known and new", []store.Event{ev("a", "u1", "i1", 1), ev("c", "u1", "i2", 3)}, []string{"c"}},
		{"repeat within batch", []store.Event{ev("d", "u3", "i1", 4), ev("d", "u3", "i2", 5), ev("e", "u1", "i1", 6)}, []string{"d", "e"}},
		{"empty IDs always stored", []store.Event{ev("", "u1", "i1", 7), ev("", "u1", "i1", 7)}, []string{"", ""}},
		{"known ID of another user", []store.Event{ev("c", "u9", "i1", 8)}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Append(ctx, tt.in)
			if err != nil {
				t.Fatalf("Append = %v", err)
			}
			if g := ids(got); !slices.Equal(g, tt.want) {
				t.Errorf("Append(%v) stored %q; want %q", ids(tt.in), g, tt.want)
			}
		})
	}
	// The first stored event of each ID is what the store keeps.
	got, n, err := s.UserEvents(ctx, "u3", 10)
	if err != nil || n != 1 || len(got) != 1 || got[0].ItemID != "i1" {
		t.Errorf("UserEvents(u3) = %+v, %d, %v; want the first d only", got, n, err)
	}
}

// TestAppendLargeBatch checks that a batch larger than BatchSize (which
// splits catalogue writes only) is deduplicated as one.
func TestAppendLargeBatch(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{BatchSize: 3})
	var in []store.Event
	for i := range 10 {
		in = append(in, ev(fmt.Sprint(i%7), "u", "i", int64(i)))
	}
	got, err := s.Append(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0", "1", "2", "3", "4", "5", "6"}; !slices.Equal(ids(got), want) {
		t.Errorf("Append of 10 events with BatchSize 3 stored %q; want %q", ids(got), want)
	}
}

func TestUserEvents(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	ctx := context.Background()
	want := []store.Event{ev("1", "u", "a", 1), ev("2", "u", "b", 2), ev("3", "u", "c", 3)}
	want[1].Context = map[string]string{"page": "home"}
	if _, err := s.Append(ctx, want); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user  string
		limit int
		want  []string
		total int
	}{
		{"u", 10, []string{"3", "2", "1"}, 3},
		{"u", 2, []string{"3", "2"}, 3},
		{"u", 0, nil, 3},
		{"nobody", 5, []string{}, 0},
	}
	for _, tt := range tests {
		got, total, err := s.UserEvents(ctx, tt.user, tt.limit)
		if err != nil {
			t.Fatalf("UserEvents(%q, %d) = %v", tt.user, tt.limit, err)
		}
		if g := ids(got); !slices.Equal(g, tt.want) || total != tt.total {
			t.Errorf("UserEvents(%q, %d) = %q, %d; want %q, %d", tt.user, tt.limit, g, total, tt.want, tt.total)
		}
	}
	got, _, _ := s.UserEvents(ctx, "u", 3)
	if !reflect.DeepEqual(got[1], want[1]) {
		t.Errorf("UserEvents(u)[1] = %+v; want %+v", got[1], want[1])
	}
}

func TestItemsAndSeeded(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{BatchSize: 2})
	ctx := context.Background()
	items := []dataset.Item{{ID: "a", Title: "A"}, {ID: "b", Price: 2}, {ID: "c", Hidden: true}}
	if err := s.UpsertItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertItems(ctx, []dataset.Item{{ID: "a", Title: "A2"}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteItems(ctx, []string{"b", "zz", "c"})
	if err != nil || n != 2 {
		t.Errorf("DeleteItems(b, zz, c) = %d, %v; want 2", n, err)
	}
	got, _ := scanAll(t, s)
	if want := []dataset.Item{{ID: "a", Title: "A2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Scan items = %+v; want %+v", got, want)
	}

	if ok, err := s.Seeded(ctx); ok || err != nil {
		t.Errorf("Seeded() of a new store = %v, %v; want false", ok, err)
	}
	if err := s.MarkSeeded(ctx); err != nil {
		t.Fatal(err)
	}
	other := open(t, srv, Options{})
	if ok, err := other.Seeded(ctx); !ok || err != nil {
		t.Errorf("Seeded() on another replica after MarkSeeded = %v, %v; want true", ok, err)
	}
}

func TestScanOrder(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{BatchSize: 7})
	ctx := context.Background()
	var in []store.Event
	for i := range 200 {
		in = append(in, ev(fmt.Sprint(i), fmt.Sprintf("u%d", i%13), "i", int64(i)))
	}
	if _, err := s.Append(ctx, in); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertItems(ctx, []dataset.Item{{ID: "i"}}); err != nil {
		t.Fatal(err)
	}
	var order []string // "item" or "event"
	perUser := map[string][]int64{}
	err := s.Scan(ctx,
		func(dataset.Item) error { order = append(order, "item"); return nil },
		func(e store.Event) error {
			order = append(order, "event")
			perUser[e.UserID] = append(perUser[e.UserID], e.Time.Unix())
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 201 || order[0] != "item" {
		t.Fatalf("Scan called item then %d callbacks, first %q; want the item first, then 200 events", len(order), order[0])
	}
	for u, ts := range perUser {
		if !slices.IsSorted(ts) || len(ts) < 15 {
			t.Errorf("user %s events %v; want 15 or 16, oldest first", u, ts)
		}
	}
	// A callback's error stops Scan and comes back.
	stop := fmt.Errorf("stop")
	err = s.Scan(ctx, func(dataset.Item) error { return nil }, func(store.Event) error { return stop })
	if err == nil || !strings.Contains(err.Error(), "stop") {
		t.Errorf("Scan with a failing callback = %v; want its error", err)
	}
}

// TestConcurrentAppendsStoreEachIDOnce has replicas race to append the same
// IDs: the script's check-then-write must let exactly one win per ID.
func TestConcurrentAppendsStoreEachIDOnce(t *testing.T) {
	srv := redistest.Start(t)
	const replicas, n = 4, 300
	var mu sync.Mutex
	won := map[string]int{}
	var wg sync.WaitGroup
	for r := range replicas {
		s := open(t, srv, Options{BatchSize: 50})
		wg.Go(func() {
			var in []store.Event
			for i := range n {
				j := (i + r*37) % n // each replica in another order
				in = append(in, ev(fmt.Sprint(j), fmt.Sprintf("u%d", j%5), "i", int64(j)))
			}
			got, err := s.Append(context.Background(), in)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, e := range got {
				won[e.ID]++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range n {
		if c := won[fmt.Sprint(i)]; c != 1 {
			t.Errorf("ID %d stored by %d replicas; want 1", i, c)
		}
	}
	_, events := scanAll(t, open(t, srv, Options{}))
	if len(events) != n {
		t.Errorf("Scan found %d events; want %d", len(events), n)
	}
}

// dump returns every key of the Redis with its type and every value,
// field, member and stream entry, as text.
func dump(t *testing.T, srv *redistest.Server) string {
	t.Helper()
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	var b strings.Builder
	iter := c.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ := c.Type(ctx, k).Val()
		fmt.Fprintf(&b, "%s (%s):", k, typ)
		switch typ {
		case "string":
			fmt.Fprintf(&b, " %q", c.Get(ctx, k).Val())
		case "hash":
			fmt.Fprintf(&b, " %q", c.HGetAll(ctx, k).Val())
		case "list":
			fmt.Fprintf(&b, " %q", c.LRange(ctx, k, 0, -1).Val())
		case "set":
			fmt.Fprintf(&b, " %q", c.SMembers(ctx, k).Val())
		case "stream":
			for _, m := range c.XRange(ctx, k, "-", "+").Val() {
				fmt.Fprintf(&b, " %s %q", m.ID, m.Values)
			}
		default:
			t.Fatalf("key %s has type %s, which dump cannot read", k, typ)
		}
		b.WriteString("\n")
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestDeleteUserLeavesNothing(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		// purge is what happens before the check: nothing, or the
		// retention passing while a follower idles.
		wait bool
	}{
		{"purged at once", -1, false},
		{"purged by an idle follower", 300 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := redistest.Start(t)
			s := open(t, srv, Options{DeletionRetention: tt.retention, BatchSize: 3})
			ctx := context.Background()
			const victim = "victim-7f3a"
			var in []store.Event
			for i := range 10 {
				in = append(in, ev(fmt.Sprintf("v%d", i), victim, fmt.Sprintf("i%d", i), int64(i)))
				in = append(in, ev(fmt.Sprintf("k%d", i), "keeper", fmt.Sprintf("i%d", i), int64(i)))
			}
			in[0].Context = map[string]string{"note": victim}
			if _, err := s.Append(ctx, in); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dump(t, srv), victim) {
				t.Fatal("dump does not show the victim before the deletion: the check below would prove nothing")
			}
			n, err := s.DeleteUser(ctx, victim)
			if err != nil || n != 10 {
				t.Fatalf("DeleteUser = %d, %v; want 10", n, err)
			}
			if tt.wait {
				if d := dump(t, srv); !strings.Contains(d, victim) {
					t.Errorf("the deletion entry is gone before its retention:\n%s", d)
				}
				f := open(t, srv, Options{FollowBlock: 50 * time.Millisecond})
				fctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
				_ = f.Follow(fctx, func(store.Change) {})
				cancel()
			}
			if d := dump(t, srv); strings.Contains(d, victim) || strings.Contains(d, "v3") {
				t.Errorf("after DeleteUser the Redis still holds the user:\n%s", d)
			}
			_, events := scanAll(t, s)
			if len(events) != 10 {
				t.Errorf("Scan after DeleteUser found %d events; want the keeper's 10", len(events))
			}
			// The IDs are free again.
			got, err := s.Append(ctx, []store.Event{ev("v1", victim, "i", 1)})
			if err != nil || len(got) != 1 {
				t.Errorf("Append of a deleted user's event ID = %v, %v; want it stored", ids(got), err)
			}
			if n, err := s.DeleteUser(ctx, "nobody"); n != 0 || err != nil {
				t.Errorf("DeleteUser(nobody) = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

package redisstore

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/redistest"
	"github.com/recserve/recserve/serving/store"
)

// TestCrashKeepsAcknowledgedEvents kills Redis with SIGKILL while replicas
// append and checks, after a restart, that every acknowledged event is
// there once: the scripts' writes reach the fsynced AOF before Redis
// answers.
func TestCrashKeepsAcknowledgedEvents(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	acked := map[string]bool{}
	done := make(chan struct{})
	var failed int
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			batch := make([]store.Event, 50)
			for j := range batch {
				batch[j] = ev(fmt.Sprintf("%d/%d", i, j), fmt.Sprintf("u%d", j%9), "i", int64(i))
			}
			stored, err := s.Append(ctx, batch)
			if err != nil {
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("Append while Redis dies = %v; want ErrUnavailable", err)
				}
				failed++
				if failed > 3 {
					return
				}
				continue
			}
			for _, e := range stored {
				acked[e.ID] = true
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	srv.Kill()
	<-done
	if len(acked) == 0 {
		t.Fatal("no Append acknowledged before the kill; the test proves nothing")
	}
	srv.Restart()
	_, events := scanAll(t, open(t, srv, Options{}))
	got := map[string]int{}
	for _, e := range events {
		got[e.ID]++
	}
	for id := range acked {
		if got[id] != 1 {
			t.Errorf("acknowledged event %s is in Redis %d times after the crash; want 1", id, got[id])
		}
	}
	// An unacknowledged batch may have been written whole (the kill came
	// between the fsync and the answer) but never in part.
	for id, n := range got {
		if !acked[id] && n != 0 {
			var i, j int
			fmt.Sscanf(id, "%d/%d", &i, &j)
			for k := range 50 {
				if got[fmt.Sprintf("%d/%d", i, k)] != 1 {
					t.Errorf("batch %d is in Redis in part (event %d missing)", i, k)
				}
			}
		}
	}
	t.Logf("%d events acknowledged before SIGKILL, %d found after restart", len(acked), len(events))
}

// TestRedisDown stops Redis: every call (impressions' included) fails
// fast with ErrUnavailable, and
// after a restart calls work again and a running Follow resumes.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 300 * time.Millisecond
	ctx := context.Background()
	a := open(t, srv, Options{Timeout: timeout})
	b := open(t, srv, Options{Timeout: timeout, FollowBlock: 100 * time.Millisecond})
	f := follow(t, b, nil)
	if _, err := a.Append(ctx, []store.Event{ev("before", "u", "i", 1)}); err != nil {
		t.Fatal(err)
	}
	if ch := f.next(t); len(ch.Events) != 1 || ch.Events[0].ID != "before" {
		t.Fatalf("change before the outage = %+v; want event before", ch)
	}

	srv.Stop()
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Append", func(ctx context.Context) error {
			_, err := a.Append(ctx, []store.Event{ev("x", "u", "i", 1)})
			return err
		}},
		{"UpsertItems", func(ctx context.Context) error { return a.UpsertItems(ctx, []dataset.Item{{ID: "i"}}) }},
		{"DeleteItems", func(ctx context.Context) error { _, err := a.DeleteItems(ctx, []string{"i"}); return err }},
		{"DeleteUser", func(ctx context.Context) error { _, err := a.DeleteUser(ctx, "u"); return err }},
		{"UserEvents", func(ctx context.Context) error { _, _, err := a.UserEvents(ctx, "u", 1); return err }},
		{"Scan", func(ctx context.Context) error {
			return a.Scan(ctx, func(dataset.Item) error { return nil }, func(store.Event) error { return nil })
		}},
		{"Seeded", func(ctx context.Context) error { _, err := a.Seeded(ctx); return err }},
		{"MarkSeeded", func(ctx context.Context) error { return a.MarkSeeded(ctx) }},
		{"AppendImpressions", func(ctx context.Context) error {
			return a.AppendImpressions(ctx, []store.Impression{{ID: "r", UserID: "u", Time: time.Now()}})
		}},
		{"AppendOutcomes", func(ctx context.Context) error {
			return a.AppendOutcomes(ctx, []store.Outcome{{ImpressionID: "r", UserID: "u", Time: time.Now()}})
		}},
		{"UserImpressions", func(ctx context.Context) error { _, err := a.UserImpressions(ctx, "u", time.Time{}); return err }},
		{"ScanImpressions", func(ctx context.Context) error {
			return a.ScanImpressions(ctx, time.Time{}, time.Now(), func(string, []store.Impression, []store.Outcome) error { return nil })
		}},
	}
	for _, c := range calls {
		start := time.Now()
		err := c.call(ctx)
		if d := time.Since(start); d > 2*timeout+200*time.Millisecond {
			t.Errorf("%s with Redis down took %v; want about the %v timeout at most", c.name, d, timeout)
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with Redis down = %v; want ErrUnavailable", c.name, err)
		}
	}
	// A ctx shorter than the timeout wins.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	<-short.Done()
	if _, err := a.Append(short, []store.Event{ev("x", "u", "i", 1)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Append with an ended ctx while Redis is down = %v; want DeadlineExceeded", err)
	}
	if _, err := Open(ctx, srv.URL(), Options{Timeout: timeout}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open with Redis down = %v; want ErrUnavailable", err)
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := a.Append(ctx, []store.Event{ev("after", "u", "i", 2)})
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("Append after Redis restarted = %v; want success within 10s", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ch := f.next(t); len(ch.Events) != 1 || ch.Events[0].ID != "after" {
		t.Errorf("change after the outage = %+v; want event after", ch)
	}
	f.quiet(t, 200*time.Millisecond)
}

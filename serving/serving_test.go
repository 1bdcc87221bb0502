package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/store"
)

// flakySyncer fails every Sync and cancels the poll after the third.
type flakySyncer struct {
	calls  atomic.Int32
	cancel context.CancelFunc
}

func (f *flakySyncer) Sync(ctx context.Context) error {
	if f.calls.Add(1) == 3 {
		f.cancel()
	}
	return errors.New("disk went away")
}

func TestPollRepositoryKeepsGoingOnErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f := &flakySyncer{cancel: cancel}
	rec := &logCounter{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pollRepository(ctx, f, time.Millisecond, slog.New(rec))
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("pollRepository did not return after its context was cancelled")
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("Sync called %d times; want 3 (polling continues after errors, stops on cancel)", got)
	}
	if got := rec.errors.Load(); got != 2 {
		t.Errorf("logged %d sync errors; want 2 (the error after cancellation is not logged)", got)
	}
}

// logCounter is a slog.Handler counting error records.
type logCounter struct{ errors atomic.Int32 }

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		c.errors.Add(1)
	}
	return nil
}
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCounter) WithGroup(string) slog.Handler      { return c }

func TestProbe(t *testing.T) {
	d := &dataset.Dataset{Interactions: []dataset.Interaction{
		{UserID: "a", ItemID: "i1", Event: dataset.View, Value: 1, Timestamp: 1},
		{UserID: "b", ItemID: "i2", Event: dataset.View, Value: 1, Timestamp: 2},
		{UserID: "b", ItemID: "i3", Event: dataset.View, Value: 1, Timestamp: 3},
		{UserID: "c", ItemID: "i3", Event: dataset.View, Value: 1, Timestamp: 4},
		{UserID: "c", ItemID: "i2", Event: dataset.View, Value: 1, Timestamp: 5},
		{UserID: "c", ItemID: "i3", Event: dataset.Purchase, Value: 1, Timestamp: 6},
	}}
	for i := range 3 {
		d.Items = append(d.Items, dataset.Item{ID: fmt.Sprintf("i%d", i+1)})
	}
	p := probe(t.Context(), d, store.New(d))
	if p == nil {
		t.Fatal("probe(data set with interactions) = nil; want a probe")
	}
	if p.Query.UserID != "c" || len(p.Query.History) != 3 || p.Query.K != 10 {
		t.Errorf("probe query = user %q, %d history events, k %d; want the most active user c, 3 events, k 10", p.Query.UserID, len(p.Query.History), p.Query.K)
	}
	if want := []string{"i3", "i2", "i1"}; !slices.Equal(p.Items, want) {
		t.Errorf("probe items = %v; want %v (most interactions first, ties by id)", p.Items, want)
	}
	if p := probe(t.Context(), &dataset.Dataset{}, store.New(&dataset.Dataset{})); p != nil {
		t.Errorf("probe(empty data set) = %+v; want nil (the repository's cold-start probe)", p)
	}
}

package server

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
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

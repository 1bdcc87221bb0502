package store

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of the impression writer.
const (
	// DefaultImpressionQueue is how many impressions may wait for the
	// writer before new ones are dropped (and counted).
	DefaultImpressionQueue = 16384
	// impressionBatch is the most impressions one store write carries.
	impressionBatch = 512
)

// impressionWriter writes impressions to an ImpressionStore off the request
// path: Log queues without blocking, one goroutine drains the queue in
// batches (as many as are waiting, so a busy server writes big batches and
// a quiet one writes at once), and Flush waits until what was queued
// before it is written, which is how Track attributes an event to an
// answer given a moment earlier on this replica.
type impressionWriter struct {
	st    ImpressionStore
	log   *slog.Logger
	queue chan Impression

	// queued counts impressions accepted by log; done those written (or
	// failed), both monotonic; doneMu guards doneCh, closed and replaced
	// whenever done grows, so Flush can wait with a context.
	queued  atomic.Int64
	done    atomic.Int64
	dropped atomic.Int64
	failed  atomic.Int64
	doneMu  sync.Mutex
	doneCh  chan struct{}

	closeMu sync.RWMutex
	closed  bool
	stopped chan struct{}
}

func newImpressionWriter(st ImpressionStore, log *slog.Logger, size int) *impressionWriter {
	if size <= 0 {
		size = DefaultImpressionQueue
	}
	w := &impressionWriter{st: st, log: log, queue: make(chan Impression, size), doneCh: make(chan struct{}), stopped: make(chan struct{})}
	go w.run()
	return w
}

// put queues imp, or drops it when the queue is full or the writer closed.
func (w *impressionWriter) put(imp Impression) {
	w.closeMu.RLock()
	defer w.closeMu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- imp:
		w.queued.Add(1)
	default:
		w.dropped.Add(1)
	}
}

func (w *impressionWriter) run() {
	defer close(w.stopped)
	batch := make([]Impression, 0, impressionBatch)
	failing := false
	for imp := range w.queue {
		batch = append(batch[:0], imp)
	fill:
		for len(batch) < impressionBatch {
			select {
			case more, ok := <-w.queue:
				if !ok {
					break fill
				}
				batch = append(batch, more)
			default:
				break fill
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := w.st.AppendImpressions(ctx, batch)
		cancel()
		switch {
		case err != nil:
			w.failed.Add(int64(len(batch)))
			if !failing {
				w.log.Error("impressions: writing to the state store failed; impressions are lost until it recovers", "err", err)
			}
			failing = true
		case failing:
			w.log.Info("impressions: writing to the state store recovered")
			failing = false
		}
		w.advance(int64(len(batch)))
		clear(batch)
	}
}

// advance records n more impressions handled and wakes Flush.
func (w *impressionWriter) advance(n int64) {
	w.doneMu.Lock()
	w.done.Add(n)
	close(w.doneCh)
	w.doneCh = make(chan struct{})
	w.doneMu.Unlock()
}

// flush waits until every impression queued before the call was handled,
// or ctx ends.
func (w *impressionWriter) flush(ctx context.Context) error {
	target := w.queued.Load()
	for {
		w.doneMu.Lock()
		ch := w.doneCh
		w.doneMu.Unlock()
		if w.done.Load() >= target {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-w.stopped:
			return nil
		}
	}
}

// close stops accepting impressions, writes those queued and returns.
func (w *impressionWriter) close() {
	w.closeMu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.closeMu.Unlock()
	<-w.stopped
}

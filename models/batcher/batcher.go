// Package batcher is a dynamic batcher in the spirit of Triton's: concurrent
// requests, each wanting a few rows scored, are queued and their rows run
// together through one Run call, because a model such as an ONNX session run
// by onnxruntime costs much less per row in a big Run than in many small ones.
//
// # Options
//
//   - MaxBatchSize is the most rows one Run gets. 1 disables batching: each
//     request runs alone (in chunks of one row), still under the queue limits.
//   - MaxQueueDelay is how long the oldest queued request may wait for more
//     rows to arrive before a smaller batch is run anyway. 0 runs whatever is
//     queued as soon as a runner is free; under load, rows still pile up while
//     the runners are busy, so batches grow with the load.
//   - MaxQueueSize bounds the requests (not rows) waiting. When it is reached
//     Do fails at once with ErrQueueFull rather than block; the server maps that
//     to ResourceExhausted so clients back off instead of piling up deadlines.
//   - Runners is how many Run calls may be in flight at once.
//   - Observer, optional, is told each request's queue wait and each Run's
//     rows and duration, for the server's histograms.
//
// # How a batch is formed
//
// One scheduler goroutine forms batches. It first takes a free runner,
// yields once so that callers already runnable (typically those just handed
// their outputs) can queue their next rows, then waits until MaxBatchSize rows are queued, or the oldest queued request has
// waited MaxQueueDelay, or the batcher is closing. It then takes rows from
// the head of the queue in arrival order, up to MaxBatchSize: a request whose
// rows do not all fit contributes what fits and stays at the head, so its
// remaining rows start the next batch (a request bigger than MaxBatchSize is
// spread over consecutive batches). The rows of one request are always
// consecutive and in order within a batch; outputs are copied back to each
// request's own slots, so callers get their outputs in their rows' order.
// With Runners > 1 the chunks of one big request may run concurrently; they
// write disjoint slots.
//
// # Deadlines and cancellation
//
// A queued caller whose ctx is done returns ctx.Err() at once (not when its
// batch would have run) and its request leaves the queue. The ctx is checked
// again when the request's rows are taken into a batch and right before Run
// is called; a request gone by then is left out, and a batch whose requests
// are all gone is not run. Run gets a context no single caller can cancel,
// since a batch serves many callers: context.Background, so values such as
// trace IDs of the callers' contexts do not reach Run. Once Run has started it
// is not interrupted; callers that leave meanwhile simply ignore its output.
//
// # Errors
//
// A Run error goes, wrapped, to every request of that batch; a request that
// is spread over several batches fails if any of its chunks does. A Run that
// returns a different number of outputs than rows fails the batch with
// ErrOutputCount, and a Run that panics fails it with ErrRunPanic (the panic
// is recovered: a bad model must not crash the server). The batcher keeps
// serving after either.
//
// # Close
//
// Close makes new Do calls fail with ErrClosed, runs what is already queued
// without waiting for MaxQueueDelay, waits for the runs in flight and returns
// once the scheduler and runner goroutines have exited.
//
// A Batcher is safe for concurrent use. It keeps no package-level state.
package batcher

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxQueueSize is the queue bound used when Options.MaxQueueSize is 0:
// big enough to absorb bursts of a busy server, small enough that a stalled
// model sheds load quickly instead of holding thousands of requests.
const DefaultMaxQueueSize = 1024

var (
	// ErrQueueFull is returned by Do, without waiting, when MaxQueueSize
	// requests are already queued; the server maps it to ResourceExhausted.
	ErrQueueFull = errors.New("batcher: queue full")
	// ErrClosed is returned by Do once Close has been called, so that a
	// shutting-down server rejects new work while finishing what it accepted.
	ErrClosed = errors.New("batcher: closed")
	// ErrInvalidOptions wraps every error of New, so configuration mistakes
	// can be told apart at startup.
	ErrInvalidOptions = errors.New("batcher: invalid options")
	// ErrOutputCount fails a batch whose Run returned a different number of
	// outputs than rows: outputs cannot be routed back to callers safely.
	ErrOutputCount = errors.New("batcher: run returned wrong number of outputs")
	// ErrRunPanic fails a batch whose Run panicked; the error carries the panic
	// value and stack so the server can log the cause instead of crashing.
	ErrRunPanic = errors.New("batcher: run panicked")
)

// Options configures a Batcher; see the package doc for how they interact.
// The zero value is invalid only in MaxBatchSize, which must be set.
type Options struct {
	// MaxBatchSize is the most rows passed to one Run, ≥ 1. 1 disables
	// batching.
	MaxBatchSize int
	// MaxQueueDelay is how long the oldest queued request may wait for more
	// rows before a batch smaller than MaxBatchSize runs; 0 runs as soon as a
	// runner is free.
	MaxQueueDelay time.Duration
	// MaxQueueSize is the most requests waiting; when reached, Do fails fast
	// with ErrQueueFull. 0 means DefaultMaxQueueSize.
	MaxQueueSize int
	// Runners is the most Run calls in flight at once; 0 means 1.
	Runners int
	// Observer, when set, is told each request's queue wait and each Run's
	// size and duration, so a server can export them (the batcher itself
	// keeps only the cumulative Stats); nil observes nothing.
	Observer Observer
}

// Observer receives the timings of a Batcher, for histograms: how long
// requests wait for a batch and how long a Run of how many rows takes are
// what tell whether MaxQueueDelay and MaxBatchSize suit the load. Its
// methods are called from the batcher's runner goroutines, concurrently when
// Runners > 1, after the batch's rows are taken and around its Run, so they
// must be safe for concurrent use and cheap.
type Observer interface {
	// ObserveQueueWait records how long one request waited: from Do to the
	// start of the Run that got its first rows. Requests that leave the
	// queue before running are not observed.
	ObserveQueueWait(d time.Duration)
	// ObserveRun records one Run: the rows it got and how long it took,
	// failed and panicking Runs included.
	ObserveRun(rows int, d time.Duration)
}

// nopObserver is the Observer of a Batcher without one.
type nopObserver struct{}

func (nopObserver) ObserveQueueWait(time.Duration) {}
func (nopObserver) ObserveRun(int, time.Duration)  {}

// validate checks o and fills in defaults.
func (o Options) validate() (Options, error) {
	switch {
	case o.MaxBatchSize < 1:
		return o, fmt.Errorf("%w: MaxBatchSize %d < 1", ErrInvalidOptions, o.MaxBatchSize)
	case o.MaxQueueDelay < 0:
		return o, fmt.Errorf("%w: MaxQueueDelay %v < 0", ErrInvalidOptions, o.MaxQueueDelay)
	case o.MaxQueueSize < 0:
		return o, fmt.Errorf("%w: MaxQueueSize %d < 0", ErrInvalidOptions, o.MaxQueueSize)
	case o.Runners < 0:
		return o, fmt.Errorf("%w: Runners %d < 0", ErrInvalidOptions, o.Runners)
	}
	if o.MaxQueueSize == 0 {
		o.MaxQueueSize = DefaultMaxQueueSize
	}
	if o.Runners == 0 {
		o.Runners = 1
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o, nil
}

// Run runs one batch: the rows of one or more requests, concatenated in queue
// order. It returns one output per row, in the same order. It may be called
// from several goroutines at once when Options.Runners > 1. It must not keep
// rows or the returned slice's backing array for later use by others: the
// batcher copies outputs out before the next batch is formed.
type Run[In, Out any] func(ctx context.Context, rows []In) ([]Out, error)

// Stats are cumulative counters since New, for metrics and benchmarks.
type Stats struct {
	// Requests is the number of requests Do accepted into the queue.
	Requests int64
	// Rejected is the number of Do calls refused with ErrQueueFull.
	Rejected int64
	// Expired is the number of Do calls ended by their own ctx (deadline or
	// cancellation) before their outputs were ready.
	Expired int64
	// Failed is the number of requests that got a Run error, including
	// ErrOutputCount and ErrRunPanic.
	Failed int64
	// Batches is the number of Run calls.
	Batches int64
	// Rows is the number of rows passed to Run.
	Rows int64
	// MeanBatchSize is Rows / Batches, 0 before the first batch.
	MeanBatchSize float64
	// Queued is the number of requests waiting now (a gauge, not a counter).
	Queued int
}

// Batcher queues requests and runs their rows in batches; see the package
// doc. Create it with New and release it with Close. Safe for concurrent use.
type Batcher[In, Out any] struct {
	opts Options
	run  Run[In, Out]

	wake    chan struct{} // cap 1: something changed for the scheduler
	sem     chan struct{} // cap Runners: one token per Run in flight
	stopped chan struct{} // closed when the scheduler and runners are done
	runs    sync.WaitGroup

	mu         sync.Mutex
	queue      []*request[In, Out] // waiting requests, oldest first
	queuedRows int                 // rows of queue not yet taken into a batch
	closed     bool

	requests, rejected, expired, failed, batches, rows atomic.Int64
}

// request is one Do call in flight. It holds the caller's ctx because it
// represents that call while queued, the exception the context guidelines
// allow.
type request[In, Out any] struct {
	ctx     context.Context
	rows    []In
	arrived time.Time
	done    chan struct{} // closed by finish

	// Guarded by Batcher.mu.
	next   int  // first row not yet taken into a batch
	queued bool // in Batcher.queue

	mu       sync.Mutex
	out      []Out
	left     int   // rows whose outputs have not arrived
	err      error // set once, by finish
	expired  bool  // err came from ctx
	finished bool
}

// finishLocked ends r with err (nil: success). r.mu must be held; only the
// first call has an effect.
func (r *request[In, Out]) finishLocked(err error, expired bool) {
	if r.finished {
		return
	}
	r.finished, r.err, r.expired = true, err, expired
	close(r.done)
}

// finish is finishLocked taking r.mu.
func (r *request[In, Out]) finish(err error, expired bool) {
	r.mu.Lock()
	r.finishLocked(err, expired)
	r.mu.Unlock()
}

// live reports whether r still wants its outputs; a request whose ctx is done
// is finished with ctx.Err() on the way.
func (r *request[In, Out]) live() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.finishLocked(err, true)
		return false
	}
	return true
}

// deliver stores the outputs of rows [lo, lo+len(out)) and finishes r when it
// has all of them.
func (r *request[In, Out]) deliver(lo int, out []Out) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	copy(r.out[lo:], out)
	r.left -= len(out)
	if r.left == 0 {
		r.finishLocked(nil, false)
	}
}

// part is rows [lo, hi) of a request, as taken into a batch.
type part[In, Out any] struct {
	req    *request[In, Out]
	lo, hi int
}

// New validates opts and starts a Batcher calling run. The caller must Close
// it to stop its goroutines.
func New[In, Out any](opts Options, run Run[In, Out]) (*Batcher[In, Out], error) {
	opts, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if run == nil {
		return nil, fmt.Errorf("%w: nil Run", ErrInvalidOptions)
	}
	b := &Batcher[In, Out]{
		opts:    opts,
		run:     run,
		wake:    make(chan struct{}, 1),
		sem:     make(chan struct{}, opts.Runners),
		stopped: make(chan struct{}),
	}
	go b.schedule()
	return b, nil
}

// Do queues rows as one request and returns their outputs, in order, once
// they have run. It fails with ErrQueueFull when the queue is full, ErrClosed
// after Close, ctx.Err() when ctx ends first, and a wrapped Run error when
// the request's batch failed. rows must not be modified until Do returns. An
// empty rows returns (nil, nil) without queuing.
func (b *Batcher[In, Out]) Do(ctx context.Context, rows []In) ([]Out, error) {
	if err := ctx.Err(); err != nil {
		b.expired.Add(1)
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	r, err := b.enqueue(ctx, rows)
	if err != nil {
		return nil, err
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		b.remove(r)
		r.finish(ctx.Err(), true) // no-op if r completed meanwhile
	}
	// r is finished: nobody writes its fields any more.
	switch {
	case r.expired:
		b.expired.Add(1)
	case r.err != nil:
		b.failed.Add(1)
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.out, nil
}

// enqueue adds a request for rows to the queue and wakes the scheduler.
func (b *Batcher[In, Out]) enqueue(ctx context.Context, rows []In) (*request[In, Out], error) {
	r := &request[In, Out]{
		ctx:     ctx,
		rows:    rows,
		arrived: time.Now(),
		done:    make(chan struct{}),
		out:     make([]Out, len(rows)),
		left:    len(rows),
	}
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return nil, ErrClosed
	case len(b.queue) >= b.opts.MaxQueueSize:
		b.mu.Unlock()
		b.rejected.Add(1)
		return nil, ErrQueueFull
	}
	r.queued = true
	b.queue = append(b.queue, r)
	b.queuedRows += len(rows)
	b.mu.Unlock()
	b.requests.Add(1)
	b.signal()
	return r, nil
}

// remove takes r out of the queue if it is still there, so a caller that
// gave up frees its slot at once.
func (b *Batcher[In, Out]) remove(r *request[In, Out]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !r.queued {
		return
	}
	if i := slices.Index(b.queue, r); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1) // zeroes the freed tail slot
	}
	r.queued = false
	b.queuedRows -= len(r.rows) - r.next
}

// signal wakes the scheduler without blocking.
func (b *Batcher[In, Out]) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Close stops accepting requests (Do fails with ErrClosed), runs what is
// queued and waits for all runs to end. It always returns nil; calling it
// again waits for the same shutdown.
func (b *Batcher[In, Out]) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
	<-b.stopped
	return nil
}

// Stats returns a snapshot of the counters. Safe to call at any time.
func (b *Batcher[In, Out]) Stats() Stats {
	b.mu.Lock()
	queued := len(b.queue)
	b.mu.Unlock()
	s := Stats{
		Requests: b.requests.Load(),
		Rejected: b.rejected.Load(),
		Expired:  b.expired.Load(),
		Failed:   b.failed.Load(),
		Batches:  b.batches.Load(),
		Rows:     b.rows.Load(),
		Queued:   queued,
	}
	if s.Batches > 0 {
		s.MeanBatchSize = float64(s.Rows) / float64(s.Batches)
	}
	return s
}

// schedule is the scheduler goroutine: it takes a runner token, waits for a
// batch and starts a runner goroutine for it, until Close has been called and
// the queue is empty. It owns the runner goroutines and waits for them.
func (b *Batcher[In, Out]) schedule() {
	defer close(b.stopped)
	defer b.runs.Wait()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b.sem <- struct{}{}
		// Let goroutines that are already runnable go first: callers just
		// handed their outputs are about to queue their next rows, and with
		// few CPUs (or a Run that holds one) the batch would otherwise be
		// formed before they get there, degrading to one request per Run.
		runtime.Gosched()
		parts, ok := b.nextBatch(timer)
		if !ok {
			<-b.sem
			return
		}
		b.runs.Go(func() {
			defer func() { <-b.sem }()
			b.runBatch(parts)
		})
	}
}

// nextBatch waits until a batch is due and takes it from the queue. It
// returns false once the batcher is closed and the queue is empty.
func (b *Batcher[In, Out]) nextBatch(timer *time.Timer) ([]part[In, Out], bool) {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 && b.closed {
			b.mu.Unlock()
			return nil, false
		}
		var wait time.Duration // 0: wait for a signal only
		if len(b.queue) > 0 {
			wait = b.opts.MaxQueueDelay - time.Since(b.queue[0].arrived)
			if b.closed || b.queuedRows >= b.opts.MaxBatchSize || wait <= 0 {
				parts := b.takeLocked()
				b.mu.Unlock()
				if len(parts) > 0 {
					return parts, true
				}
				continue // everything taken had expired
			}
		}
		b.mu.Unlock()
		if wait > 0 {
			timer.Reset(wait)
			select {
			case <-b.wake:
			case <-timer.C:
			}
			timer.Stop()
		} else {
			<-b.wake
		}
	}
}

// takeLocked removes up to MaxBatchSize rows from the head of the queue,
// skipping (and finishing) requests whose ctx is done. b.mu must be held.
func (b *Batcher[In, Out]) takeLocked() []part[In, Out] {
	var parts []part[In, Out]
	n := 0
	for len(b.queue) > 0 && n < b.opts.MaxBatchSize {
		r := b.queue[0]
		k := min(len(r.rows)-r.next, b.opts.MaxBatchSize-n)
		if r.live() {
			parts = append(parts, part[In, Out]{req: r, lo: r.next, hi: r.next + k})
			r.next += k
			n += k
			b.queuedRows -= k
			if r.next < len(r.rows) {
				break // the batch is full; r stays at the head
			}
		} else {
			b.queuedRows -= len(r.rows) - r.next
		}
		r.queued = false
		b.queue[0] = nil
		b.queue = b.queue[1:]
	}
	return parts
}

// runBatch runs the rows of the parts still wanted and routes outputs (or the
// error) back to their requests.
func (b *Batcher[In, Out]) runBatch(parts []part[In, Out]) {
	live := parts[:0]
	n := 0
	for _, p := range parts {
		if p.req.live() {
			live = append(live, p)
			n += p.hi - p.lo
		}
	}
	if len(live) == 0 {
		return // every caller is gone: skip the run
	}
	rows := make([]In, 0, n)
	for _, p := range live {
		rows = append(rows, p.req.rows[p.lo:p.hi]...)
	}
	b.batches.Add(1)
	b.rows.Add(int64(n))
	start := time.Now()
	for _, p := range live {
		if p.lo == 0 { // a request's first rows: observe its wait once
			b.opts.Observer.ObserveQueueWait(start.Sub(p.req.arrived))
		}
	}
	out, err := b.call(rows)
	b.opts.Observer.ObserveRun(n, time.Since(start))
	if err == nil && len(out) != n {
		err = fmt.Errorf("%w: %d outputs for %d rows", ErrOutputCount, len(out), n)
	}
	off := 0
	for _, p := range live {
		if err != nil {
			p.req.finish(err, false)
			continue
		}
		k := p.hi - p.lo
		p.req.deliver(p.lo, out[off:off+k])
		off += k
	}
}

// call runs b.run on rows, turning a panic into an ErrRunPanic error and
// wrapping a Run error.
func (b *Batcher[In, Out]) call(rows []In) (out []Out, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: %v\n%s", ErrRunPanic, p, debug.Stack())
		}
	}()
	out, err = b.run(context.Background(), rows)
	if err != nil {
		return nil, fmt.Errorf("batcher: run of %d rows: %w", len(rows), err)
	}
	return out, nil
}

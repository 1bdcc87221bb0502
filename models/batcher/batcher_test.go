package batcher_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/recserve/recserve/models/batcher"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// f is what the fake model computes for a row.
func f(x int) int { return 10*x + 1 }

// fake is a Run that records the batches it saw. If gate is non-nil every
// call waits until it is closed; started receives the size of each batch as
// the call begins (it must be buffered enough not to block).
type fake struct {
	gate    chan struct{}
	started chan int

	mu      sync.Mutex
	batches [][]int
}

func (m *fake) run(_ context.Context, rows []int) ([]int, error) {
	if m.started != nil {
		m.started <- len(rows)
	}
	if m.gate != nil {
		<-m.gate
	}
	m.mu.Lock()
	m.batches = append(m.batches, append([]int(nil), rows...))
	m.mu.Unlock()
	out := make([]int, len(rows))
	for i, x := range rows {
		out[i] = f(x)
	}
	return out, nil
}

func (m *fake) seen() [][]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]int(nil), m.batches...)
}

func (m *fake) sizes() []int {
	var s []int
	for _, b := range m.seen() {
		s = append(s, len(b))
	}
	return s
}

// newBatcher is New that fails the test on error and closes at cleanup.
func newBatcher(t *testing.T, opts batcher.Options, run batcher.Run[int, int]) *batcher.Batcher[int, int] {
	t.Helper()
	b, err := batcher.New(opts, run)
	if err != nil {
		t.Fatalf("New(%+v) = %v", opts, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// waitFor polls cond until it holds; it waits for state, never asserts time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func waitQueued(t *testing.T, b *batcher.Batcher[int, int], n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d queued", n), func() bool { return b.Stats().Queued == n })
}

// result is the outcome of an asynchronous Do.
type result struct {
	out []int
	err error
}

func goDo(ctx context.Context, b *batcher.Batcher[int, int], rows []int) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, err := b.Do(ctx, rows)
		ch <- result{out, err}
	}()
	return ch
}

func seq(from, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = from + i
	}
	return s
}

func fs(rows []int) []int {
	out := make([]int, len(rows))
	for i, x := range rows {
		out[i] = f(x)
	}
	return out
}

func TestNew(t *testing.T) {
	run := (&fake{}).run
	tests := []struct {
		name string
		opts batcher.Options
		run  batcher.Run[int, int]
		ok   bool
	}{
		{"minimal", batcher.Options{MaxBatchSize: 1}, run, true},
		{"full", batcher.Options{MaxBatchSize: 32, MaxQueueDelay: time.Millisecond, MaxQueueSize: 10, Runners: 4}, run, true},
		{"zero batch", batcher.Options{}, run, false},
		{"negative batch", batcher.Options{MaxBatchSize: -1}, run, false},
		{"negative delay", batcher.Options{MaxBatchSize: 1, MaxQueueDelay: -1}, run, false},
		{"negative queue", batcher.Options{MaxBatchSize: 1, MaxQueueSize: -1}, run, false},
		{"negative runners", batcher.Options{MaxBatchSize: 1, Runners: -1}, run, false},
		{"nil run", batcher.Options{MaxBatchSize: 1}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := batcher.New(tt.opts, tt.run)
			if tt.ok {
				if err != nil {
					t.Fatalf("New(%+v) = %v; want no error", tt.opts, err)
				}
				b.Close()
				return
			}
			if !errors.Is(err, batcher.ErrInvalidOptions) {
				t.Fatalf("New(%+v) = %v; want ErrInvalidOptions", tt.opts, err)
			}
		})
	}
}

// TestDoRoutesOutputs sends distinct rows from 64 goroutines and checks that
// every caller gets exactly f of its own rows, in order.
func TestDoRoutesOutputs(t *testing.T) {
	tests := []batcher.Options{
		{MaxBatchSize: 1},
		{MaxBatchSize: 8},
		{MaxBatchSize: 5, Runners: 4},
		{MaxBatchSize: 8, MaxQueueDelay: 100 * time.Microsecond, Runners: 3},
		{MaxBatchSize: 32, MaxQueueDelay: time.Millisecond, Runners: 2},
	}
	const callers, rounds = 64, 5
	for _, opts := range tests {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			m := &fake{}
			b := newBatcher(t, opts, m.run)
			var wg sync.WaitGroup
			var wantRows atomic.Int64
			for c := range callers {
				wg.Go(func() {
					for r := range rounds {
						rows := seq((c*rounds+r)*100, 1+(c+r)%13) // distinct per call, 1..13 rows
						wantRows.Add(int64(len(rows)))
						got, err := b.Do(context.Background(), rows)
						if err != nil {
							t.Errorf("Do(%v) = %v", rows, err)
							return
						}
						if want := fs(rows); !reflect.DeepEqual(got, want) {
							t.Errorf("Do(%v) = %v; want %v", rows, got, want)
						}
					}
				})
			}
			wg.Wait()
			for _, n := range m.sizes() {
				if n > opts.MaxBatchSize {
					t.Errorf("Run got %d rows; want ≤ MaxBatchSize %d", n, opts.MaxBatchSize)
				}
			}
			s := b.Stats()
			if s.Requests != callers*rounds || s.Rows != wantRows.Load() || s.Batches != int64(len(m.sizes())) {
				t.Errorf("Stats() = %+v; want Requests %d, Rows %d, Batches %d", s, callers*rounds, wantRows.Load(), len(m.sizes()))
			}
		})
	}
}

// TestBatchesForm checks that 32 concurrent one-row requests form batches of
// MaxBatchSize 8 while the runner is busy.
func TestBatchesForm(t *testing.T) {
	t.Run("delay 0, runner blocked", func(t *testing.T) {
		m := &fake{gate: make(chan struct{}), started: make(chan int, 64)}
		b := newBatcher(t, batcher.Options{MaxBatchSize: 8}, m.run)
		var res []<-chan result
		for i := range 32 {
			res = append(res, goDo(context.Background(), b, []int{i}))
		}
		first := <-m.started // the runner is now blocked on the gate
		waitQueued(t, b, 32-first)
		close(m.gate)
		for i, ch := range res {
			if r := <-ch; r.err != nil || !reflect.DeepEqual(r.out, []int{f(i)}) {
				t.Errorf("Do([%d]) = %v, %v; want [%d]", i, r.out, r.err, f(i))
			}
		}
		sizes := m.sizes()
		// The first batch has whatever had arrived; the others are full but
		// for the last.
		want := []int{first}
		for left := 32 - first; left > 0; left -= 8 {
			want = append(want, min(left, 8))
		}
		if !reflect.DeepEqual(sizes, want) {
			t.Errorf("batch sizes = %v; want %v", sizes, want)
		}
	})
	t.Run("long delay", func(t *testing.T) {
		m := &fake{}
		b := newBatcher(t, batcher.Options{MaxBatchSize: 8, MaxQueueDelay: time.Hour}, m.run)
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				if got, err := b.Do(context.Background(), []int{i}); err != nil || got[0] != f(i) {
					t.Errorf("Do([%d]) = %v, %v; want [%d]", i, got, err, f(i))
				}
			})
		}
		wg.Wait()
		if sizes := m.sizes(); !reflect.DeepEqual(sizes, []int{8, 8, 8, 8}) {
			t.Errorf("batch sizes = %v; want [8 8 8 8]", sizes)
		}
		if s := b.Stats(); s.Batches != 4 || s.Rows != 32 || s.MeanBatchSize != 8 {
			t.Errorf("Stats() = %+v; want 4 batches, 32 rows, mean 8", s)
		}
	})
}

// TestQueueDelay checks that a lone request waits for MaxQueueDelay and then
// runs; only the lower bound is asserted.
func TestQueueDelay(t *testing.T) {
	const delay = 5 * time.Millisecond
	var ranAt atomic.Int64
	m := &fake{}
	run := func(ctx context.Context, rows []int) ([]int, error) {
		ranAt.Store(time.Now().UnixNano())
		return m.run(ctx, rows)
	}
	b := newBatcher(t, batcher.Options{MaxBatchSize: 8, MaxQueueDelay: delay}, run)
	start := time.Now()
	got, err := b.Do(context.Background(), []int{7})
	if err != nil || !reflect.DeepEqual(got, []int{f(7)}) {
		t.Fatalf("Do([7]) = %v, %v; want [%d]", got, err, f(7))
	}
	if waited := time.Duration(ranAt.Load() - start.UnixNano()); waited < delay {
		t.Errorf("lone request ran after %v; want ≥ %v", waited, delay)
	}
}

// TestFullBatchSkipsDelay checks that MaxBatchSize queued rows run at once
// although MaxQueueDelay is an hour (the test would hang otherwise).
func TestFullBatchSkipsDelay(t *testing.T) {
	tests := []struct {
		name     string
		requests [][]int
	}{
		{"4 requests of 1 row", [][]int{{1}, {2}, {3}, {4}}},
		{"1 request of 4 rows", [][]int{{1, 2, 3, 4}}},
		{"2 requests of 3 and 5 rows", [][]int{{1, 2, 3}, {4, 5, 6, 7, 8}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &fake{}
			b := newBatcher(t, batcher.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour}, m.run)
			var res []<-chan result
			for _, rows := range tt.requests {
				res = append(res, goDo(context.Background(), b, rows))
			}
			for i, ch := range res {
				if r := <-ch; r.err != nil || !reflect.DeepEqual(r.out, fs(tt.requests[i])) {
					t.Errorf("Do(%v) = %v, %v; want %v", tt.requests[i], r.out, r.err, fs(tt.requests[i]))
				}
			}
		})
	}
}

// TestSplit checks that a request bigger than MaxBatchSize is spread over
// consecutive batches in order, and that the next request follows it.
func TestSplit(t *testing.T) {
	m := &fake{gate: make(chan struct{}), started: make(chan int, 16)}
	b := newBatcher(t, batcher.Options{MaxBatchSize: 8}, m.run)
	hold := goDo(context.Background(), b, []int{-1})
	<-m.started
	a := seq(100, 20)
	resA := goDo(context.Background(), b, a)
	waitQueued(t, b, 1)
	bRows := seq(200, 3)
	resB := goDo(context.Background(), b, bRows)
	waitQueued(t, b, 2)
	close(m.gate)
	for _, c := range []struct {
		rows []int
		ch   <-chan result
	}{{[]int{-1}, hold}, {a, resA}, {bRows, resB}} {
		if r := <-c.ch; r.err != nil || !reflect.DeepEqual(r.out, fs(c.rows)) {
			t.Errorf("Do(%v) = %v, %v; want %v", c.rows, r.out, r.err, fs(c.rows))
		}
	}
	want := [][]int{{-1}, seq(100, 8), seq(108, 8), append(seq(116, 4), bRows...)}
	if got := m.seen(); !reflect.DeepEqual(got, want) {
		t.Errorf("batches = %v; want %v", got, want)
	}
}

// TestNoBatching checks MaxBatchSize 1: every row runs alone, in order.
func TestNoBatching(t *testing.T) {
	m := &fake{}
	b := newBatcher(t, batcher.Options{MaxBatchSize: 1}, m.run)
	rows := seq(1, 5)
	if got, err := b.Do(context.Background(), rows); err != nil || !reflect.DeepEqual(got, fs(rows)) {
		t.Fatalf("Do(%v) = %v, %v; want %v", rows, got, err, fs(rows))
	}
	if got, want := m.seen(), [][]int{{1}, {2}, {3}, {4}, {5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches = %v; want %v", got, want)
	}
}

// TestCancelWhileQueued checks that a queued request whose ctx ends returns
// ctx.Err() while the runner is still blocked, leaves the queue and is never
// run (its batch, having no caller left, is skipped).
func TestCancelWhileQueued(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc) // ends the ctx once queued
		want error
	}{
		{
			name: "canceled",
			ctx:  func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			end:  func(cancel context.CancelFunc) { cancel() },
			want: context.Canceled,
		},
		{
			name: "deadline",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), time.Millisecond)
			},
			end:  func(context.CancelFunc) {},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &fake{gate: make(chan struct{}), started: make(chan int, 16)}
			b := newBatcher(t, batcher.Options{MaxBatchSize: 8}, m.run)
			hold := goDo(context.Background(), b, []int{1})
			<-m.started
			ctx, cancel := tt.ctx()
			defer cancel()
			res := goDo(ctx, b, []int{2, 3})
			if tt.name == "canceled" {
				waitQueued(t, b, 1)
			}
			tt.end(cancel)
			r := <-res // the gate is still closed: this did not wait for a run
			if !errors.Is(r.err, tt.want) {
				t.Errorf("Do = %v, %v; want %v", r.out, r.err, tt.want)
			}
			if q := b.Stats().Queued; q != 0 {
				t.Errorf("Stats().Queued = %d after cancel; want 0", q)
			}
			close(m.gate)
			if r := <-hold; r.err != nil {
				t.Errorf("Do([1]) = %v", r.err)
			}
			b.Close()
			if got, want := m.seen(), [][]int{{1}}; !reflect.DeepEqual(got, want) {
				t.Errorf("batches = %v; want %v", got, want)
			}
			if s := b.Stats(); s.Expired != 1 || s.Batches != 1 {
				t.Errorf("Stats() = %+v; want Expired 1, Batches 1", s)
			}
		})
	}
}

// TestDoneCtx checks that a ctx already done fails before queuing.
func TestDoneCtx(t *testing.T) {
	m := &fake{}
	b := newBatcher(t, batcher.Options{MaxBatchSize: 8}, m.run)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Do(ctx, []int{1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Do(canceled ctx) = %v; want context.Canceled", err)
	}
	if s := b.Stats(); s.Requests != 0 || s.Expired != 1 {
		t.Errorf("Stats() = %+v; want Requests 0, Expired 1", s)
	}
}

// TestRunErrors checks that a failing, miscounting or panicking Run fails
// every request of its batch with a matchable error, and that the batcher
// keeps serving afterwards.
func TestRunErrors(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name string
		bad  func(rows []int) ([]int, error)
		want error
	}{
		{"error", func([]int) ([]int, error) { return nil, errBoom }, errBoom},
		{"too few outputs", func(rows []int) ([]int, error) { return fs(rows[1:]), nil }, batcher.ErrOutputCount},
		{"too many outputs", func(rows []int) ([]int, error) { return fs(append(rows, 0)), nil }, batcher.ErrOutputCount},
		{"panic", func([]int) ([]int, error) { panic("model exploded") }, batcher.ErrRunPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			run := func(_ context.Context, rows []int) ([]int, error) {
				if calls.Add(1) == 1 {
					return tt.bad(rows)
				}
				return fs(rows), nil
			}
			b := newBatcher(t, batcher.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour}, run)
			for round := range 2 {
				var res []<-chan result
				for i := range 4 {
					res = append(res, goDo(context.Background(), b, []int{i}))
				}
				for i, ch := range res {
					r := <-ch
					switch {
					case round == 0 && !errors.Is(r.err, tt.want):
						t.Errorf("round 0: Do([%d]) = %v, %v; want %v", i, r.out, r.err, tt.want)
					case round == 1 && (r.err != nil || r.out[0] != f(i)):
						t.Errorf("round 1: Do([%d]) = %v, %v; want [%d]", i, r.out, r.err, f(i))
					}
				}
			}
			if s := b.Stats(); s.Failed != 4 || s.Batches != 2 {
				t.Errorf("Stats() = %+v; want Failed 4, Batches 2", s)
			}
		})
	}
}

// TestQueueFull checks that Do fails at once with ErrQueueFull when
// MaxQueueSize requests wait, while the runner is blocked.
func TestQueueFull(t *testing.T) {
	m := &fake{gate: make(chan struct{}), started: make(chan int, 16)}
	b := newBatcher(t, batcher.Options{MaxBatchSize: 8, MaxQueueSize: 2}, m.run)
	res := []<-chan result{goDo(context.Background(), b, []int{0})}
	<-m.started // in flight, no longer queued
	for i := 1; i <= 2; i++ {
		res = append(res, goDo(context.Background(), b, []int{i}))
		waitQueued(t, b, i)
	}
	if _, err := b.Do(context.Background(), []int{3}); !errors.Is(err, batcher.ErrQueueFull) {
		t.Errorf("Do on a full queue = %v; want ErrQueueFull", err)
	}
	close(m.gate)
	for i, ch := range res {
		if r := <-ch; r.err != nil || r.out[0] != f(i) {
			t.Errorf("Do([%d]) = %v, %v; want [%d]", i, r.out, r.err, f(i))
		}
	}
	if s := b.Stats(); s.Rejected != 1 || s.Requests != 3 {
		t.Errorf("Stats() = %+v; want Rejected 1, Requests 3", s)
	}
}

// TestClose checks that Close runs what is queued without waiting for the
// delay, waits for runs in flight, and makes Do fail with ErrClosed.
func TestClose(t *testing.T) {
	var finished atomic.Int32
	m := &fake{gate: make(chan struct{}), started: make(chan int, 16)}
	run := func(ctx context.Context, rows []int) ([]int, error) {
		out, err := m.run(ctx, rows)
		finished.Add(1)
		return out, err
	}
	b, err := batcher.New(batcher.Options{MaxBatchSize: 8, MaxQueueDelay: time.Hour, Runners: 2}, run)
	if err != nil {
		t.Fatal(err)
	}
	var res []<-chan result
	for i := range 3 {
		res = append(res, goDo(context.Background(), b, []int{i}))
	}
	waitQueued(t, b, 3) // would wait an hour without Close
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	<-m.started // Close flushed the queue into a batch, blocked on the gate
	waitFor(t, "Do to see ErrClosed", func() bool {
		_, err := b.Do(context.Background(), []int{9})
		return errors.Is(err, batcher.ErrClosed)
	})
	close(m.gate)
	if err := <-closed; err != nil {
		t.Errorf("Close() = %v", err)
	}
	if n := finished.Load(); n != 1 {
		t.Errorf("runs finished when Close returned = %d; want 1", n)
	}
	for i, ch := range res {
		if r := <-ch; r.err != nil || r.out[0] != f(i) {
			t.Errorf("Do([%d]) = %v, %v; want [%d]", i, r.out, r.err, f(i))
		}
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if _, err := b.Do(context.Background(), []int{1}); !errors.Is(err, batcher.ErrClosed) {
		t.Errorf("Do after Close = %v; want ErrClosed", err)
	}
}

// TestCloseConcurrent closes while 64 goroutines call Do: each call either
// gets its own outputs or ErrClosed, and nothing hangs or leaks.
func TestCloseConcurrent(t *testing.T) {
	m := &fake{}
	b, err := batcher.New(batcher.Options{MaxBatchSize: 8, Runners: 2}, m.run)
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for c := range 64 {
		wg.Go(func() {
			for i := 0; ; i++ {
				rows := seq(c*1_000_000+i*10, 1+i%4)
				got, err := b.Do(context.Background(), rows)
				if errors.Is(err, batcher.ErrClosed) {
					return
				}
				if err != nil || !reflect.DeepEqual(got, fs(rows)) {
					t.Errorf("Do(%v) = %v, %v; want %v", rows, got, err, fs(rows))
					return
				}
				ok.Add(1)
			}
		})
	}
	waitFor(t, "some requests to complete", func() bool { return ok.Load() >= 200 })
	if err := b.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	wg.Wait()
}

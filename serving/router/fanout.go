package router

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/recserve/recserve/models"
)

// sourceResult is the outcome of one source.
type sourceResult struct {
	source  Source
	version string
	items   []models.Scored
	err     error
}

// runSources runs every source concurrently and returns the results in
// source order. When any source has a timeout, a source that misses its own
// timeout (or the request's deadline) is reported as failed at that moment,
// without waiting for it: a hung model cannot hold the request. Without
// timeouts the first source runs on the caller's goroutine and every source
// is trusted to honour ctx (give a source you do not trust a timeout_ms).
func (r *Router) runSources(ctx context.Context, sources []Source, q models.Query) []sourceResult {
	out := make([]sourceResult, len(sources))
	timeouts := false
	for _, s := range sources {
		timeouts = timeouts || s.TimeoutMS > 0
	}
	if !timeouts {
		// Nothing to time out: the caller's goroutine runs the first source
		// while the others run beside it.
		var wg sync.WaitGroup
		for i := 1; i < len(sources); i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out[i] = r.runSource(ctx, sources[i], q)
			}()
		}
		out[0] = r.runSource(ctx, sources[0], q)
		wg.Wait()
		return out
	}
	type done struct {
		i   int
		res sourceResult
	}
	ch := make(chan done, len(sources)) // buffered: late sources never block
	start := time.Now()
	deadlines := make([]time.Time, len(sources))
	for i, s := range sources {
		sctx, cancel := ctx, context.CancelFunc(func() {})
		if s.TimeoutMS > 0 {
			deadlines[i] = start.Add(time.Duration(s.TimeoutMS) * time.Millisecond)
			sctx, cancel = context.WithDeadline(ctx, deadlines[i])
		}
		go func() {
			defer cancel()
			ch <- done{i, r.runSource(sctx, s, q)}
		}()
	}
	pending := len(sources)
	finished := make([]bool, len(sources))
	receive := func(d done) {
		if !finished[d.i] {
			out[d.i], finished[d.i] = d.res, true
			pending--
		}
	}
	for pending > 0 {
		var timer *time.Timer
		var fire <-chan time.Time
		next := time.Time{}
		for i, d := range deadlines {
			if !finished[i] && !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			fire = timer.C
		}
		select {
		case d := <-ch:
			receive(d)
		case <-fire:
			// Results that arrived in time count even if the timer won
			// the select.
			for drained := false; !drained; {
				select {
				case d := <-ch:
					receive(d)
				default:
					drained = true
				}
			}
			now := time.Now()
			for i, d := range deadlines {
				if !finished[i] && !d.IsZero() && !now.Before(d) {
					out[i] = sourceResult{source: sources[i], err: fmt.Errorf("model %q missed its %d ms timeout: %w",
						sources[i].Model, sources[i].TimeoutMS, context.DeadlineExceeded)}
					finished[i] = true
					pending--
				}
			}
		case <-ctx.Done():
			for i := range sources {
				if !finished[i] {
					out[i] = sourceResult{source: sources[i], err: ctx.Err()}
					finished[i] = true
				}
			}
			pending = 0
		}
		if timer != nil {
			timer.Stop()
		}
	}
	return out
}

// runSource asks one source for q.K candidates, holding the model version
// for the call. A panicking model is a failed source, not a crashed server.
func (r *Router) runSource(ctx context.Context, s Source, q models.Query) (res sourceResult) {
	res.source = s
	defer func() {
		if p := recover(); p != nil {
			res.items, res.err = nil, fmt.Errorf("model %q panicked: %v", s.Model, p)
		}
	}()
	// Released when the model returns, which may be after the request gave
	// up on it (timeout_ms): the version stays open until then.
	l, err := r.models.Acquire(s.Model, unit(q.UserID, q.Session))
	if err != nil {
		res.err = err
		return res
	}
	defer l.Release()
	res.version = l.Version
	rec, ok := l.Model.(models.Recommender)
	if !ok {
		res.err = fmt.Errorf("model %q cannot recommend: %w", s.Model, models.ErrUnsupported)
		return res
	}
	if s.Candidates > 0 {
		q.K = s.Candidates
	} else if len(q.History) > 0 {
		q.K = 2 * q.K
	}
	start := time.Now()
	res.items, res.err = rec.Recommend(ctx, q)
	r.metrics.observeModel(s.Model, l.Version, time.Since(start), res.err)
	return res
}

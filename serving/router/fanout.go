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
	canary  bool
	items   []models.Scored
	err     error
}

// fanOut runs the plan's sources for q (q.K being the request's k) and
// returns their results, each failed one counted in stats and logged, and
// lists the versions that answered in resp. A request naming a model fails
// with its model; a route goes on without the failed sources, which its
// blend skips. A request cancelled or past its deadline fails with ctx's
// error.
func (r *Router) fanOut(ctx context.Context, resp *Response, stats *runStats, p *plan, q models.Query) ([]sourceResult, error) {
	results := r.runSources(ctx, p.route, p.sources, q)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, res := range results {
		if res.err == nil {
			resp.Models = append(resp.Models, ModelVersion{Name: res.source.Model, Version: res.version, Canary: res.canary})
			continue
		}
		if p.route == nil {
			return nil, res.err
		}
		stats.sourceFailures++
		r.log.Warn("source dropped", "route", p.name, "arm", p.arm, "model", res.source.Model, "err", res.err)
	}
	return results, nil
}

// runSources runs every source concurrently and returns the results in
// source order. When any source has a timeout, a source that misses its own
// timeout (or the request's deadline) is reported as failed at that moment,
// without waiting for it: a hung model cannot hold the request. Without
// timeouts the first source runs on the caller's goroutine and every source
// is trusted to honour ctx (give a source you do not trust a timeout_ms).
//
// q.K is the request's k; each source is asked for its own count (see
// candidates). rt is the route the sources belong to, nil for a model
// override.
func (r *Router) runSources(ctx context.Context, rt *route, sources []Source, q models.Query) []sourceResult {
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
				out[i] = r.runSource(ctx, rt, sources[i], q)
			}()
		}
		out[0] = r.runSource(ctx, rt, sources[0], q)
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
			ch <- done{i, r.runSource(sctx, rt, s, q)}
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

// runSource asks source s of route rt (nil for a model override or a
// backfill) for its candidates, q.K being the request's k, and holds the
// model version for the call. A panicking model is a failed source, not a
// crashed server.
func (r *Router) runSource(ctx context.Context, rt *route, s Source, q models.Query) (res sourceResult) {
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
	res.version, res.canary = l.Version(), l.Canary()
	rec, ok := l.Model().(models.Recommender)
	if !ok {
		res.err = fmt.Errorf("model %q cannot recommend: %w", s.Model, models.ErrUnsupported)
		return res
	}
	q.K = candidates(rt, s, q.K, len(q.History) > 0)
	start := time.Now()
	res.items, res.err = rec.Recommend(ctx, q)
	r.metrics.observeModel(s.Model, res.version, time.Since(start), res.err)
	return res
}

// candidates is how many items source s is asked for when a request wants k
// items through route rt (nil for a model override and for a backfill);
// history tells whether the request carries a history (stored events or
// session items). It is the one place that number is decided:
//
//   - a source with candidates set in routes.yaml gets exactly that many;
//     backfill sets it to the number of items still missing, so a fallback
//     fills the gap and no more;
//   - any other source gets the route's pool (route.pool: k, or more when a
//     later stage chooses among the blended items), doubled when the request
//     has a history, so the blend ranks from deeper lists than it keeps. A
//     model override follows the same rule, although its one list is then
//     cut to k.
func candidates(rt *route, s Source, k int, history bool) int {
	if s.Candidates > 0 {
		return s.Candidates
	}
	n := rt.pool(k)
	if history {
		n *= 2
	}
	return n
}

// pool is how many blended items a request for k items through rt carries
// into the stages after the blend: k, raised to the rerank's top_n so the
// scorer sees all it re-scores, and to 4k with diversity, which skips items
// of categories already full and needs others to take their place. A nil
// route (a model override) pools k.
func (rt *route) pool(k int) int {
	if rt == nil {
		return k
	}
	n := max(k, rt.rerankTopN)
	if rt.diverse {
		n = max(n, 4*k)
	}
	return n
}

package router

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/internal/bucket"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
	"github.com/recserve/recserve/serving/store"
)

// plan is a resolved request: the route (nil for a model override), its arm,
// the sources to run and the fallback chain.
type plan struct {
	name, arm string
	route     *Route
	sources   []Source
	fallbacks []string
}

// Recommend answers a recommendation request: resolve the route, run its
// sources concurrently (each inside its own timeout), blend, rerank, filter,
// diversify, and backfill from the fallback chain.
func (r *Router) Recommend(ctx context.Context, req Request) (resp Response, err error) {
	start := time.Now()
	cfg := r.cfg.Load()
	k, err := validateK(req.K)
	if err != nil {
		return Response{}, err
	}
	if req.UserID == "" && len(req.SessionItems) == 0 {
		return Response{}, fieldErr("user_id", "user_id or session_items is required")
	}
	if err := validateSession(req.SessionItems); err != nil {
		return Response{}, err
	}
	if err := validateContext(req.Context); err != nil {
		return Response{}, err
	}
	if err := validatePrices(req.Filters); err != nil {
		return Response{}, err
	}
	prof, err := r.profile(ctx, req.UserID, req.SessionItems)
	if err != nil {
		return Response{}, err
	}
	p, err := r.resolve(cfg, req, len(prof.History)-len(req.SessionItems))
	if err != nil {
		return Response{}, err
	}
	var stats runStats
	defer func() { r.metrics.observe(p.name, p.arm, time.Since(start), err, resp.ColdStart, stats) }()

	var rf RouteFilters
	if p.route != nil {
		rf = p.route.Filters
	}
	q := models.Query{UserID: req.UserID, History: prof.History, Session: req.SessionItems, K: k, Context: req.Context,
		Allow: r.allow(prof, req.Filters, rf)}
	resp = Response{Route: p.name, Arm: p.arm, ColdStart: len(prof.History) == 0}

	// The pool is what the sources are asked for: more than k when a rerank
	// or diversity stage chooses among them.
	pool := k
	if rt := p.route; rt != nil {
		if rt.Rerank != nil {
			pool = max(pool, rt.Rerank.TopN)
		}
		if rt.Diversity != nil {
			pool = max(pool, 4*k)
		}
	}
	var results []sourceResult
	if !resp.ColdStart || req.Model != "" {
		sq := q
		sq.K = pool
		results = r.runSources(ctx, p.sources, sq)
		if err := ctx.Err(); err != nil {
			return Response{}, err
		}
		for _, res := range results {
			if res.err == nil {
				resp.Models = append(resp.Models, ModelVersion{res.source.Model, res.version})
				continue
			}
			if req.Model != "" {
				return Response{}, res.err
			}
			stats.sourceFailures++
			r.log.Warn("source dropped", "route", p.name, "arm", p.arm, "model", res.source.Model, "err", res.err)
		}
	}
	var items []Item
	if p.route != nil {
		items = blendRoute(results, p.route, pool)
		if p.route.Rerank != nil && len(items) > 1 {
			if items, err = r.rerank(ctx, &resp, items, p.route.Rerank, q); err != nil {
				return Response{}, err
			}
		}
		if d := p.route.Diversity; d != nil {
			items = r.diversify(items, d, k)
		}
	} else {
		items = blendRoute(results, &Route{Blend: BlendMinMax}, k)
	}
	items = items[:min(k, len(items))]
	if len(items) < k && req.Model == "" {
		if len(items) == 0 {
			stats.fallback = true
		}
		if items, err = r.backfill(ctx, &resp, items, p.fallbacks, q); err != nil {
			return Response{}, err
		}
	}
	resp.Items = items
	return resp, nil
}

// resolve picks the plan for req: a model override, a named route, the first
// matching rule (a route or an experiment arm), or the default route. events
// is the user's stored history length (for the new/known user rules).
func (r *Router) resolve(cfg *Config, req Request, events int) (plan, error) {
	if req.Model != "" {
		l, err := r.models.Acquire(req.Model, unit(req.UserID, req.SessionItems))
		if err != nil {
			return plan{}, &models.FieldError{Field: "model", Err: err}
		}
		_, ok := l.Model.(models.Recommender)
		l.Release()
		if !ok {
			return plan{}, fieldErr("model", "model %q (kind %s) cannot recommend", req.Model, l.Spec.Kind)
		}
		return plan{name: "model:" + req.Model, sources: []Source{{Model: req.Model, Weight: 1}},
			fallbacks: []string{cfg.Fallback}}, nil
	}
	name, arm := req.Route, ""
	if name == "" {
		name = cfg.DefaultRoute
		for _, rule := range cfg.Rules {
			if !rule.matches(req, events, cfg.NewUserEvents) {
				continue
			}
			name = rule.Route
			if rule.Experiment != "" {
				e, _ := cfg.experiment(rule.Experiment) // Validate checked it exists
				a := e.assign(assignmentKey(req))
				name, arm = a.Route, e.Name+"/"+a.Name
			}
			break
		}
	}
	rt, ok := cfg.route(name)
	if !ok {
		return plan{}, &models.FieldError{Field: "route", Err: fmt.Errorf("route %q: %w", name, models.ErrNotFound)}
	}
	chain := slices.Clone([]string(rt.Fallback))
	if !slices.Contains(chain, cfg.Fallback) {
		chain = append(chain, cfg.Fallback)
	}
	return plan{name: rt.Name, arm: arm, route: rt, sources: rt.Sources, fallbacks: chain}, nil
}

// matches reports whether the rule applies to req from a user with events
// stored events.
func (rule *Rule) matches(req Request, events, newUserEvents int) bool {
	for key, want := range rule.Context {
		got, ok := req.Context[key]
		if !ok || want != "*" && got != want {
			return false
		}
	}
	switch rule.User {
	case UserAnonymous:
		return req.UserID == ""
	case UserNew:
		return req.UserID != "" && events < newUserEvents
	case UserKnown:
		return req.UserID != "" && events >= newUserEvents
	}
	return true
}

// assignmentKey identifies the shopper for arm assignment: the user id, or
// for an anonymous session its first item, so a session keeps its arm.
func assignmentKey(req Request) string {
	if req.UserID != "" {
		return "u:" + req.UserID
	}
	return "s:" + req.SessionItems[0]
}

// assign picks the arm of key: bucket.Percent of salt and key matched
// against the arms' cumulative percents, so every replica agrees.
func (e *Experiment) assign(key string) Arm {
	x := bucket.Percent(e.Salt, key)
	var cum float64
	for _, a := range e.Arms {
		cum += a.Percent
		if x < cum {
			return a
		}
	}
	return e.Arms[len(e.Arms)-1]
}

// Arm returns the arm of experiment name a user (or an anonymous session
// starting with sessionItem) is assigned to, as Recommend assigns it.
func (c *Config) Arm(experiment, userID, sessionItem string) (string, error) {
	e, ok := c.experiment(experiment)
	if !ok {
		return "", fmt.Errorf("experiment %q: %w", experiment, models.ErrNotFound)
	}
	return e.assign(assignmentKey(Request{UserID: userID, SessionItems: []string{sessionItem}})).Name, nil
}

func (r *Router) profile(ctx context.Context, userID string, session []string) (store.Profile, error) {
	var p store.Profile
	if userID != "" {
		var err error
		if p, err = r.store.Profile(ctx, userID); err != nil {
			return store.Profile{}, fmt.Errorf("profile of %q: %w", userID, err)
		}
	}
	if len(session) == 0 {
		return p, nil
	}
	h := make([]dataset.Interaction, 0, len(p.History)+len(session))
	h = append(h, p.History...)
	var ts int64
	if len(p.History) > 0 {
		ts = p.History[len(p.History)-1].Timestamp
	}
	seen := make(map[string]struct{}, len(p.Seen)+len(session))
	for id := range p.Seen {
		seen[id] = struct{}{}
	}
	for _, id := range session {
		h = append(h, dataset.Interaction{UserID: userID, ItemID: id, Event: dataset.View, Value: 1, Timestamp: ts})
		seen[id] = struct{}{}
	}
	return store.Profile{History: h, Seen: seen}, nil
}

func validatePrices(f Filters) error {
	for field, b := range map[string]*float64{"filters.price_min": f.PriceMin, "filters.price_max": f.PriceMax} {
		if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
			return fieldErr(field, "%v is not a finite price", *b)
		}
	}
	if f.PriceMin != nil && f.PriceMax != nil && *f.PriceMin > *f.PriceMax {
		return fieldErr("filters.price_max", "%v is below price_min %v", *f.PriceMax, *f.PriceMin)
	}
	return nil
}

// allow builds the item filter of a request from its own filters and the
// route's. It allocates only for explicit exclusions; the seen set is the
// store's.
func (r *Router) allow(p store.Profile, f Filters, rf RouteFilters) func(string) bool {
	var seen, purchased map[string]struct{}
	switch rf.Exclude {
	case ExcludePurchased:
		purchased = purchasedSet(p.History)
	case ExcludeNone:
	default: // seen
		if !f.IncludeSeen {
			seen = p.Seen
		}
	}
	excluded := setOf(f.ExcludeItems)
	exCat := union(setOf(f.ExcludeCategories), setOf(rf.ExcludeCategories))
	inCat := intersectCats(setOf(f.IncludeCategories), setOf(rf.IncludeCategories))
	lo, hi := priceBounds(f, rf)
	bounded := !math.IsInf(lo, -1) || !math.IsInf(hi, 1)
	needItem := exCat != nil || inCat != nil || bounded
	return func(id string) bool {
		if _, ok := seen[id]; ok {
			return false
		}
		if _, ok := purchased[id]; ok {
			return false
		}
		if _, ok := excluded[id]; ok {
			return false
		}
		if hidden, out := r.store.Availability(id); hidden || out && !rf.IncludeOutOfStock {
			return false
		}
		if !needItem {
			return true
		}
		it, ok := r.store.Item(id)
		if !ok {
			return inCat == nil && !bounded
		}
		if _, ok := exCat[it.Category]; ok {
			return false
		}
		if inCat != nil {
			if _, ok := inCat[it.Category]; !ok {
				return false
			}
		}
		if bounded && (math.IsNaN(it.Price) || it.Price < lo || it.Price > hi) {
			return false
		}
		return true
	}
}

func purchasedSet(h []dataset.Interaction) map[string]struct{} {
	var s map[string]struct{}
	for _, in := range h {
		if in.Event == dataset.Purchase {
			if s == nil {
				s = map[string]struct{}{}
			}
			s[in.ItemID] = struct{}{}
		}
	}
	return s
}

// priceBounds combines the request's and the route's price bounds (the
// tighter of each).
func priceBounds(f Filters, rf RouteFilters) (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	for _, b := range []*float64{f.PriceMin, rf.PriceMin} {
		if b != nil {
			lo = max(lo, *b)
		}
	}
	for _, b := range []*float64{f.PriceMax, rf.PriceMax} {
		if b != nil {
			hi = min(hi, *b)
		}
	}
	return lo, hi
}

func setOf(xs []string) map[string]struct{} {
	if len(xs) == 0 {
		return nil
	}
	s := make(map[string]struct{}, len(xs))
	for _, x := range xs {
		s[x] = struct{}{}
	}
	return s
}

func union(a, b map[string]struct{}) map[string]struct{} {
	if len(a) == 0 {
		return b
	}
	for x := range b {
		a[x] = struct{}{}
	}
	return a
}

// intersectCats combines two include lists: both must allow a category; nil
// means no restriction. Two disjoint lists allow nothing.
func intersectCats(a, b map[string]struct{}) map[string]struct{} {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := map[string]struct{}{}
	for x := range a {
		if _, ok := b[x]; ok {
			out[x] = struct{}{}
		}
	}
	return out
}

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

// blendRoute merges the successful sources' candidates by the route's blend
// method and returns the best n. A single source keeps its own scores.
func blendRoute(results []sourceResult, rt *Route, n int) []Item {
	var ok []sourceResult
	for _, res := range results {
		if res.err == nil && len(res.items) > 0 {
			ok = append(ok, res)
		}
	}
	switch len(ok) {
	case 0:
		return nil
	case 1:
		return single(ok[0], n)
	}
	type acc struct {
		score   float64
		sources []string
	}
	byItem := map[string]*acc{}
	var order []string
	for _, res := range ok {
		// One shared slice per source: cap 1 makes a second append copy.
		src := []string{res.source.Model}
		lo, hi := res.items[len(res.items)-1].Score, res.items[0].Score
		for rank, it := range res.items {
			var s float64
			switch rt.Blend {
			case BlendRank:
				s = res.source.Weight * (1 - float64(rank)/float64(len(res.items)))
			case BlendRRF:
				s = res.source.Weight / (rt.RRFK + float64(rank+1))
			default:
				s = res.source.Weight * normalise(it.Score, lo, hi)
			}
			a, seen := byItem[it.ItemID]
			if !seen {
				a = &acc{}
				byItem[it.ItemID] = a
				order = append(order, it.ItemID)
			}
			a.score += s
			if a.sources == nil {
				a.sources = src
			} else {
				a.sources = append(a.sources, res.source.Model)
			}
		}
	}
	c := topk.New(n)
	for _, id := range order {
		c.Push(id, byItem[id].score)
	}
	top := c.Sorted()
	out := make([]Item, len(top))
	for i, s := range top {
		out[i] = Item{ItemID: s.ItemID, Score: s.Score, Sources: byItem[s.ItemID].sources}
	}
	return out
}

// single converts one source's answer, keeping its scores and order.
func single(res sourceResult, n int) []Item {
	items := res.items[:min(n, len(res.items))]
	src := []string{res.source.Model}
	out := make([]Item, len(items))
	for i, s := range items {
		out[i] = Item{ItemID: s.ItemID, Score: s.Score, Sources: src}
	}
	return out
}

// normalise maps s from [lo,hi] to [0,1]; a constant source maps to 1.
func normalise(s, lo, hi float64) float64 {
	if hi-lo <= 0 || math.IsInf(hi-lo, 0) {
		return 1
	}
	return (s - lo) / (hi - lo)
}

// rerank re-scores the first TopN items with the route's scorer and orders
// them by weight·scorer + (1−weight)·blend, both min-max normalised; items
// past TopN keep their order below. A failing scorer leaves the order as it
// was (logged): reranking improves an answer, it must not break it.
func (r *Router) rerank(ctx context.Context, resp *Response, items []Item, rr *Rerank, q models.Query) ([]Item, error) {
	n := min(rr.TopN, len(items))
	head := items[:n]
	ids := make([]string, n)
	for i, it := range head {
		ids[i] = it.ItemID
	}
	l, err := r.models.Acquire(rr.Model, unit(q.UserID, q.Session))
	var scores []float64
	if err == nil {
		defer l.Release()
		sc, ok := l.Model.(models.Scorer)
		if !ok {
			err = fmt.Errorf("model %q cannot score: %w", rr.Model, models.ErrUnsupported)
		} else {
			start := time.Now()
			scores, err = sc.Score(ctx, q, ids)
			r.metrics.observeModel(rr.Model, l.Version, time.Since(start), err)
			if err == nil && len(scores) != n {
				err = fmt.Errorf("model %q returned %d scores for %d items", rr.Model, len(scores), n)
			}
		}
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		r.log.Warn("rerank skipped", "route", resp.Route, "model", rr.Model, "err", err)
		return items, nil
	}
	resp.Models = append(resp.Models, ModelVersion{rr.Model, l.Version})
	slo, shi := minMax(scores)
	blo, bhi := math.Inf(1), math.Inf(-1)
	for _, it := range head {
		blo, bhi = min(blo, it.Score), max(bhi, it.Score)
	}
	out := slices.Clone(items)
	for i := range out[:n] {
		out[i].Score = rr.Weight*normalise(scores[i], slo, shi) + (1-rr.Weight)*normalise(head[i].Score, blo, bhi)
	}
	slices.SortStableFunc(out[:n], func(a, b Item) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return strings.Compare(a.ItemID, b.ItemID)
	})
	// Items past the reranked head stay below it whatever their scale.
	for i := n; i < len(out); i++ {
		out[i].Score = -float64(i - n + 1)
	}
	return out, nil
}

func minMax(xs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// diversify picks k items from the ranked candidates: by maximal marginal
// relevance when MMRLambda is set, then with at most MaxPerCategory items of
// a category. Candidates keep their scores.
func (r *Router) diversify(items []Item, d *Diversity, k int) []Item {
	cat := func(id string) (string, string) {
		it, _ := r.store.Item(id)
		return it.Category, it.Brand
	}
	if d.MMRLambda > 0 && len(items) > 1 {
		items = mmr(items, d.MMRLambda, cat)
	}
	if d.MaxPerCategory <= 0 {
		return items
	}
	perCat := map[string]int{}
	out := make([]Item, 0, min(k, len(items)))
	for _, it := range items {
		c, _ := cat(it.ItemID)
		if c != "" && perCat[c] >= d.MaxPerCategory {
			continue
		}
		perCat[c]++
		out = append(out, it)
		if len(out) == k {
			break
		}
	}
	return out
}

// mmr reorders items greedily by λ·relevance − (1−λ)·max similarity to the
// items chosen so far; relevance is the min-max normalised score and two
// items are similar (1) in the same category, or 0.5 with the same brand.
func mmr(items []Item, lambda float64, attrs func(string) (string, string)) []Item {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, it := range items {
		lo, hi = min(lo, it.Score), max(hi, it.Score)
	}
	type cand struct {
		it         Item
		cat, brand string
		rel, sim   float64
	}
	rest := make([]cand, len(items))
	for i, it := range items {
		c, b := attrs(it.ItemID)
		rest[i] = cand{it: it, cat: c, brand: b, rel: normalise(it.Score, lo, hi)}
	}
	out := make([]Item, 0, len(items))
	for len(rest) > 0 {
		best := 0
		bestV := math.Inf(-1)
		for i, c := range rest {
			if v := lambda*c.rel - (1-lambda)*c.sim; v > bestV {
				best, bestV = i, v
			}
		}
		chosen := rest[best]
		out = append(out, chosen.it)
		rest = slices.Delete(rest, best, best+1)
		for i := range rest {
			s := 0.0
			switch {
			case rest[i].cat != "" && rest[i].cat == chosen.cat:
				s = 1
			case rest[i].brand != "" && rest[i].brand == chosen.brand:
				s = 0.5
			}
			rest[i].sim = max(rest[i].sim, s)
		}
	}
	return out
}

// backfill tops up items from the fallback chain, each model in turn, below
// every item already chosen. It fails only when nothing at all can be
// returned.
func (r *Router) backfill(ctx context.Context, resp *Response, items []Item, chain []string, q models.Query) ([]Item, error) {
	k := q.K
	chosen := make(map[string]struct{}, len(items))
	floor := math.Inf(1)
	for _, it := range items {
		chosen[it.ItemID] = struct{}{}
		floor = min(floor, it.Score)
	}
	allow := q.Allow
	q.Allow = func(id string) bool {
		if _, ok := chosen[id]; ok {
			return false
		}
		return allow == nil || allow(id)
	}
	var errs []error
	for _, fb := range chain {
		need := k - len(items)
		if need <= 0 {
			break
		}
		q.K = need
		// Candidates pins the model to exactly the missing count: without it
		// runSource asks for 2*need when the user has history.
		res := r.runSource(ctx, Source{Model: fb, Weight: 1, Candidates: need}, q)
		if res.err != nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r.log.Warn("fallback failed", "route", resp.Route, "model", fb, "err", res.err)
			errs = append(errs, fmt.Errorf("fallback %q: %w", fb, res.err))
			continue
		}
		if len(res.items) > need {
			res.items = res.items[:need]
		}
		if len(res.items) == 0 {
			continue
		}
		if !contains(resp.Models, fb) {
			resp.Models = append(resp.Models, ModelVersion{fb, res.version})
		}
		// Keep backfilled items below the chosen ones whatever their scale.
		shift := 0.0
		if len(items) > 0 && res.items[0].Score >= floor {
			shift = res.items[0].Score - floor + 1
		}
		src := []string{fb}
		for _, s := range res.items {
			items = append(items, Item{ItemID: s.ItemID, Score: s.Score - shift, Sources: src})
			chosen[s.ItemID] = struct{}{}
			floor = min(floor, s.Score-shift)
		}
	}
	if len(items) == 0 && len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return items, nil
}

func contains(ms []ModelVersion, name string) bool {
	for _, m := range ms {
		if m.Name == name {
			return true
		}
	}
	return false
}

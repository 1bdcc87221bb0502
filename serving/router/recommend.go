package router

import (
	"context"
	"time"

	"github.com/recserve/recserve/models"
)

// Recommend answers a recommendation request: resolve the route, run its
// sources concurrently (each inside its own timeout), blend, rerank, filter,
// diversify, and backfill from the fallback chain.
func (r *Router) Recommend(ctx context.Context, req Request) (resp Response, err error) {
	start := time.Now()
	t := r.tab.Load()
	k, err := validateRecommend(req)
	if err != nil {
		return Response{}, err
	}
	prof, err := r.profile(ctx, req.UserID, req.SessionItems)
	if err != nil {
		return Response{}, err
	}
	p, err := r.resolve(t, req, len(prof.History)-len(req.SessionItems))
	if err != nil {
		return Response{}, err
	}
	var stats runStats
	defer func() { r.metrics.observe(p.name, p.arm, time.Since(start), err, resp.ColdStart, stats) }()

	rf := &noRouteFilters
	if p.route != nil {
		rf = &p.route.filters
	}
	q := models.Query{UserID: req.UserID, History: prof.History, Session: req.SessionItems, K: k, Context: req.Context,
		Allow: r.allow(prof, req.Filters, rf)}
	resp = Response{Route: p.name, Arm: p.arm, ColdStart: len(prof.History) == 0}

	var results []sourceResult
	if !resp.ColdStart || req.Model != "" {
		if results, err = r.fanOut(ctx, &resp, &stats, &p, q); err != nil {
			return Response{}, err
		}
	}
	pool := p.route.pool(k) // k for a model override
	var items []Item
	if p.route != nil {
		items = blendRoute(results, p.route.Route, pool)
		if p.route.Rerank != nil && len(items) > 1 {
			if items, err = r.rerank(ctx, &resp, items, p.route.Rerank, q); err != nil {
				return Response{}, err
			}
		}
		if d := p.route.Diversity; d != nil {
			items = r.diversify(items, d, k)
		}
	} else {
		items = blendRoute(results, &Route{Blend: BlendMinMax}, pool)
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
	resp.RecommendationID = newRecommendationID()
	r.impression(Impression{ID: resp.RecommendationID, Kind: "recommend", UserID: req.UserID, SessionID: req.SessionID,
		Route: resp.Route, Arm: resp.Arm, Models: resp.Models}, items)
	if req.Debug {
		resp.Debug = r.explain(q, resp.Models)
	}
	return resp, nil
}

// explain builds the Debug of an answer: the history q carried and the
// inputs of the model versions that answered (acquired again: the same unit
// gets the same version unless a deploy happened in between).
func (r *Router) explain(q models.Query, used []ModelVersion) *Debug {
	d := &Debug{History: make([]string, len(q.History))}
	for i, in := range q.History {
		d.History[i] = in.ItemID
	}
	for _, mv := range used {
		l, err := r.models.Acquire(mv.Name, unit(q.UserID, q.Session))
		if err != nil {
			continue
		}
		if ex, ok := l.Model().(models.InputExplainer); ok {
			d.Inputs = append(d.Inputs, ModelInput{Model: mv.Name, Version: l.Version(), Items: ex.ExplainInput(q)})
		}
		l.Release()
	}
	return d
}

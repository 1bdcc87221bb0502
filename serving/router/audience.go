package router

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/models/topk"
	"github.com/recserve/recserve/serving/store"
)

// Limits and defaults of TargetAudience.
const (
	DefaultAudience     = 100
	MaxAudience         = 10000
	DefaultCandidates   = 20000
	MaxCandidates       = 1000000
	categoryTargetItems = 5   // items scored per user for a category
	audienceScoreBatch  = 128 // users a worker takes at a time
)

// AudienceRequest asks for the users most likely to buy an item or an item
// of a category.
type AudienceRequest struct {
	ItemID, Category string
	N                int
	Model            string
	IncludeBuyers    bool
	MaxCandidates    int
	Context          map[string]string
}

// AudienceMember is one targeted user with the scorer's score.
type AudienceMember struct {
	UserID string
	Score  float64
}

// AudienceResponse lists users, most likely buyer first.
type AudienceResponse struct {
	Users      []AudienceMember
	Model      ModelVersion
	Candidates int
	Items      []string
}

// TargetAudience finds the users most likely to buy req's item, or an item of
// its category. Candidates are the users who touched the item, then the
// category's most engaged users, up to MaxCandidates; they are scored with the
// scorer in batches on every core, each user through the same Score path as
// a Score request, and the best N are kept.
func (r *Router) TargetAudience(ctx context.Context, req AudienceRequest) (AudienceResponse, error) {
	t := r.tab.Load()
	n, maxCand, err := validateAudience(req)
	if err != nil {
		return AudienceResponse{}, err
	}
	var targets []string
	category := req.Category
	if req.ItemID != "" {
		it, ok := r.store.Item(req.ItemID)
		if !ok {
			return AudienceResponse{}, &models.FieldError{Field: "item_id",
				Err: fmt.Errorf("item %q is not in the catalogue: %w", req.ItemID, models.ErrNotFound)}
		}
		targets, category = []string{req.ItemID}, it.Category
	} else {
		items := r.store.CategoryItems(req.Category)
		if len(items) == 0 {
			return AudienceResponse{}, &models.FieldError{Field: "category",
				Err: fmt.Errorf("category %q has no items in the catalogue: %w", req.Category, models.ErrNotFound)}
		}
		targets = items[:min(categoryTargetItems, len(items))]
	}
	// An audience is many users: the stable version scores all of them.
	sc, l, name, err := resolveRole[models.Scorer](r, req.Model, "", "default_scorer", t.cfg.DefaultScorer, "score")
	if err != nil {
		return AudienceResponse{}, err
	}
	defer l.Release()
	users := r.candidates(req.ItemID, category, maxCand)
	top, err := r.scoreUsers(ctx, sc, users, targets, n, req)
	if err != nil {
		return AudienceResponse{}, fmt.Errorf("target audience with %q: %w", name, err)
	}
	resp := AudienceResponse{Model: ModelVersion{Name: name, Version: l.Version(), Canary: l.Canary()}, Candidates: len(users), Items: targets}
	best := top.Sorted()
	resp.Users = make([]AudienceMember, 0, min(n, len(best)))
	for _, s := range best[:min(n, len(best))] {
		resp.Users = append(resp.Users, AudienceMember{UserID: s.ItemID, Score: s.Score})
	}
	return resp, nil
}

func validateAudience(req AudienceRequest) (n, maxCand int, err error) {
	switch {
	case req.ItemID == "" && req.Category == "":
		return 0, 0, fieldErr("item_id", "one of item_id and category is required")
	case req.ItemID != "" && req.Category != "":
		return 0, 0, fieldErr("category", "give item_id or category, not both")
	}
	if err := validateContext(req.Context); err != nil {
		return 0, 0, err
	}
	n = req.N
	switch {
	case n == 0:
		n = DefaultAudience
	case n < 1 || n > MaxAudience:
		return 0, 0, fieldErr("n", "must be between 1 and %d (0 means %d), got %d", MaxAudience, DefaultAudience, n)
	}
	maxCand = req.MaxCandidates
	switch {
	case maxCand == 0:
		maxCand = DefaultCandidates
	case maxCand < 1 || maxCand > MaxCandidates:
		return 0, 0, fieldErr("max_candidates", "must be between 1 and %d (0 means %d), got %d", MaxCandidates, DefaultCandidates, maxCand)
	}
	return n, maxCand, nil
}

// candidates lists the users to score: those who touched the item, then the
// category's most engaged users, without duplicates, at most max.
func (r *Router) candidates(itemID, category string, limit int) []string {
	var users []string
	seen := map[string]struct{}{}
	add := func(u string) {
		if _, dup := seen[u]; !dup && len(users) < limit {
			seen[u] = struct{}{}
			users = append(users, u)
		}
	}
	if itemID != "" {
		for _, u := range r.store.ItemUsers(itemID) {
			add(u)
		}
	}
	if category != "" {
		for _, a := range r.store.CategoryUsers(category) {
			if len(users) >= limit {
				break
			}
			add(a.UserID)
		}
	}
	return users
}

// scoreUsers scores every user against targets on GOMAXPROCS workers, each
// taking batches of users, and keeps the best; a user's score is their best
// over the targets they may be offered.
func (r *Router) scoreUsers(ctx context.Context, sc models.Scorer, users, targets []string, n int, req AudienceRequest) (*topk.Collector, error) {
	workers := min(runtime.GOMAXPROCS(0), max(1, len(users)/audienceScoreBatch))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		top  = topk.New(n)
		next int
		wg   sync.WaitGroup
	)
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		lo := next
		next = min(next+audienceScoreBatch, len(users))
		return users[lo:next]
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := topk.New(n)
			offer := make([]string, 0, len(targets))
			for batch := take(); len(batch) > 0 && ctx.Err() == nil; batch = take() {
				for _, u := range batch {
					prof, err := r.store.Profile(ctx, u)
					if err != nil {
						cancel(err)
						return
					}
					offer = offer[:0]
					for _, id := range targets {
						if req.IncludeBuyers || !bought(prof, id) {
							offer = append(offer, id)
						}
					}
					if len(offer) == 0 {
						continue
					}
					q := models.Query{UserID: u, History: prof.History, K: len(offer), Context: req.Context}
					scores, err := sc.Score(ctx, q, offer)
					if err != nil {
						cancel(err)
						return
					}
					if len(scores) != len(offer) {
						cancel(fmt.Errorf("scorer returned %d scores for %d items", len(scores), len(offer)))
						return
					}
					best := scores[0]
					for _, s := range scores[1:] {
						best = max(best, s)
					}
					local.Push(u, best)
				}
			}
			mu.Lock()
			for _, s := range local.Sorted() {
				top.Push(s.ItemID, s.Score)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Cause is a worker's error, or the caller's cancellation or deadline.
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return top, nil
}

// bought reports whether the user purchased itemID; the seen set rules out
// most items without scanning the history.
func bought(p store.Profile, itemID string) bool {
	if _, ok := p.Seen[itemID]; !ok {
		return false
	}
	for _, in := range p.History {
		if in.ItemID == itemID && in.Event == dataset.Purchase {
			return true
		}
	}
	return false
}

package eval

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving"
	"github.com/recserve/recserve/serving/router"
)

// Router is what the evaluator drives: the router.
type Router interface {
	Recommend(ctx context.Context, req router.Request) (router.Response, error)
}

// Result is one evaluated model or route. Exactly one of Model and Route is
// set; metrics are means over the evaluated users.
type Result struct {
	Model     string  `json:"model,omitempty"`
	Route     string  `json:"route,omitempty"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	NDCG      float64 `json:"ndcg"`
	MAP       float64 `json:"map"`
	HitRate   float64 `json:"hit_rate"`
	// Coverage is the share of the catalogue recommended to anyone.
	Coverage float64 `json:"coverage"`
	Users    int     `json:"users"`
}

// Name is the model or route name.
func (r Result) Name() string {
	if r.Route != "" {
		return r.Route
	}
	return r.Model
}

// Case is one user's held-out truth.
type Case struct {
	UserID   string
	Relevant map[string]struct{}
}

// Cases builds the evaluation cases: for each test user, the distinct test
// items the user had not already touched in train (the router never returns
// seen items, so they could not be hit). With coldItems, only items absent
// from train count. Users without relevant items are skipped. Cases are sorted
// by user id.
func Cases(train, test *dataset.Dataset, coldItems bool) []Case {
	seen := seenByUser(train)
	inTrain := map[string]struct{}{}
	for _, in := range train.Interactions {
		inTrain[in.ItemID] = struct{}{}
	}
	rel := map[string]map[string]struct{}{}
	for _, in := range test.Interactions {
		if _, ok := seen[in.UserID][in.ItemID]; ok {
			continue
		}
		if _, ok := inTrain[in.ItemID]; ok && coldItems {
			continue
		}
		r := rel[in.UserID]
		if r == nil {
			r = map[string]struct{}{}
			rel[in.UserID] = r
		}
		r[in.ItemID] = struct{}{}
	}
	out := make([]Case, 0, len(rel))
	for u, r := range rel {
		out = append(out, Case{UserID: u, Relevant: r})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// NextItemCases builds next-item cases: for each test user, the one item of
// their earliest test event (ties in file order) that they had not touched
// in train: what they did next, the question session-based models answer.
func NextItemCases(train, test *dataset.Dataset) []Case {
	seen := seenByUser(train)
	first := map[string]dataset.Interaction{}
	for _, in := range test.Interactions {
		if _, ok := seen[in.UserID][in.ItemID]; ok {
			continue
		}
		if f, ok := first[in.UserID]; !ok || in.Timestamp < f.Timestamp {
			first[in.UserID] = in
		}
	}
	out := make([]Case, 0, len(first))
	for u, in := range first {
		out = append(out, Case{UserID: u, Relevant: map[string]struct{}{in.ItemID: {}}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// seenByUser returns the items each user touched in d.
func seenByUser(d *dataset.Dataset) map[string]map[string]struct{} {
	seen := map[string]map[string]struct{}{}
	for _, in := range d.Interactions {
		s := seen[in.UserID]
		if s == nil {
			s = map[string]struct{}{}
			seen[in.UserID] = s
		}
		s[in.ItemID] = struct{}{}
	}
	return seen
}

// Evaluate asks rec for the top k of every case, with base as the request
// template (its Model or Route selects what is evaluated), on workers
// goroutines (0 = GOMAXPROCS), and averages the metrics. catalog is the
// catalogue size for coverage.
func Evaluate(ctx context.Context, rec Router, base router.Request, cases []Case, k, catalog, workers int) (Result, error) {
	if k <= 0 {
		return Result{}, fmt.Errorf("k must be positive, got %d", k)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type partial struct {
		sum   Ranking
		items map[string]struct{}
		err   error
	}
	parts := make([]partial, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[w]
			p.items = map[string]struct{}{}
			for i := w; i < len(cases); i += workers {
				if p.err = ctx.Err(); p.err != nil {
					return
				}
				req := base
				req.UserID, req.K = cases[i].UserID, k
				resp, err := rec.Recommend(ctx, req)
				if err != nil {
					p.err = fmt.Errorf("user %s: %w", cases[i].UserID, err)
					return
				}
				ids := make([]string, len(resp.Items))
				for j, it := range resp.Items {
					ids[j] = it.ItemID
					p.items[it.ItemID] = struct{}{}
				}
				r := Rank(ids, cases[i].Relevant, k)
				p.sum.Precision += r.Precision
				p.sum.Recall += r.Recall
				p.sum.NDCG += r.NDCG
				p.sum.AP += r.AP
				p.sum.Hit += r.Hit
			}
		}()
	}
	wg.Wait()
	var sum Ranking
	items := map[string]struct{}{}
	var errs []error
	for _, p := range parts {
		errs = append(errs, p.err)
		sum.Precision += p.sum.Precision
		sum.Recall += p.sum.Recall
		sum.NDCG += p.sum.NDCG
		sum.AP += p.sum.AP
		sum.Hit += p.sum.Hit
		for id := range p.items {
			items[id] = struct{}{}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Result{}, err
	}
	res := Result{Model: base.Model, Route: base.Route, Users: len(cases)}
	if n := float64(len(cases)); n > 0 {
		res.Precision, res.Recall, res.NDCG = sum.Precision/n, sum.Recall/n, sum.NDCG/n
		res.MAP, res.HitRate = sum.AP/n, sum.Hit/n
	}
	if catalog > 0 {
		res.Coverage = float64(len(items)) / float64(catalog)
	}
	return res, nil
}

// Options configure Run.
type Options struct {
	// Repo is the model repository; Train and Test are data set directories.
	Repo, Train, Test string
	// K is the cut-off (default 10).
	K int
	// Routes evaluates every route of Repo/routes.yaml as well as the models.
	Routes bool
	// ColdItems counts only test items absent from train.
	ColdItems bool
	// NextItem counts only each user's next item (NextItemCases).
	NextItem bool
	// Models restricts the models evaluated; empty means every recommender.
	Models []string
	// Workers is the evaluation parallelism (0 = GOMAXPROCS).
	Workers int
}

// Report is the outcome of Run; it marshals to the documented --json shape.
type Report struct {
	K       int      `json:"k"`
	Results []Result `json:"results"`
	// Scorers holds the purchase-propensity quality of every scorer.
	Scorers []ScorerResult `json:"scorers,omitempty"`
	// Skipped lists models that were not evaluated and why.
	Skipped map[string]string `json:"skipped,omitempty"`
}

// Run loads the repository, builds the router over a store of the train data
// exactly as the server does, and evaluates every recommender model (and
// every route with Options.Routes) on the test data.
func Run(ctx context.Context, o Options) (Report, error) {
	sess, err := openSession(ctx, o)
	if err != nil {
		return Report{}, err
	}
	defer sess.close()
	rep := Report{K: sess.o.K, Skipped: map[string]string{}}
	repo, rt := sess.stack.Repository, sess.stack.Router
	names := o.Models
	if len(names) == 0 {
		names = repo.Names()
	}
	for _, name := range names {
		l, err := repo.Get(name)
		if err != nil {
			rep.Skipped[name] = err.Error()
			continue
		}
		if _, ok := l.Model.(models.Recommender); !ok {
			if _, ok := l.Model.(models.Scorer); !ok || o.ColdItems {
				rep.Skipped[name] = "not a recommender"
			}
			continue // a scorer is evaluated below
		}
		res, err := sess.evaluate(ctx, router.Request{Model: name})
		if err != nil {
			return Report{}, fmt.Errorf("model %s: %w", name, err)
		}
		rep.Results = append(rep.Results, res)
	}
	if !o.ColdItems {
		if err := evalScorers(ctx, &rep, rt, repo, names, sess.train, sess.test, sess.stack.Store, o.Workers); err != nil {
			return Report{}, err
		}
	}
	if o.Routes {
		for _, r := range rt.Config().Routes {
			res, err := sess.evaluateRoute(ctx, r, rep.Skipped)
			if err != nil {
				return Report{}, err
			}
			rep.Results = append(rep.Results, res)
		}
	}
	if len(rep.Skipped) == 0 {
		rep.Skipped = nil
	}
	return rep, nil
}

// session is an evaluation's setup, shared by Run and Online: the serving
// stack over the train data and the test cases.
type session struct {
	o           Options
	train, test *dataset.Dataset
	stack       *serving.Stack
	cases       []Case
	// catalog is the catalogue size, for coverage.
	catalog int
}

// openSession reads o's data sets and assembles the stack over the train
// data; close releases it.
func openSession(ctx context.Context, o Options) (*session, error) {
	if o.K == 0 {
		o.K = 10
	}
	if o.NextItem && o.ColdItems {
		return nil, errors.New("eval: next-item and cold-items cannot be combined")
	}
	train, err := dataset.Read(o.Train)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	test, err := dataset.Read(o.Test)
	if err != nil {
		return nil, fmt.Errorf("test: %w", err)
	}
	// The very assembly the server runs: store, features, kinds, repository
	// and router over the train data.
	stack, err := serving.Open(ctx, serving.Options{Repo: o.Repo, Data: o.Train, Dataset: train})
	if err != nil {
		return nil, err
	}
	cases := Cases(train, test, o.ColdItems)
	if o.NextItem {
		cases = NextItemCases(train, test)
	}
	return &session{o: o, train: train, test: test, stack: stack, cases: cases, catalog: len(stack.Store.ItemIDs())}, nil
}

func (s *session) close() { s.stack.Close() }

// evaluate evaluates what base selects (a model or a route) on the cases.
func (s *session) evaluate(ctx context.Context, base router.Request) (Result, error) {
	return Evaluate(ctx, s.stack.Router, base, s.cases, s.o.K, s.catalog, s.o.Workers)
}

// evaluateRoute evaluates route r and notes in skipped the models it names
// that the repository lacks: as the server does, the router drops a source
// it cannot acquire and the route answers from the rest.
func (s *session) evaluateRoute(ctx context.Context, r router.Route, skipped map[string]string) (Result, error) {
	for _, m := range routeModels(r) {
		if _, err := s.stack.Repository.Get(m); err != nil {
			skipped[fmt.Sprintf("%s (in route %s)", m, r.Name)] = fmt.Sprintf("%v: the route was evaluated without it", err)
		}
	}
	res, err := s.evaluate(ctx, router.Request{Route: r.Name})
	if err != nil {
		return Result{}, fmt.Errorf("route %s: %w", r.Name, err)
	}
	return res, nil
}

// routeModels lists the models route r names: its sources, its reranker and
// its fallback chain, each once.
func routeModels(r router.Route) []string {
	var out []string
	add := func(m string) {
		if m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	for _, s := range r.Sources {
		add(s.Model)
	}
	if r.Rerank != nil {
		add(r.Rerank.Model)
	}
	for _, m := range r.Fallback {
		add(m)
	}
	return out
}

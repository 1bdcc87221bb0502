package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// RouteSimilar is the route a SimilarItems answer is reported under: such
// answers name no route, and the router's metrics label them so too.
const RouteSimilar = "similar"

// OnlineOptions configure Online and Replay.
type OnlineOptions struct {
	// Since and Until bound the answers' time, [Since, Until): zero Since
	// is the start of the log, zero Until is Now.
	Since, Until time.Time
	// Now is the report time (zero: time.Now()).
	Now time.Time
	// Metric, Alpha and MinUsers decide the experiments' verdicts, as in
	// experiment.Query (zero: its defaults).
	Metric   string
	Alpha    float64
	MinUsers int64
	// Offline, when its Repo is set, also evaluates every reported route
	// offline on Offline.Train and Offline.Test, as Run does with
	// Options.Routes (K, ColdItems, NextItem and Workers apply; Routes and
	// Models do not), and takes each experiment's arm order (its default
	// control) from the repository's routes.yaml, as the server does.
	Offline Options
}

// OnlineReport sets the click-through of logged answers beside the offline
// metrics of the routes that gave them: one table per experiment found in
// the log, then one for the answers no experiment routed. It marshals to
// the documented `recctl eval --impressions --json` shape.
type OnlineReport struct {
	// Log describes the impression logs read (Replay only).
	Log   *impressionlog.Stats `json:"log,omitempty"`
	Since time.Time            `json:"since"`
	Until time.Time            `json:"until"`
	// K is the offline cut-off; 0 without offline evaluation.
	K      int           `json:"k,omitempty"`
	Tables []OnlineTable `json:"tables"`
	// Skipped lists routes (and models of routes) not evaluated offline
	// and why.
	Skipped map[string]string `json:"skipped,omitempty"`
}

// OnlineTable is one experiment's arms, or (Experiment "") the routes of
// the answers no experiment routed.
type OnlineTable struct {
	Experiment string `json:"experiment,omitempty"`
	// Control is the arm the others are compared with; Metric, Alpha and
	// MinUsers are what the verdicts were decided on (experiments only).
	Control  string  `json:"control,omitempty"`
	Metric   string  `json:"metric,omitempty"`
	Alpha    float64 `json:"alpha,omitempty"`
	MinUsers int64   `json:"min_users,omitempty"`
	// Answers counts the table's answers (impressions).
	Answers int64       `json:"answers"`
	Rows    []OnlineRow `json:"rows"`
}

// OnlineRow is one arm (or route) online, and its route offline. Its online
// numbers are experiment.Build's, so they equal a live `recctl experiment
// report` of the same answers and events.
type OnlineRow struct {
	// Arm is the experiment's arm ("" in the table of unrouted answers).
	Arm string `json:"arm,omitempty"`
	// Route is the route that gave the answers (for an arm, the one most
	// of its answers came from).
	Route   string `json:"route"`
	Control bool   `json:"control,omitempty"`
	// Users saw at least one of the row's answers; Answers counts them.
	Users   int64 `json:"users"`
	Answers int64 `json:"answers"`
	// Clicks and Purchases count the attributed events, Revenue their
	// purchases' revenue.
	Clicks    int64   `json:"clicks"`
	Purchases int64   `json:"purchases"`
	Revenue   float64 `json:"revenue"`
	// CTR is the share of users who clicked through at least once,
	// Conversion of those who bought, RevenuePerUser the mean revenue per
	// user; each with its confidence interval at 1 − alpha.
	CTR            Estimate `json:"ctr"`
	Conversion     Estimate `json:"conversion"`
	RevenuePerUser Estimate `json:"revenue_per_user"`
	// Verdict is the experiment's verdict on the row, in words (for
	// experiments only).
	Verdict string `json:"verdict,omitempty"`
	// Offline is the route's offline evaluation (nil without one, or when
	// the route could not be evaluated: see OnlineReport.Skipped).
	Offline *Result `json:"offline,omitempty"`
}

// Estimate is a rate or mean with its confidence interval; an undefined
// number (NaN: an interval from one user) marshals as null.
type Estimate struct {
	Value, Low, High float64
}

// MarshalJSON writes {"value", "ci_low", "ci_high"}, NaN and ±Inf as null
// (JSON has no NaN).
func (e Estimate) MarshalJSON() ([]byte, error) {
	num := func(f float64) *float64 {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return &f
	}
	return json.Marshal(struct {
		Value *float64 `json:"value"`
		Low   *float64 `json:"ci_low"`
		High  *float64 `json:"ci_high"`
	}{num(e.Value), num(e.Low), num(e.High)})
}

// UnmarshalJSON reads what MarshalJSON writes, null as NaN.
func (e *Estimate) UnmarshalJSON(b []byte) error {
	var v struct {
		Value *float64 `json:"value"`
		Low   *float64 `json:"ci_low"`
		High  *float64 `json:"ci_high"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	num := func(f *float64) float64 {
		if f == nil {
			return math.NaN()
		}
		return *f
	}
	*e = Estimate{num(v.Value), num(v.Low), num(v.High)}
	return nil
}

func estimate(e experiment.Estimate) Estimate {
	return Estimate{e.Value, e.CI.Lo, e.CI.Hi}
}

// Replay reads the impression logs at paths (impressionlog.Read: each a
// file, with its rotated backups, or a glob) and reports them (Online).
func Replay(ctx context.Context, paths []string, o OnlineOptions) (OnlineReport, error) {
	log, err := impressionlog.Read(paths...)
	if err != nil {
		return OnlineReport{}, err
	}
	rep, err := Online(ctx, log, o)
	if err != nil {
		return OnlineReport{}, err
	}
	st := log.Stats()
	rep.Log = &st
	return rep, nil
}

// Online reports the logged answers of src (an impression log read back,
// or any experiment.Source): for every experiment found, its arms as
// experiment.Build reports them; for the answers no experiment routed, one
// row per route (SimilarItems answers under RouteSimilar); and, with
// o.Offline.Repo, each row's route evaluated offline beside it, so that how
// routes rank offline can be checked against how they did with shoppers.
func Online(ctx context.Context, src experiment.Source, o OnlineOptions) (OnlineReport, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if o.Until.IsZero() {
		o.Until = now
	}
	if !o.Since.Before(o.Until) {
		return OnlineReport{}, fmt.Errorf("eval: since %s is not before until %s", o.Since.Format(time.RFC3339), o.Until.Format(time.RFC3339))
	}
	switch o.Metric {
	case "", experiment.MetricCTR, experiment.MetricConversion, experiment.MetricRevenue:
	default:
		return OnlineReport{}, fmt.Errorf("eval: metric %q is not ctr, conversion or revenue", o.Metric)
	}
	view := logView{src: src}
	experiments, routes, err := view.find(ctx, o.Since, o.Until)
	if err != nil {
		return OnlineReport{}, err
	}
	rep := OnlineReport{Since: o.Since, Until: o.Until, Tables: []OnlineTable{}, Skipped: map[string]string{}}
	var sess *session
	arms := map[string][]string{}
	if o.Offline.Repo != "" {
		if sess, err = openSession(ctx, o.Offline); err != nil {
			return OnlineReport{}, err
		}
		defer sess.close()
		rep.K = sess.o.K
		for _, e := range sess.stack.Router.Config().Experiments {
			for _, a := range e.Arms {
				arms[e.Name] = append(arms[e.Name], a.Name)
			}
		}
	}
	for _, name := range experiments {
		q := experiment.Query{Experiment: name, Since: o.Since, Until: o.Until, Arms: arms[name], Metric: o.Metric, Alpha: o.Alpha, MinUsers: o.MinUsers}
		er, err := experiment.Build(ctx, view, q, now)
		if err != nil {
			return OnlineReport{}, fmt.Errorf("experiment %s: %w", name, err)
		}
		t := OnlineTable{Experiment: name, Control: er.Control, Metric: er.Metric, Alpha: er.Alpha, MinUsers: er.MinUsers, Answers: er.Impressions}
		for _, r := range er.Rows {
			row := onlineRow(r)
			row.Arm, row.Verdict = r.Name, r.VerdictText(&er)
			t.Rows = append(t.Rows, row)
		}
		rep.Tables = append(rep.Tables, t)
	}
	if len(routes) > 0 {
		unrouted := logView{src: src, unrouted: true}
		t := OnlineTable{}
		for _, route := range routes {
			er, err := experiment.Build(ctx, unrouted, experiment.Query{Route: route, Since: o.Since, Until: o.Until}, now)
			if err != nil {
				return OnlineReport{}, fmt.Errorf("route %s: %w", route, err)
			}
			t.Answers += er.Impressions
			for _, r := range er.Rows {
				row := onlineRow(r)
				row.Route, row.Control = route, false
				t.Rows = append(t.Rows, row)
			}
		}
		rep.Tables = append(rep.Tables, t)
	}
	if sess != nil {
		if err := rep.offline(ctx, sess); err != nil {
			return OnlineReport{}, err
		}
	}
	if len(rep.Skipped) == 0 {
		rep.Skipped = nil
	}
	return rep, nil
}

func onlineRow(r experiment.Row) OnlineRow {
	return OnlineRow{
		Route: r.Route, Control: r.Control, Users: r.Users, Answers: r.Impressions,
		Clicks: r.Clicks, Purchases: r.Purchases, Revenue: r.Revenue,
		CTR: estimate(r.CTR), Conversion: estimate(r.Conversion), RevenuePerUser: estimate(r.RevenuePerUser),
	}
}

// offline evaluates every route of rep's rows once, on sess, and sets the
// rows' Offline; a route the repository's routes.yaml does not have (any
// more), and SimilarItems answers, are noted in Skipped.
func (rep *OnlineReport) offline(ctx context.Context, sess *session) error {
	cfg := sess.stack.Router.Config()
	results := map[string]*Result{}
	for ti := range rep.Tables {
		for ri := range rep.Tables[ti].Rows {
			row := &rep.Tables[ti].Rows[ri]
			res, done := results[row.Route]
			if !done {
				i := slices.IndexFunc(cfg.Routes, func(r router.Route) bool { return r.Name == row.Route })
				switch {
				case row.Route == RouteSimilar:
					rep.Skipped["route "+RouteSimilar] = "SimilarItems answers: offline evaluation ranks Recommend answers"
				case i < 0:
					rep.Skipped["route "+row.Route] = fmt.Sprintf("not in %s: not evaluated offline", sess.stack.RoutesFile)
				default:
					r, err := sess.evaluateRoute(ctx, cfg.Routes[i], rep.Skipped)
					if err != nil {
						return err
					}
					res = &r
				}
				results[row.Route] = res
			}
			row.Offline = res
		}
	}
	return nil
}

// logView is the Source the report reads: src with SimilarItems answers
// under RouteSimilar and, when unrouted is set, only the answers no
// experiment routed.
type logView struct {
	src      experiment.Source
	unrouted bool
}

// inExperiment returns the experiment that routed imp, if one did.
func inExperiment(imp *store.Impression) (string, bool) {
	exp, _, ok := strings.Cut(imp.Arm, "/")
	return exp, ok
}

// ScanImpressions implements experiment.Source.
func (v logView) ScanImpressions(ctx context.Context, since, until time.Time, fn func(string, []store.Impression, []store.Outcome) error) error {
	var buf []store.Impression
	return v.src.ScanImpressions(ctx, since, until, func(user string, imps []store.Impression, outs []store.Outcome) error {
		buf = buf[:0]
		for _, imp := range imps {
			if _, ok := inExperiment(&imp); ok && v.unrouted {
				continue
			}
			if imp.Kind == "similar" && imp.Route == "" {
				imp.Route = RouteSimilar
			}
			buf = append(buf, imp)
		}
		if len(buf) == 0 {
			return nil
		}
		return fn(user, buf, outs)
	})
}

// find returns the experiments of the answers in [since, until), and the
// routes of those no experiment routed, each sorted.
func (v logView) find(ctx context.Context, since, until time.Time) (experiments, routes []string, err error) {
	exps, rts := map[string]bool{}, map[string]bool{}
	err = v.ScanImpressions(ctx, since, until, func(_ string, imps []store.Impression, _ []store.Outcome) error {
		for i := range imps {
			if exp, ok := inExperiment(&imps[i]); ok {
				exps[exp] = true
			} else if imps[i].Route != "" {
				rts[imps[i].Route] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("impressions: %w", err)
	}
	for e := range exps {
		experiments = append(experiments, e)
	}
	for r := range rts {
		routes = append(routes, r)
	}
	slices.Sort(experiments)
	slices.Sort(routes)
	return experiments, routes, nil
}

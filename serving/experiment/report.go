package experiment

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/store"
)

// Metrics a report's verdict can be decided on.
const (
	MetricCTR        = "ctr"
	MetricConversion = "conversion"
	MetricRevenue    = "revenue"
)

// Defaults of a Query.
const (
	// DefaultMinDetectableLift is the relative lift the default minimum
	// sample size is sized to detect (with DefaultPower).
	DefaultMinDetectableLift = 0.2
	// DefaultPower is the power of that sizing.
	DefaultPower = 0.8
	// MinUsersFloor is the least minimum sample size a default gives: a
	// rate estimated from fewer users is too noisy to size anything on.
	MinUsersFloor = 100
)

// Query asks for one report. Exactly one of Experiment, Route and Model is
// set: an experiment's rows are its arms, a route's the arms that served it
// (one row, "", for traffic no experiment routed), a model's its versions
// (stable and canary).
type Query struct {
	Experiment, Route, Model string
	// Since and Until bound the impressions' time, [Since, Until); zero
	// Until means now, zero Since the start of the store's retention.
	Since, Until time.Time
	// Control is the row the others are compared with: an arm name, or a
	// model version. Empty: the experiment's first arm, else an arm named
	// "control", else the first row by name; for a model, its stable
	// version with the most users.
	Control string
	// Arms are the experiment's arms in configuration order (their first is
	// the default control); Known says the experiment, route or model is
	// configured, so an empty report is not NotFound.
	Arms  []string
	Known bool
	// Metric decides the verdict: MetricCTR (default), MetricConversion or
	// MetricRevenue.
	Metric string
	// Alpha is the significance level (0: DefaultAlpha).
	Alpha float64
	// MinUsers is the per-row minimum sample size before a verdict other
	// than "not enough data". Fix it before the experiment starts; 0 sizes
	// it from the control's rate to detect DefaultMinDetectableLift with
	// DefaultPower (at least MinUsersFloor).
	MinUsers int64
}

// Source reads stored impressions and outcomes (store.Live, an
// ImpressionStore).
type Source interface {
	ScanImpressions(ctx context.Context, since, until time.Time, fn func(userID string, imps []store.Impression, outs []store.Outcome) error) error
}

// Report is the answer to a Query: one row per arm or model version.
type Report struct {
	// By is "arm" or "version".
	By string
	// Control is the control row's Name.
	Control string
	Metric  string
	Alpha   float64
	// MinUsers is the minimum sample size the verdicts used.
	MinUsers    int64
	Since       time.Time
	Until       time.Time
	Rows        []Row
	Impressions int64
}

// Row is one arm or model version of a report.
type Row struct {
	// Name is the arm's name or the model version.
	Name string
	// Route is the route an arm served (the most used, for a route row).
	Route string
	// Canary marks a canary model version.
	Canary  bool
	Control bool
	// Users saw at least one of the row's impressions.
	Users, Impressions int64
	// Clicks and Purchases count the attributed events (every positive
	// event is a click-through; purchases also convert).
	Clicks, Purchases int64
	Revenue           float64
	// CTR is the share of users who clicked through at least once,
	// Conversion the share who bought; users, the randomised unit, are the
	// trials, so each counts once however many answers it saw.
	CTR, Conversion Estimate
	// RevenuePerUser is the mean attributed revenue per user (zeros
	// included).
	RevenuePerUser Estimate
	// Lift against the control (nil for the control row): for CTR and
	// conversion the two-proportion z-test, for revenue Welch's t-test.
	CTRLift, ConversionLift, RevenueLift *Lift
	// Verdict on the query's metric.
	Verdict Decision
}

// Estimate is a rate or mean with its confidence interval.
type Estimate struct {
	Value float64
	CI    Interval
}

// Lift is a row's difference from the control.
type Lift struct {
	// Diff is treatment − control, with its confidence interval.
	Diff   float64
	DiffCI Interval
	// Rel is Diff / control, with a delta-method interval; NaN when the
	// control is zero.
	Rel    float64
	RelCI  Interval
	PValue float64
}

// accum gathers one row's per-user numbers.
type accum struct {
	name             string
	canary           bool
	routes           map[string]int64
	users            int64
	clickers, buyers int64
	impressions      int64
	clicks, buys     int64
	revenue          float64
	perUser          Sample
}

// Build computes the report q asks for from src.
func Build(ctx context.Context, src Source, q Query, now time.Time) (Report, error) {
	if err := q.validate(); err != nil {
		return Report{}, err
	}
	if q.Until.IsZero() {
		q.Until = now
	}
	if q.Metric == "" {
		q.Metric = MetricCTR
	}
	if !validLevel(q.Alpha) {
		q.Alpha = DefaultAlpha
	}
	by := "arm"
	if q.Model != "" {
		by = "version"
	}
	rows := map[string]*accum{}
	var total int64
	// A user's impressions in one row, and the outcomes of each.
	type userRow struct {
		imps            int64
		clicks, buys    int64
		revenue         float64
		clicked, bought bool
	}
	perRow := map[string]*userRow{}
	err := src.ScanImpressions(ctx, q.Since, q.Until, func(user string, imps []store.Impression, outs []store.Outcome) error {
		clear(perRow)
		rowOf := map[string]string{} // impression id → row key
		for i := range imps {
			imp := &imps[i]
			key, canary, ok := q.row(imp)
			if !ok {
				continue
			}
			total++
			rowOf[imp.ID] = key
			a := rows[key]
			if a == nil {
				a = &accum{name: key, canary: canary, routes: map[string]int64{}}
				rows[key] = a
			}
			a.impressions++
			a.routes[imp.Route]++
			ur := perRow[key]
			if ur == nil {
				ur = &userRow{}
				perRow[key] = ur
			}
			ur.imps++
		}
		for i := range outs {
			o := &outs[i]
			key, ok := rowOf[o.ImpressionID]
			if !ok {
				continue
			}
			ur := perRow[key]
			ur.clicks++
			ur.clicked = true
			if o.Purchase {
				ur.buys++
				ur.bought = true
				ur.revenue += o.Revenue
			}
		}
		for key, ur := range perRow {
			a := rows[key]
			a.users++
			a.clicks += ur.clicks
			a.buys += ur.buys
			a.revenue += ur.revenue
			if ur.clicked {
				a.clickers++
			}
			if ur.bought {
				a.buyers++
			}
			a.perUser.Add(ur.revenue)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	if len(rows) == 0 && !q.Known {
		field, name := q.target()
		return Report{}, &models.FieldError{Field: field, Err: fmt.Errorf("no %s named %q is configured or has impressions: %w", field, name, models.ErrNotFound)}
	}
	rep := Report{By: by, Metric: q.Metric, Alpha: q.Alpha, Since: q.Since, Until: q.Until, Impressions: total}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return q.compareRows(rows, a, b) })
	control, err := q.control(rows, keys)
	if err != nil {
		return Report{}, err
	}
	rep.Control = control
	rep.MinUsers = q.MinUsers
	if rep.MinUsers <= 0 {
		rep.MinUsers = defaultMinUsers(rows[control], q.Metric, q.Alpha)
	}
	for _, k := range keys {
		rep.Rows = append(rep.Rows, rows[k].row(rows[control], k == control, q.Metric, rep.MinUsers, q.Alpha))
	}
	return rep, nil
}

func (q *Query) validate() error {
	n := 0
	for _, s := range []string{q.Experiment, q.Route, q.Model} {
		if s != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return models.NewFieldError("experiment", "name exactly one of experiment, route and model")
	case !q.Until.IsZero() && !q.Since.Before(q.Until):
		return models.NewFieldError("since", "since %s is not before until %s", q.Since.Format(time.RFC3339), q.Until.Format(time.RFC3339))
	case q.Metric != "" && q.Metric != MetricCTR && q.Metric != MetricConversion && q.Metric != MetricRevenue:
		return models.NewFieldError("metric", "%q is not ctr, conversion or revenue", q.Metric)
	case q.MinUsers < 0:
		return models.NewFieldError("min_users", "%d is negative", q.MinUsers)
	case q.Alpha < 0 || q.Alpha >= 1:
		return models.NewFieldError("alpha", "%g is not in (0, 1)", q.Alpha)
	}
	return nil
}

// target names the queried field and its value.
func (q *Query) target() (field, name string) {
	switch {
	case q.Experiment != "":
		return "experiment", q.Experiment
	case q.Route != "":
		return "route", q.Route
	}
	return "model", q.Model
}

// row returns the row key of imp (an arm name, or a model version), whether
// it is a canary, and false when imp is not part of the query.
func (q *Query) row(imp *store.Impression) (string, bool, bool) {
	switch {
	case q.Experiment != "":
		exp, arm, ok := strings.Cut(imp.Arm, "/")
		if !ok || exp != q.Experiment {
			return "", false, false
		}
		return arm, false, true
	case q.Route != "":
		if imp.Route != q.Route {
			return "", false, false
		}
		_, arm, _ := strings.Cut(imp.Arm, "/")
		return arm, false, true
	}
	for _, mv := range imp.Models {
		if mv.Name == q.Model {
			return mv.Version, mv.Canary, true
		}
	}
	return "", false, false
}

// compareRows orders rows: configured arms first in their order, then by
// name (versions numerically when they are numbers).
func (q *Query) compareRows(rows map[string]*accum, a, b string) int {
	ia, ib := slices.Index(q.Arms, a), slices.Index(q.Arms, b)
	switch {
	case ia >= 0 && ib >= 0:
		return cmp.Compare(ia, ib)
	case ia >= 0:
		return -1
	case ib >= 0:
		return 1
	}
	if c := cmp.Compare(len(a), len(b)); c != 0 && isDigits(a) && isDigits(b) {
		return c
	}
	return cmp.Compare(a, b)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// control picks the control row's key.
func (q *Query) control(rows map[string]*accum, keys []string) (string, error) {
	if q.Control != "" {
		if _, ok := rows[q.Control]; !ok {
			return "", models.NewFieldError("control", "no row %q (rows: %s)", q.Control, strings.Join(keys, ", "))
		}
		return q.Control, nil
	}
	if len(keys) == 0 {
		return "", nil
	}
	if q.Model != "" {
		best := ""
		for _, k := range keys {
			if a := rows[k]; !a.canary && (best == "" || a.users > rows[best].users) {
				best = k
			}
		}
		if best != "" {
			return best, nil
		}
		return keys[0], nil
	}
	for _, arm := range q.Arms {
		if _, ok := rows[arm]; ok {
			return arm, nil
		}
	}
	if _, ok := rows["control"]; ok {
		return "control", nil
	}
	return keys[0], nil
}

// defaultMinUsers sizes the minimum sample to detect
// DefaultMinDetectableLift of the control's rate (for revenue, of its
// conversion), never below MinUsersFloor.
func defaultMinUsers(control *accum, metric string, alpha float64) int64 {
	if control == nil || control.users == 0 {
		return MinUsersFloor
	}
	rate := float64(control.clickers) / float64(control.users)
	if metric != MetricCTR {
		rate = float64(control.buyers) / float64(control.users)
	}
	n, err := MinSampleSize(rate, DefaultMinDetectableLift, alpha, DefaultPower)
	if err != nil {
		// A rate of 0 or 1 (or lifted past 1) cannot be sized on.
		return MinUsersFloor
	}
	return max(n, MinUsersFloor)
}

// row turns a's numbers into a report row compared with the control c.
func (a *accum) row(c *accum, isControl bool, metric string, minUsers int64, alpha float64) Row {
	level := 1 - alpha
	ctr := Proportion{Successes: a.clickers, Trials: a.users}
	conv := Proportion{Successes: a.buyers, Trials: a.users}
	rev := a.perUser.Summary()
	r := Row{
		Name: a.name, Route: a.route(), Canary: a.canary, Control: isControl,
		Users: a.users, Impressions: a.impressions, Clicks: a.clicks, Purchases: a.buys, Revenue: a.revenue,
		CTR:            Estimate{ctr.Rate(), ctr.CI(level)},
		Conversion:     Estimate{conv.Rate(), conv.CI(level)},
		RevenuePerUser: Estimate{rev.Mean, rev.CI(level)},
	}
	if isControl {
		return r
	}
	cCTR := CompareProportions(Proportion{Successes: c.clickers, Trials: c.users}, ctr)
	cConv := CompareProportions(Proportion{Successes: c.buyers, Trials: c.users}, conv)
	cRev := CompareMeans(c.perUser.Summary(), rev)
	cr := c.perUser.Summary()
	r.CTRLift = lift(cCTR, propVar(ctr), propVar(Proportion{Successes: c.clickers, Trials: c.users}), level)
	r.ConversionLift = lift(cConv, propVar(conv), propVar(Proportion{Successes: c.buyers, Trials: c.users}), level)
	r.RevenueLift = lift(cRev, rev.Var/float64(rev.N), cr.Var/float64(cr.N), level)
	decide := cCTR
	switch metric {
	case MetricConversion:
		decide = cConv
	case MetricRevenue:
		decide = cRev
	}
	r.Verdict = Verdict(decide, minUsers, alpha)
	return r
}

// route is the route most of a's impressions were served by.
func (a *accum) route() string {
	best := ""
	for rt, n := range a.routes {
		if best == "" || n > a.routes[best] || n == a.routes[best] && rt < best {
			best = rt
		}
	}
	return best
}

// propVar is the variance of a proportion's estimate, p(1-p)/n.
func propVar(p Proportion) float64 {
	r := p.Rate()
	return r * (1 - r) / float64(p.Trials)
}

// lift is a comparison's lift with intervals, given the variances of the
// treatment's and the control's estimates; the relative interval comes
// from the delta method for a ratio of independent estimates,
// Var(T/C) ≈ Var T/C² + T²·Var C/C⁴.
func lift(c Comparison, vt, vc, level float64) *Lift {
	l := &Lift{Diff: c.Diff, DiffCI: c.CI(level), Rel: c.RelLift, PValue: c.PValue, RelCI: nan()}
	if c.Control > 0 && validLevel(level) && !math.IsNaN(vt) && !math.IsNaN(vc) {
		c2 := c.Control * c.Control
		se := math.Sqrt(vt/c2 + c.Treatment*c.Treatment*vc/(c2*c2))
		q := normalQuantile(0.5 + level/2)
		l.RelCI = Interval{c.RelLift - q*se, c.RelLift + q*se}
	}
	return l
}

// VerdictText is a row's verdict in words, as a report prints it: "control",
// "better than control (p = 0.003)", "no difference yet (p = 0.41)", "not
// enough data (812 of 1,000 users)".
func (r Row) VerdictText(rep *Report) string {
	if r.Control {
		return "control"
	}
	var p float64
	switch rep.Metric {
	case MetricConversion:
		p = r.ConversionLift.PValue
	case MetricRevenue:
		p = r.RevenueLift.PValue
	default:
		p = r.CTRLift.PValue
	}
	switch r.Verdict {
	case Better, Worse:
		return fmt.Sprintf("%s than %s (p = %.2g)", r.Verdict, rep.Control, p)
	case NoDifference:
		return fmt.Sprintf("no difference yet (p = %.2g)", p)
	}
	least := r.Users
	for _, o := range rep.Rows {
		if o.Control {
			least = min(least, o.Users)
		}
	}
	if least < rep.MinUsers {
		return fmt.Sprintf("not enough data (%d of %d users)", least, rep.MinUsers)
	}
	return "not enough data (the metric does not vary)"
}

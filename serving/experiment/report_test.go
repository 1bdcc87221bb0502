package experiment_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/recserve/recserve/models"
	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/store"
)

// users is a Source over per-user impressions and outcomes held in memory,
// filtering by time as a store does.
type users map[string]struct {
	imps []store.Impression
	outs []store.Outcome
}

func (u users) ScanImpressions(_ context.Context, since, until time.Time, fn func(string, []store.Impression, []store.Outcome) error) error {
	for user, d := range u {
		var imps []store.Impression
		ids := map[string]bool{}
		for _, imp := range d.imps {
			if !imp.Time.Before(since) && imp.Time.Before(until) {
				imps = append(imps, imp)
				ids[imp.ID] = true
			}
		}
		if len(imps) == 0 {
			continue
		}
		var outs []store.Outcome
		for _, o := range d.outs {
			if ids[o.ImpressionID] {
				outs = append(outs, o)
			}
		}
		if err := fn(user, imps, outs); err != nil {
			return err
		}
	}
	return nil
}

var t0 = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// add gives user an impression in arm (and with model version mv) and the
// outcomes of the listed kinds ("click", "purchase:PRICE").
func (u users) add(user, arm string, mv store.ModelVersion, outcomes ...outcome) {
	d := u[user]
	id := fmt.Sprintf("%s-%d", user, len(d.imps))
	d.imps = append(d.imps, store.Impression{ID: id, Time: t0.Add(time.Duration(len(d.imps)) * time.Minute), UserID: user,
		Route: "r-" + arm, Arm: "exp/" + arm, Models: []store.ModelVersion{mv}, Items: []string{"a", "b"}})
	for _, o := range outcomes {
		d.outs = append(d.outs, store.Outcome{ImpressionID: id, UserID: user, ItemID: "a", Purchase: o.purchase, Revenue: o.revenue})
	}
	u[user] = d
}

type outcome struct {
	purchase bool
	revenue  float64
}

var (
	click = outcome{}
	buy   = func(rev float64) outcome { return outcome{purchase: true, revenue: rev} }
)

func TestBuildCountsUsersOnce(t *testing.T) {
	stable := store.ModelVersion{Name: "m", Version: "1"}
	u := users{}
	// u1 saw two answers, clicked one and then bought from it: one user
	// who clicked, one who converted, two clicks (the purchase is a
	// click-through too), one purchase.
	u.add("u1", "control", stable, click, buy(10))
	u.add("u1", "control", stable)
	u.add("u2", "control", stable)
	u.add("u3", "treatment", stable, click)
	u.add("u4", "treatment", stable, buy(5), buy(5))
	rep, err := experiment.Build(t.Context(), u, experiment.Query{Experiment: "exp", Arms: []string{"control", "treatment"}, Known: true}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Control != "control" || len(rep.Rows) != 2 || rep.Rows[0].Name != "control" || rep.Impressions != 5 {
		t.Fatalf("report %+v", rep)
	}
	c, tr := rep.Rows[0], rep.Rows[1]
	checks := []struct {
		name      string
		got, want float64
	}{
		{"control users", float64(c.Users), 2},
		{"control impressions", float64(c.Impressions), 3},
		{"control clicks", float64(c.Clicks), 2},
		{"control purchases", float64(c.Purchases), 1},
		{"control CTR", c.CTR.Value, 0.5},
		{"control conversion", c.Conversion.Value, 0.5},
		{"control revenue per user", c.RevenuePerUser.Value, 5},
		{"treatment CTR", tr.CTR.Value, 1},
		{"treatment conversion", tr.Conversion.Value, 0.5},
		{"treatment revenue", tr.Revenue, 10},
		{"treatment CTR lift", tr.CTRLift.Diff, 0.5},
		{"treatment relative CTR lift", tr.CTRLift.Rel, 1},
	}
	for _, ch := range checks {
		if math.Abs(ch.got-ch.want) > 1e-12 {
			t.Errorf("%s = %v; want %v", ch.name, ch.got, ch.want)
		}
	}
	if tr.Verdict != experiment.NotEnoughData || c.CTRLift != nil {
		t.Errorf("verdict %v with 2 users per arm (min %d); control lift %+v", tr.Verdict, rep.MinUsers, c.CTRLift)
	}
	// The default minimum is sized on the control's 50% rate.
	if want, _ := experiment.MinSampleSize(0.5, experiment.DefaultMinDetectableLift, experiment.DefaultAlpha, experiment.DefaultPower); rep.MinUsers != want {
		t.Errorf("min users %d; want %d", rep.MinUsers, want)
	}
	if got, want := tr.VerdictText(&rep), fmt.Sprintf("not enough data (2 of %d users)", rep.MinUsers); got != want {
		t.Errorf("verdict text %q", got)
	}
}

func TestBuildVerdictAndCanary(t *testing.T) {
	u := users{}
	stable, canary := store.ModelVersion{Name: "m", Version: "3"}, store.ModelVersion{Name: "m", Version: "4", Canary: true}
	// 400 users per arm: control clicks 20%, treatment 40%.
	for i := range 800 {
		arm, mv, rate := "control", stable, 5
		if i%2 == 1 {
			arm, mv, rate = "treatment", canary, 5*2
		}
		var outs []outcome
		if (i/2)%25 < rate {
			outs = append(outs, click)
		}
		u.add(fmt.Sprintf("u%03d", i), arm, mv, outs...)
	}
	rep, err := experiment.Build(t.Context(), u, experiment.Query{Experiment: "exp", MinUsers: 300}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Control != "control" {
		t.Errorf("control %q; want the arm named control", rep.Control)
	}
	tr := rep.Rows[1]
	if tr.Verdict != experiment.Better || !(tr.CTRLift.PValue < 1e-6) || !tr.CTRLift.DiffCI.Contains(0.2) || !tr.CTRLift.RelCI.Contains(1) {
		t.Errorf("treatment %+v, lift %+v", tr, tr.CTRLift)
	}
	if got := tr.VerdictText(&rep); got[:18] != "better than contro" {
		t.Errorf("verdict text %q", got)
	}
	// The same data by model: the canary has its own row, compared with
	// the stable version.
	rep, err = experiment.Build(t.Context(), u, experiment.Query{Model: "m", MinUsers: 300}, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if rep.By != "version" || rep.Control != "3" || len(rep.Rows) != 2 || !rep.Rows[1].Canary || rep.Rows[1].Name != "4" || rep.Rows[1].Verdict != experiment.Better {
		t.Errorf("by model: %+v", rep)
	}
	// A window that ends before the answers holds none.
	rep, err = experiment.Build(t.Context(), u, experiment.Query{Experiment: "exp", Known: true, Until: t0}, t0.Add(time.Hour))
	if err != nil || len(rep.Rows) != 0 {
		t.Errorf("empty window: %+v, %v", rep, err)
	}
}

func TestBuildBadQuery(t *testing.T) {
	u := users{}
	u.add("u1", "control", store.ModelVersion{Name: "m", Version: "1"})
	tests := []struct {
		name      string
		q         experiment.Query
		field     string
		notFound  bool
		wantError bool
	}{
		{"no target", experiment.Query{}, "experiment", false, true},
		{"two targets", experiment.Query{Experiment: "exp", Model: "m"}, "experiment", false, true},
		{"since after until", experiment.Query{Experiment: "exp", Since: t0.Add(time.Hour), Until: t0}, "since", false, true},
		{"since equal to until", experiment.Query{Experiment: "exp", Since: t0, Until: t0}, "since", false, true},
		{"unknown experiment", experiment.Query{Experiment: "nope"}, "experiment", true, true},
		{"unknown model", experiment.Query{Model: "nope"}, "model", true, true},
		{"unknown control", experiment.Query{Experiment: "exp", Control: "nope"}, "control", false, true},
		{"bad metric", experiment.Query{Experiment: "exp", Metric: "clicks"}, "metric", false, true},
		{"bad alpha", experiment.Query{Experiment: "exp", Alpha: 1.5}, "alpha", false, true},
		{"configured without impressions", experiment.Query{Experiment: "new", Known: true}, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := experiment.Build(t.Context(), u, tt.q, t0.Add(time.Hour))
			if !tt.wantError {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *models.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err %v; want a field error on %s", err, tt.field)
			}
			if got := errors.Is(err, models.ErrNotFound); got != tt.notFound {
				t.Errorf("NotFound = %v; want %v (%v)", got, tt.notFound, err)
			}
		})
	}
}

package serving

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recserve/recserve/dataset"
	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/impressionlog"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
	"github.com/recserve/recserve/serving/store/pebblestore"
)

// experimentRoutes splits home-page users between route pop (arm control)
// and route blend (arm treatment); other requests take blend, no arm.
const experimentRoutes = `default_route: blend
routes:
  - name: blend
    sources: [{model: itemknn}, {model: popularity, weight: 0.5}]
  - name: pop
    sources: [{model: popularity}]
experiments:
  - name: homepage
    arms:
      - {name: control, route: pop, percent: 50}
      - {name: treatment, route: blend, percent: 50}
rules:
  - context: {page: home}
    experiment: homepage
`

// TestImpressionLogReport serves answers through a live stack whose
// impression log is an impressionlog.File, tracks events after them, and
// checks that the log received every impression and every attributed
// outcome, and that experiment reports built from the log read back
// (impressionlog.Read) equal those built from the live store: the offline
// replay (`recctl eval --impressions`) reports what the server would.
func TestImpressionLogReport(t *testing.T) {
	data, repo := openDemo(t)
	if err := os.WriteFile(filepath.Join(repo, router.ConfigFile), []byte(experimentRoutes), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Read(data)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := pebblestore.Open(filepath.Join(t.TempDir(), "state"), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b store.Backend = pb
	if _, ok := b.(store.ImpressionStore); !ok {
		b = &withImpressions{Backend: pb}
	}
	logPath := filepath.Join(t.TempDir(), "impressions.jsonl")
	il, err := impressionlog.Open(impressionlog.Options{Path: logPath})
	if err != nil {
		t.Fatal(err)
	}
	defer il.Close()
	s, err := Open(t.Context(), Options{Repo: repo, Data: data, Backend: b, Impressions: il})
	if err != nil {
		t.Fatal(err)
	}

	var users []string
	seen := map[string]bool{}
	for _, in := range d.Interactions {
		if !seen[in.UserID] && len(users) < 80 {
			seen[in.UserID] = true
			users = append(users, in.UserID)
		}
	}
	var events []store.Event
	answers := 0
	for i, user := range users {
		req := router.Request{UserID: user, K: 4}
		if i%4 != 3 {
			req.Context = map[string]string{"page": "home"}
		}
		resp, err := s.Router.Recommend(t.Context(), req)
		if err != nil || len(resp.Items) == 0 {
			t.Fatalf("Recommend(%s) = %d items, %v", user, len(resp.Items), err)
		}
		answers++
		if i%5 == 0 {
			if _, err := s.Router.SimilarItems(t.Context(), router.SimilarRequest{ItemID: resp.Items[0].ItemID, K: 3, Model: "itemknn", UserID: user}); err != nil {
				t.Fatal(err)
			}
			answers++
		}
		now := time.Now().UTC()
		switch i % 3 {
		case 0: // a click naming the answer, and a purchase of it
			events = append(events,
				store.Event{ID: fmt.Sprintf("v%d", i), UserID: user, ItemID: resp.Items[0].ItemID, Type: "view", Time: now, RecommendationID: resp.RecommendationID},
				store.Event{ID: fmt.Sprintf("p%d", i), UserID: user, ItemID: resp.Items[0].ItemID, Type: "purchase", Time: now, RecommendationID: resp.RecommendationID})
		case 1: // a cart matched by the attribution window
			events = append(events, store.Event{ID: fmt.Sprintf("c%d", i), UserID: user, ItemID: resp.Items[1%len(resp.Items)].ItemID, Type: "cart", Time: now})
		}
	}
	if _, err := s.Live.Track(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	queries := []experiment.Query{
		{Experiment: "homepage", Arms: []string{"control", "treatment"}, MinUsers: 10},
		{Route: "blend"},
		{Model: "itemknn", Metric: experiment.MetricConversion},
	}
	var live []experiment.Report
	for _, q := range queries {
		rep, err := experiment.Build(t.Context(), s.Live, q, now)
		if err != nil {
			t.Fatalf("live report %+v: %v", q, err)
		}
		live = append(live, rep)
	}
	s.Close() // attributes nothing more; the log is closed after the stack, as the server does
	if err := il.Close(); err != nil {
		t.Fatal(err)
	}

	log, err := impressionlog.Read(logPath)
	if err != nil {
		t.Fatal(err)
	}
	st := log.Stats()
	if st.Impressions != answers || st.Outcomes == 0 || st.Orphans != 0 || il.Dropped() != 0 {
		t.Errorf("log read back: %d impressions, %d outcomes, %d orphans (%d dropped); want %d impressions and their outcomes", st.Impressions, st.Outcomes, st.Orphans, il.Dropped(), answers)
	}
	for i, q := range queries {
		rep, err := experiment.Build(t.Context(), log, q, now)
		if err != nil {
			t.Fatalf("report %+v from the log: %v", q, err)
		}
		if got, want := reportText(rep), reportText(live[i]); got != want {
			t.Errorf("report %+v from the log =\n%s\nwant the live store's\n%s", q, got, want)
		}
		if rep.Impressions == 0 {
			t.Errorf("report %+v: no impressions", q)
		}
	}
}

// reportText prints every number of a report, lifts included (%v prints
// NaN, an undefined interval, equal to NaN, which == does not).
func reportText(rep experiment.Report) string {
	rows := rep.Rows
	rep.Rows = nil
	out := fmt.Sprintf("%+v", rep)
	for _, r := range rows {
		lifts := fmt.Sprintf("%+v %+v %+v", deref(r.CTRLift), deref(r.ConversionLift), deref(r.RevenueLift))
		r.CTRLift, r.ConversionLift, r.RevenueLift = nil, nil, nil
		out += fmt.Sprintf("\n%+v %s", r, lifts)
	}
	return out
}

func deref(l *experiment.Lift) any {
	if l == nil {
		return nil
	}
	return *l
}

// withImpressions gives a backend that keeps no impressions an in-memory
// ImpressionStore with the interface's semantics, for as long as the
// backends do not implement it themselves.
type withImpressions struct {
	store.Backend
	mu   sync.Mutex
	imps map[string][]store.Impression // per user, as appended
	outs map[string][]store.Outcome
}

func (w *withImpressions) AppendImpressions(_ context.Context, imps []store.Impression) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.imps == nil {
		w.imps = map[string][]store.Impression{}
	}
	for _, imp := range imps {
		if imp.UserID != "" {
			w.imps[imp.UserID] = append(w.imps[imp.UserID], imp)
		}
	}
	return nil
}

func (w *withImpressions) UserImpressions(_ context.Context, user string, since time.Time) ([]store.Impression, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []store.Impression
	for _, imp := range slices.Backward(w.imps[user]) {
		if !imp.Time.Before(since) {
			out = append(out, imp)
		}
	}
	return out, nil
}

func (w *withImpressions) AppendOutcomes(_ context.Context, outs []store.Outcome) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.outs == nil {
		w.outs = map[string][]store.Outcome{}
	}
	for _, o := range outs {
		w.outs[o.UserID] = append(w.outs[o.UserID], o)
	}
	return nil
}

func (w *withImpressions) ScanImpressions(_ context.Context, since, until time.Time, fn func(string, []store.Impression, []store.Outcome) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, user := range slices.Sorted(maps.Keys(w.imps)) {
		var imps []store.Impression
		in := map[string]bool{}
		for _, imp := range w.imps[user] {
			if !imp.Time.Before(since) && imp.Time.Before(until) {
				imps = append(imps, imp)
				in[imp.ID] = true
			}
		}
		if len(imps) == 0 {
			continue
		}
		var outs []store.Outcome
		for _, o := range w.outs[user] {
			if in[o.ImpressionID] {
				outs = append(outs, o)
			}
		}
		if err := fn(user, imps, outs); err != nil {
			return err
		}
	}
	return nil
}

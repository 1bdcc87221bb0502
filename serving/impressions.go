package serving

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recserve/recserve/serving/experiment"
	"github.com/recserve/recserve/serving/router"
	"github.com/recserve/recserve/serving/store"
)

// OutcomeLog is implemented by an impression log (Options.Impressions) that
// also takes the attributed outcomes, so a warehouse (or `recctl eval
// --impressions`) joins answers and their clicks from one feed.
type OutcomeLog interface {
	LogOutcome(store.Outcome)
}

// impressionSink is the router's ImpressionLog in a Stack with a live store:
// every answer goes to the store (attribution and experiment reports) and
// to the caller's log, if any.
type impressionSink struct {
	live *store.Live
	next router.ImpressionLog
}

// Log implements router.ImpressionLog.
func (s impressionSink) Log(imp router.Impression) {
	s.live.LogImpression(imp.Stored())
	if s.next != nil {
		s.next.Log(imp)
	}
}

// outcomes counts attributed events per route and arm and per model version
// (the live store's AttributionObserver, through observer) and passes them
// to the outcome log.
type outcomes struct {
	byRoute, byModel *prometheus.CounterVec
	log              OutcomeLog
}

// outcomeKind is an outcome's metric label: purchase or click.
func outcomeKind(o *store.Outcome) string {
	if o.Purchase {
		return "purchase"
	}
	return "click"
}

func newOutcomes(reg prometheus.Registerer, log OutcomeLog) (*outcomes, error) {
	o := &outcomes{
		byRoute: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recserve_attributed_events_total",
			Help: "Tracked events attributed to an answer, by the answer's route and experiment arm; outcome is purchase or click (every other positive event).",
		}, []string{"route", "arm", "outcome"}),
		byModel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recserve_model_attributed_events_total",
			Help: "Tracked events attributed to an answer a model version contributed to (a canary's against its stable version's).",
		}, []string{"model", "version", "outcome"}),
		log: log,
	}
	if reg == nil {
		return o, nil
	}
	for _, c := range []**prometheus.CounterVec{&o.byRoute, &o.byModel} {
		if err := reg.Register(*c); err != nil {
			// A second Stack on one registry (tests, a reload) shares
			// the counters.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("serving: register metrics: %w", err)
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, fmt.Errorf("serving: register metrics: %w", err)
			}
			*c = existing
		}
	}
	return o, nil
}

// Attributed implements store.AttributionObserver.
func (o *outcomes) Attributed(outs []store.Outcome, imps []*store.Impression) {
	for i := range outs {
		kind := outcomeKind(&outs[i])
		imp := imps[i]
		route := imp.Route
		if imp.Kind == "similar" {
			route = "similar"
		}
		o.byRoute.WithLabelValues(route, imp.Arm, kind).Inc()
		for _, mv := range imp.Models {
			o.byModel.WithLabelValues(mv.Name, mv.Version, kind).Inc()
		}
		if o.log != nil {
			o.log.LogOutcome(outs[i])
		}
	}
}

// observer is the live store's Observer: the learner, and the outcome
// counters.
type observer struct {
	*learner
	*outcomes
}

var _ store.AttributionObserver = observer{}

// Report builds an experiment report (experiment.Build) from the live
// store's impressions, completing q from the routes and models in use: an
// experiment's arms in their configured order (the first is the default
// control), and whether the experiment, route or model is configured, so
// that one without impressions yet reports empty rather than NotFound.
func (s *Stack) Report(ctx context.Context, q experiment.Query) (experiment.Report, error) {
	if s.Live == nil {
		return experiment.Report{}, store.ErrNoImpressions
	}
	cfg := s.Router.Config()
	switch {
	case q.Experiment != "":
		for _, e := range cfg.Experiments {
			if e.Name == q.Experiment {
				q.Known = true
				q.Arms = q.Arms[:0]
				for _, a := range e.Arms {
					q.Arms = append(q.Arms, a.Name)
				}
			}
		}
	case q.Route != "":
		for _, r := range cfg.Routes {
			q.Known = q.Known || r.Name == q.Route
		}
		for _, e := range cfg.Experiments {
			for _, a := range e.Arms {
				if a.Route == q.Route {
					q.Arms = append(q.Arms, a.Name)
				}
			}
		}
	case q.Model != "":
		q.Known = slices.Contains(s.Repository.Names(), q.Model)
	}
	return experiment.Build(ctx, s.Live, q, time.Now())
}
